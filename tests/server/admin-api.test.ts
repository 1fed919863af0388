import { Readable } from 'node:stream';
import { parse } from 'csv-parse/sync';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readOutbox } from '../helpers/outbox.ts';
import { testServer, type TestServer } from '../helpers/server.ts';

const TOKEN = 'admin-token';
const auth = { authorization: `Bearer ${TOKEN}` };

describe('admin API switched off', () => {
  let t: TestServer;
  beforeEach(async () => {
    t = await testServer();
  });
  afterEach(() => t.close());

  it('answers 404 on every /api URL, token or not, saying how to turn it on', async () => {
    for (const url of ['/api', '/api/subscribers', '/api/subscribers/counts', '/api/nothing']) {
      const res = await t.server.inject({ url, headers: auth });
      expect(res.statusCode, url).toBe(404);
      expect(res.json()).toEqual({ error: 'not_found', message: 'admin API is off: set GAZETTE_ADMIN_TOKEN' });
    }
    const post = await t.server.inject({ method: 'POST', url: '/api/subscribers', headers: auth, payload: { email: 'a@example.com' } });
    expect(post.statusCode).toBe(404);
    expect((await (await t.app.subscribers()).countByStatus()).pending).toBe(0);
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
    expect((await (await t.app.subscribers()).countByStatus()).active).toBe(0);
  });

  it('adds a confirmed subscriber (201), refuses the same address in any case (409) and bad input (400)', async () => {
    const created = await add({ email: 'Ann@Example.com', name: 'Ann', lists: ['weekly'], frequency: 'weekly', confirmed: true });
    expect(created.statusCode).toBe(201);
    const body = created.json();
    expect(body).toMatchObject({ email: 'Ann@Example.com', name: 'Ann', status: 'active', lists: [{ slug: 'weekly', frequency: 'weekly' }], source: 'api' });
    expect(body.confirmed_at).toBeTruthy();
    expect(Object.keys(body).sort()).toEqual(['confirmed_at', 'created_at', 'email', 'id', 'lists', 'name', 'source', 'status']);
    expect(await readOutbox(t.dataDir)).toHaveLength(0);

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
    const mail = await readOutbox(t.dataDir);
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
    const repo = await t.app.subscribers();
    const store = await t.app.store();
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

  it('refuses an import body over the route limit with 413', async () => {
    const res = await t.server.inject({
      method: 'POST',
      url: '/api/subscribers/import',
      headers: { ...auth, 'content-type': 'text/csv', 'content-length': String(60 * 1024 * 1024) },
      payload: 'email\n',
    });
    expect(res.statusCode).toBe(413);
  });
});
