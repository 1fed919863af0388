import { watch } from 'node:fs';
import { connect, type AddressInfo } from 'node:net';
import { mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { parse } from 'csv-parse/sync';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { testServer, type TestServer } from '../helpers/server.ts';
import { IMPORT_BODY_LIMIT } from '../../src/server/admin-api.ts';
import { sendWithBounces } from '../helpers/editions.ts';

const TOKEN = 'admin-token-0123456789abcdef0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };

describe('admin API without GAZETTE_ADMIN_TOKEN', () => {
  let t: TestServer;
  beforeEach(async () => {
    t = await testServer();
  });
  afterEach(() => t.close());

  it('answers 401 on every /api URL to any token but a user\'s own, saying which tokens it takes', async () => {
    for (const url of ['/api', '/api/subscribers', '/api/subscribers/counts', '/api/nothing', '/api/editions']) {
      const res = await t.server.inject({ url, headers: auth });
      expect(res.statusCode, url).toBe(401);
      expect(res.json().message).toMatch(/GAZETTE_ADMIN_TOKEN or a user's API token \(gazette users token EMAIL\)/);
    }
    const post = await t.server.inject({ method: 'POST', url: '/api/subscribers', headers: auth, payload: { email: 'a@example.com' } });
    expect(post.statusCode).toBe(401);
    expect((await (await t.app.adapters.subscribers()).countByStatus()).pending).toBe(0);
  });

  it('lets a user in with their own API token, with their role: an editor may not erase', async () => {
    await t.app.users.add({ email: 'ed@example.com', password: 'a long enough password', role: 'editor' });
    await t.app.users.add({ email: 'ad@example.com', password: 'a long enough password', role: 'admin' });
    const editor = { authorization: `Bearer ${(await t.app.users.createToken('ed@example.com')).token}` };
    const admin = { authorization: `Bearer ${(await t.app.users.createToken('ad@example.com', 'script')).token}` };
    const added = await t.server.inject({ method: 'POST', url: '/api/subscribers', headers: editor, payload: { email: 'reader@example.com', confirmed: true } });
    expect(added.statusCode).toBe(201);
    const refused = await t.server.inject({ method: 'DELETE', url: '/api/subscribers/reader@example.com', headers: editor });
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toEqual({ error: 'forbidden', message: 'only an admin can erase subscribers: this token belongs to ed@example.com, an editor' });
    expect((await t.server.inject({ method: 'DELETE', url: '/api/subscribers/reader@example.com', headers: admin })).statusCode).toBe(204);
    const [token] = await t.app.users.tokens('ed@example.com');
    expect(token!.lastUsedAt).not.toBeNull();
    await t.app.users.revokeToken('ed@example.com', token!.id);
    expect((await t.server.inject({ url: '/api/subscribers', headers: editor })).statusCode).toBe(401);
  });
});

describe('admin API', () => {
  let t: TestServer;
  beforeEach(async () => {
    t = await testServer({ env: { GAZETTE_ADMIN_TOKEN: TOKEN } });
  });
  afterEach(() => t.close());

  const add = (payload: unknown) => t.server.inject({ method: 'POST', url: '/api/subscribers', headers: auth, payload: payload as object });

  it('answers 401 with WWW-Authenticate without a token or with a wrong one', async () => {
    const cases: Record<string, string>[] = [{}, { authorization: 'Bearer wrong' }, { authorization: `Basic ${TOKEN}` }, { authorization: `Bearer ${TOKEN}x` }];
    for (const headers of cases) {
      for (const url of ['/api/subscribers', '/api/subscribers/counts', '/api/unknown']) {
        const res = await t.server.inject({ url, headers });
        expect(res.statusCode, `${url} ${JSON.stringify(headers)}`).toBe(401);
        expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
        expect(res.json().error).toBe('unauthorized');
      }
    }
    const post = await t.server.inject({ method: 'POST', url: '/api/subscribers', payload: { email: 'a@example.com' } });
    expect(post.statusCode).toBe(401);
    const unknown = await t.server.inject({ url: '/api/unknown', headers: auth });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toEqual({ error: 'not_found', message: 'no API route GET /api/unknown' });
    expect((await (await t.app.adapters.subscribers()).countByStatus()).active).toBe(0);
  });

  it('adds a confirmed subscriber (201), refuses the same address in any case (409) and bad input (400)', async () => {
    const created = await add({ email: 'Ann@Example.com', name: 'Ann', lists: ['weekly'], frequency: 'weekly', confirmed: true });
    expect(created.statusCode).toBe(201);
    const body = created.json();
    expect(body).toMatchObject({ email: 'Ann@Example.com', name: 'Ann', status: 'active', lists: [{ slug: 'weekly', frequency: 'weekly' }], source: 'api' });
    expect(body.confirmed_at).toBeTruthy();
    expect(Object.keys(body).sort()).toEqual(['confirmed_at', 'created_at', 'email', 'id', 'lists', 'name', 'source', 'status', 'suppression']);
    expect(body.suppression).toBeNull();
    expect(await t.outbox()).toHaveLength(0);

    const again = await add({ email: 'ann@example.com' });
    expect(again.statusCode).toBe(409);
    expect(again.json()).toEqual({ error: 'conflict', message: 'already subscribed: Ann@Example.com (active)' });

    for (const [payload, message] of [
      [{ email: 'not-an-email' }, /not a valid email address/],
      [{}, /email/],
      [{ email: 'b@example.com', lists: ['nope'] }, /unknown list "nope"/],
      [{ email: 'b@example.com', frequency: 'hourly' }, /frequency/],
      [{ email: 'b@example.com', confirmed: 'yes' }, /confirmed: expected true or false/],
    ] as const) {
      const res = await add(payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.json().error).toBe('bad_request');
      expect(res.json().message).toMatch(message);
    }
    const notObject = await t.server.inject({ method: 'POST', url: '/api/subscribers', headers: { ...auth, 'content-type': 'application/json' }, payload: '[1]' });
    expect(notObject.statusCode).toBe(400);
  });

  it('adds an unconfirmed subscriber as pending and sends them the confirmation email', async () => {
    const res = await add({ email: 'pat@example.com' });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ status: 'pending', confirmed_at: null, lists: [{ slug: 'dispatch', frequency: 'instant' }] });
    const mail = await t.outbox();
    expect(mail).toHaveLength(1);
    expect(mail[0]!.raw).toContain('pat@example.com');
  });

  it('lists subscribers a page at a time, newest first, with search, status and list filters', async () => {
    for (let i = 1; i <= 7; i++) {
      expect((await add({ email: `user${i}@example.com`, name: i === 3 ? 'Zoë Special' : `User ${i}`, confirmed: i % 2 === 1, lists: i > 5 ? ['weekly'] : undefined })).statusCode).toBe(201);
    }
    const get = (query: string) => t.server.inject({ url: `/api/subscribers${query}`, headers: auth });
    const first = (await get('?per_page=3')).json();
    expect(first).toMatchObject({ total: 7, page: 1, per_page: 3 });
    expect(first.subscribers.map((s: { email: string }) => s.email)).toEqual(['user7@example.com', 'user6@example.com', 'user5@example.com']);
    const last = (await get('?per_page=3&page=3')).json();
    expect(last.subscribers.map((s: { email: string }) => s.email)).toEqual(['user1@example.com']);
    expect((await get('?search=zo%C3%AB')).json().subscribers.map((s: { email: string }) => s.email)).toEqual(['user3@example.com']);
    expect((await get('?search=USER2')).json().total).toBe(1);
    expect((await get('?status=active')).json().total).toBe(4);
    expect((await get('?list=weekly')).json().total).toBe(2);
    expect((await get('')).json()).toMatchObject({ total: 7, page: 1, per_page: 50 });

    for (const [query, message] of [
      ['?page=x', 'page: expected a positive whole number, got "x"'],
      ['?page=0', 'page: expected a positive whole number, got "0"'],
      ['?per_page=501', 'per_page: at most 500, got 501'],
      ['?per_page=2.5', 'per_page: expected a positive whole number, got "2.5"'],
      ['?status=gone', 'status: expected one of pending, active, unsubscribed, bounced, complained, got "gone"'],
      ['?list=nope', 'list: unknown list "nope" (known: dispatch, weekly)'],
      ['?page=1&page=2', 'page: given more than once'],
    ]) {
      const res = await get(query!);
      expect(res.statusCode, query).toBe(400);
      expect(res.json()).toEqual({ error: 'bad_request', message });
    }
  });

  it('counts subscribers by status', async () => {
    await add({ email: 'a@example.com', confirmed: true });
    await add({ email: 'b@example.com', confirmed: true });
    await add({ email: 'c@example.com' });
    const res = await t.server.inject({ url: '/api/subscribers/counts', headers: auth });
    expect(res.json()).toEqual({ pending: 1, active: 2, unsubscribed: 0, bounced: 0, complained: 0, total: 3 });
  });

  it('erases a subscriber (204): row and subscriptions gone; 404 when unknown', async () => {
    const id = (await add({ email: 'gone@example.com', lists: ['dispatch', 'weekly'], confirmed: true })).json().id as number;
    const repo = await t.app.adapters.subscribers();
    const store = await t.app.adapters.store();
    const res = await t.server.inject({ method: 'DELETE', url: '/api/subscribers/Gone@Example.com', headers: auth });
    expect(res.statusCode).toBe(204);
    expect(res.body).toBe('');
    expect(await repo.findByEmail('gone@example.com')).toBeUndefined();
    expect(await store.db.selectFrom('subscriptions').selectAll().where('subscriber_id', '=', id).execute()).toEqual([]);
    const again = await t.server.inject({ method: 'DELETE', url: '/api/subscribers/gone@example.com', headers: auth });
    expect(again.statusCode).toBe(404);
    expect(again.json()).toEqual({ error: 'not_found', message: 'no subscriber with the address gone@example.com' });
    const unauthorized = await t.server.inject({ method: 'DELETE', url: '/api/subscribers/gone@example.com' });
    expect(unauthorized.statusCode).toBe(401);
  });

  it('imports a streamed CSV body and exports it back as an attachment', async () => {
    const csv = 'email,name,lists\nann@example.com,Ann,weekly\nbad-address,X,\nbob@example.com,"Bob, Jr",dispatch;weekly:daily\n';
    const post = (query: string, payload: string | Readable, type = 'text/csv') =>
      t.server.inject({ method: 'POST', url: `/api/subscribers/import${query}`, headers: { ...auth, 'content-type': type }, payload });
    // A stream without Content-Length, as curl --data-binary @- sends it.
    const first = await post('?confirmed=true', Readable.from([csv.slice(0, 30), csv.slice(30)]));
    expect(first.statusCode).toBe(200);
    expect(first.json()).toEqual({
      rows: 3,
      imported: 2,
      existing: 0,
      suppressed: 0,
      invalid_count: 1,
      invalid: [{ line: 3, reason: 'email: "bad-address" is not a valid email address' }],
      status: 'active',
      confirmation_emails_sent: false,
    });
    const second = await post('?confirmed=true', csv, 'text/csv; charset=utf-8');
    expect(second.json()).toMatchObject({ imported: 0, existing: 2 });

    expect((await post('?list=nope', csv)).json().message).toBe('list: unknown list "nope" (known: dispatch, weekly)');
    expect((await post('', 'email\n"broken\n')).json().message).toMatch(/^malformed CSV at line 2/);
    expect((await post('', 'mail\nx@example.com\n')).statusCode).toBe(400);
    const json = await t.server.inject({ method: 'POST', url: '/api/subscribers/import', headers: auth, payload: { email: 'x@example.com' } });
    expect(json.statusCode).toBe(415);

    const exported = await t.server.inject({ url: '/api/subscribers/export', headers: auth });
    expect(exported.statusCode).toBe(200);
    expect(exported.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(exported.headers['content-disposition']).toMatch(/^attachment; filename="subscribers-\d{4}-\d{2}-\d{2}\.csv"$/);
    const rows = parse(exported.body, { columns: true }) as Record<string, string>[];
    expect(rows.map((r) => [r.email, r.name, r.status, r.lists, r.source])).toEqual([
      ['ann@example.com', 'Ann', 'active', 'weekly:instant', 'import'],
      ['bob@example.com', 'Bob, Jr', 'active', 'dispatch:instant;weekly:daily', 'import'],
    ]);
    const weekly = await t.server.inject({ url: '/api/subscribers/export?list=dispatch', headers: auth });
    expect(weekly.body.trim().split('\n')).toHaveLength(2);
    expect((await t.server.inject({ url: '/api/subscribers/export' })).statusCode).toBe(401);
  });

  /** Sends an edition of dispatch to its mailable subscribers, recorded as a worker records it: the `bounces` bounce. */
  async function sendBouncing(bounces: string[]): Promise<number> {
    return (await sendWithBounces((await t.app.adapters.store()).db, bounces, t.app.now())).editionId;
  }

  it("shows a bounced subscriber's suppression and lifts it (200 with the new status); 404 when not suppressed", async () => {
    await add({ email: 'Ann@Example.com', confirmed: true });
    await add({ email: 'bob@example.com', confirmed: true });
    const edition = await sendBouncing(['Ann@Example.com']);
    const get = (email: string) => t.server.inject({ url: `/api/subscribers/${email}`, headers: auth });
    const lift = (email: string, headers: Record<string, string> = auth) => t.server.inject({ method: 'DELETE', url: `/api/subscribers/${email}/suppression`, headers });

    const bounced = (await get('ann@example.com')).json();
    expect(bounced).toMatchObject({ email: 'Ann@Example.com', status: 'bounced', suppression: { reason: 'bounced', detail: '550 5.7.1 relay access denied', edition } });
    expect(bounced.suppression.since).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    expect((await get('bob@example.com')).json().suppression).toBeNull();
    const listed = (await t.server.inject({ url: '/api/subscribers', headers: auth })).json();
    expect(listed.subscribers.map((s: { email: string; suppression: { edition: number } | null }) => [s.email, s.suppression?.edition ?? null])).toEqual([
      ['bob@example.com', null],
      ['Ann@Example.com', edition],
    ]);

    expect((await lift('ann@example.com', {})).statusCode).toBe(401);
    const lifted = await lift('ANN@example.com');
    expect(lifted.statusCode).toBe(200);
    expect(lifted.json()).toEqual({ email: 'Ann@Example.com', reason: 'bounced', detail: '550 5.7.1 relay access denied', since: bounced.suppression.since, edition, status: 'active' });
    expect((await get('ann@example.com')).json()).toMatchObject({ status: 'active', suppression: null });

    const again = await lift('ann@example.com');
    expect(again.statusCode).toBe(404);
    expect(again.json()).toEqual({ error: 'not_found', message: 'ann@example.com is not suppressed' });
    expect((await lift('not-an-email')).statusCode).toBe(400);
  });

  it("lifts the bounces of one edition together (200 { lifted }); 404 for an unknown edition, 400 for a bad id", async () => {
    for (const email of ['a@example.com', 'b@example.com', 'c@example.com']) await add({ email, confirmed: true });
    const edition = await sendBouncing(['a@example.com', 'c@example.com']);
    const lift = (id: string | number) => t.server.inject({ method: 'POST', url: `/api/editions/${id}/unsuppress`, headers: auth });

    const res = await lift(edition);
    expect(res.statusCode).toBe(200);
    expect(res.json().lifted.map((l: { email: string; reason: string; edition: number; status: string }) => [l.email, l.reason, l.edition, l.status])).toEqual([
      ['a@example.com', 'bounced', edition, 'active'],
      ['c@example.com', 'bounced', edition, 'active'],
    ]);
    expect((await t.server.inject({ url: '/api/subscribers/counts', headers: auth })).json()).toMatchObject({ active: 3, bounced: 0 });
    expect((await lift(edition)).json()).toEqual({ lifted: [] });

    const unknown = await lift(9999);
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toEqual({ error: 'not_found', message: 'no edition 9999' });
    expect((await lift('x')).statusCode).toBe(400);
    expect((await t.server.inject({ method: 'POST', url: `/api/editions/${edition}/unsuppress` })).statusCode).toBe(401);
  });
});

describe('admin API: subscriber import', () => {
  const IMPORT_TOKEN = 'import-test-admin-token-0123456789abcdef';
  const importAuth = { authorization: `Bearer ${IMPORT_TOKEN}` };
  let t: TestServer;
  beforeEach(async () => {
    t = await testServer({ env: { GAZETTE_ADMIN_TOKEN: IMPORT_TOKEN } });
  });
  afterEach(() => t.close());

  const post = (payload: string | Readable, headers: Record<string, string> = {}) =>
    t.server.inject({ method: 'POST', url: '/api/subscribers/import', headers: { ...importAuth, 'content-type': 'text/csv', ...headers }, payload });
  const stored = async () => Number((await sql<{ n: number }>`select count(*) as n from subscribers`.execute((await t.app.adapters.store()).db)).rows[0]!.n);
  // The spooled body is removed whatever happens.
  const spooled = async () => readdir(path.join(t.dataDir, 'tmp')).catch(() => []);

  /** Resolves once the spool folder holds `count` files: woken by the file system, never by a timer. */
  async function spooledFiles(count: number): Promise<void> {
    const dir = path.join(t.dataDir, 'tmp');
    await mkdir(dir, { recursive: true });
    await new Promise<void>((resolve, reject) => {
      const check = () =>
        readdir(dir).then((names) => {
          if (names.length !== count) return;
          watcher.close();
          resolve();
        }, reject);
      const watcher = watch(dir, () => void check());
      void check();
    });
  }

  /** A valid CSV of `bytes` bytes or a little more, made as it is read: rows that an import reading as it goes would store. */
  function bigCsv(bytes: number): Readable {
    return Readable.from(
      (function* () {
        yield Buffer.from('email,name\n');
        let sent = 0;
        for (let chunk = 0; sent <= bytes; chunk++) {
          const rows = Array.from({ length: 1000 }, (_, i) => `user${chunk * 1000 + i}@example.com,User\n`).join('');
          sent += rows.length;
          yield Buffer.from(rows);
        }
      })(),
    );
  }

  it('refuses a chunked body over the limit (no Content-Length) with 413 before storing a row', async () => {
    const res = await post(bigCsv(IMPORT_BODY_LIMIT));
    expect(res.statusCode).toBe(413);
    expect(res.json()).toEqual({ error: 'payload_too_large', message: 'the CSV file is larger than the 50 MB limit: nothing was imported' });
    expect(await stored()).toBe(0);
    expect(await spooled()).toEqual([]);
  }, 60_000);

  it('refuses a body whose Content-Length is over the limit with 413 without reading it', async () => {
    const res = await post('email\na@example.com\n', { 'content-length': String(IMPORT_BODY_LIMIT + 1) });
    expect(res.statusCode).toBe(413);
    expect(res.json().message).toBe('the CSV file is larger than the 50 MB limit: nothing was imported');
    expect(await stored()).toBe(0);
    expect(await spooled()).toEqual([]);
  });

  it('answers 413 to a real client still sending a chunked body, and keeps serving', async () => {
    const address = await t.server.listen({ port: 0, host: '127.0.0.1' });
    const body = Readable.toWeb(bigCsv(IMPORT_BODY_LIMIT + 1024 * 1024)) as ReadableStream<Uint8Array>;
    const res = await fetch(`${address}/api/subscribers/import`, {
      method: 'POST',
      headers: { ...importAuth, 'content-type': 'text/csv' },
      body,
      duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(413);
    expect(((await res.json()) as { message: string }).message).toMatch(/50 MB limit: nothing was imported/);
    expect(await stored()).toBe(0);
    const ok = await fetch(`${address}/api/subscribers/import`, { method: 'POST', headers: { ...importAuth, 'content-type': 'text/csv' }, body: 'email\na@example.com\n' });
    expect(await ok.json()).toMatchObject({ rows: 1, imported: 1 });
    expect(await spooled()).toEqual([]);
  }, 60_000);

  it('removes the spooled body when the upload breaks off, before or while it is read', async () => {
    const early = new Readable({ read() {} });
    early.push('email\na@example.com\n');
    setImmediate(() => early.destroy(new Error('connection reset')));
    await expect(post(early)).rejects.toThrow('connection reset');

    await t.server.listen({ port: 0, host: '127.0.0.1' });
    const socket = connect((t.server.server.address() as AddressInfo).port, '127.0.0.1');
    const spooling = spooledFiles(1);
    const part = 'email\nb@example.com\n';
    socket.write(
      'POST /api/subscribers/import HTTP/1.1\r\nHost: gazette.test\r\n' +
        `Authorization: ${importAuth.authorization}\r\nContent-Type: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n` +
        `${part.length.toString(16)}\r\n${part}\r\n`,
    );
    // The client goes away once the server is copying the body.
    await spooling;
    socket.destroy();
    await spooledFiles(0);
    expect(await stored()).toBe(0);
  });

  it('refuses a file malformed at its last line whole (400, naming the line): none of the 5,000 rows before it is stored', async () => {
    const rows = Array.from({ length: 4_999 }, (_, i) => `user${i}@example.com,User ${i}`).join('\n');
    const res = await post(Readable.from([`email,name\n${rows}\n"last@example.com,Last\n`]));
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({ error: 'bad_request', message: 'malformed CSV at line 5001: a quoted value is never closed (nothing was imported)' });
    expect(await stored()).toBe(0);
    expect(await spooled()).toEqual([]);
  });

  it('imports the good rows of a file with bad ones, listing each bad row with its line and reason', async () => {
    const csv = [
      'email,name,lists',
      'ann@example.com,Ann,weekly',
      'not-an-email,X,',
      'bob@example.com,Bob,nosuch',
      'cat@example.com,Cat,',
      'ANN@example.com,Ann again,',
      'dan@example.com,Dan,dispatch',
    ].join('\n');
    const res = await post(csv);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      rows: 6,
      imported: 3,
      existing: 0,
      suppressed: 0,
      invalid_count: 3,
      invalid: [
        { line: 3, reason: 'email: "not-an-email" is not a valid email address' },
        { line: 4, reason: 'lists: unknown list "nosuch" (known: dispatch, weekly)' },
        { line: 6, reason: 'duplicate: ANN@example.com is already on line 2' },
      ],
      status: 'pending',
      confirmation_emails_sent: false,
    });
    expect(await stored()).toBe(3);
    expect(await spooled()).toEqual([]);
  });
});
