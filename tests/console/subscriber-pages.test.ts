import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ImportJobs, jobPercent } from '../../src/console/import-jobs.ts';
import { InputError } from '../../src/errors.ts';
import type { ImportProgress, ImportSummary } from '../../src/subscribers/csv-import.ts';
import { testServer, type TestServer } from '../helpers/server.ts';
import { signIn, type ConsoleSession } from '../helpers/console-session.ts';

let t: TestServer;
beforeEach(async () => {
  t = await testServer({ env: { BASE_URL: 'http://gazette.test' } });
});
afterEach(() => t.close());

const add = (email: string, options: { name?: string; lists?: string[]; frequency?: string; confirmed?: boolean } = {}) =>
  t.app.subscribers.add({ email, name: options.name, lists: options.lists ?? ['dispatch'], frequency: options.frequency, confirmed: options.confirmed ?? true, source: 'cli' });

/** The page's text with the entities Handlebars writes for `=` and `&` turned back. */
const html = (body: string) => body.replaceAll('&#x3D;', '=').replaceAll('&amp;', '&');

/** POSTs a multipart import form the way a browser does, the CSRF token in the query. */
async function upload(session: ConsoleSession, csv: string, fields: Record<string, string> = { list: 'dispatch', confirmed: 'yes' }) {
  if (!session.csrf) await session.get('/admin/subscribers/import');
  const form = new FormData();
  for (const [key, value] of Object.entries(fields)) form.set(key, value);
  form.set('file', new Blob([csv], { type: 'text/csv' }), 'people.csv');
  const encoded = new Response(form);
  return t.server.inject({
    method: 'POST',
    url: `/admin/subscribers/import?_csrf=${encodeURIComponent(session.csrf)}`,
    headers: { cookie: session.cookie, accept: 'text/html', 'content-type': encoded.headers.get('content-type')! },
    payload: Buffer.from(await encoded.arrayBuffer()),
  });
}

/** The job page once the import has ended (it stops asking to be refreshed). */
async function finishedJob(session: ConsoleSession, location: string): Promise<string> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const page = await session.get(location);
    expect(page.statusCode).toBe(200);
    if (!page.body.includes('http-equiv="refresh"')) return page.body;
    if (Date.now() > deadline) throw new Error(`the import at ${location} did not finish`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('the subscribers listing', () => {
  it('shows counts by status and a table, searches, filters by list and status', async () => {
    await add('ann@example.com', { name: 'Ann Archer' });
    await add('bob@example.com', { name: 'Bob Baker', lists: ['weekly'], frequency: 'weekly' });
    await add('cat@example.com', { confirmed: false });
    const session = await signIn(t.server, t.app);
    const all = await session.get('/admin/subscribers');
    expect(all.statusCode).toBe(200);
    expect(all.body).toContain('All: 3');
    expect(all.body).toMatch(/<span class="badge active">active<\/span> 2/);
    expect(all.body).toMatch(/<span class="badge pending">pending<\/span> 1/);
    expect(all.body).toContain('<a href="/admin/subscribers/ann%40example.com">ann@example.com</a>');
    expect(all.body).toContain('Ann Archer');
    expect(all.body).toMatch(/Weekly Briefing <span class="muted">\(weekly\)<\/span>/);
    expect(all.body).toContain('href="/admin/subscribers/new"');
    expect(all.body).toContain('href="/admin/subscribers/import"');
    expect(all.body).toContain('href="/admin/subscribers/export"');

    const searched = await session.get('/admin/subscribers?search=baker');
    expect(searched.body).toContain('bob@example.com');
    expect(searched.body).not.toContain('ann@example.com');

    const weekly = await session.get('/admin/subscribers?list=weekly');
    expect(weekly.body).toContain('bob@example.com');
    expect(weekly.body).not.toContain('cat@example.com');
    expect(html(weekly.body)).toContain('href="/admin/subscribers/export?list=weekly"');

    const pending = await session.get('/admin/subscribers?status=pending');
    expect(pending.body).toContain('cat@example.com');
    expect(pending.body).not.toContain('bob@example.com');

    expect((await session.get('/admin/subscribers?status=nonsense')).statusCode).toBe(400);
    expect((await session.get('/admin/subscribers?list=nope')).body).toContain('unknown list');
  });

  it('pages through many subscribers', async () => {
    for (let i = 0; i < 55; i++) await add(`reader${String(i).padStart(2, '0')}@example.com`);
    const session = await signIn(t.server, t.app);
    const first = await session.get('/admin/subscribers');
    expect(first.body).toContain('Page 1 of 2');
    expect(html(first.body)).toContain('href="/admin/subscribers?page=2"');
    const second = await session.get('/admin/subscribers?page=2');
    expect(second.body).toContain('Page 2 of 2');
    expect((second.body.match(/<a href="\/admin\/subscribers\/reader/g) ?? []).length).toBe(5);
  });
});

describe('adding a subscriber', () => {
  it('adds a confirmed subscriber, who is then listed and has a page with their fields', async () => {
    const session = await signIn(t.server, t.app);
    const form = await session.get('/admin/subscribers/new');
    expect(form.statusCode).toBe(200);
    expect(form.body).toContain('name="lists" value="weekly"');
    expect(form.body).toContain('Confirmed (I hold their consent)');
    const res = await session.post('/admin/subscribers/new', { email: 'Dora@Example.com', name: 'Dora Dee', lists: ['dispatch', 'weekly'], frequency: 'daily', confirmed: 'yes' });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/admin/subscribers/Dora%40Example.com');
    const page = await session.get(res.headers.location as string);
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('Added Dora@Example.com: active');
    expect(page.body).toContain('<span class="badge active">active</span>');
    expect(page.body).toContain('Dora Dee');
    expect(page.body).toMatch(/The Dispatch <span class="muted">\(dispatch\)<\/span>: daily/);
    expect(page.body).toMatch(/Weekly Briefing <span class="muted">\(weekly\)<\/span>: daily/);
    expect(page.body).toContain('Source: console');
    expect(page.body).toMatch(/20\d\d, \d\d:\d\d UTC/);
    expect(page.body).toContain('no bounce, complaint or unsubscribe by mail is recorded');
    expect((await session.get('/admin/subscribers')).body).toContain('Dora@Example.com');
    // The address is case-insensitive in the URL too.
    expect((await session.get('/admin/subscribers/dora%40example.com')).statusCode).toBe(200);
    expect((await session.get('/admin/subscribers/nobody%40example.com')).statusCode).toBe(404);
  });

  it('adds an unconfirmed subscriber as pending and says a confirmation email is queued', async () => {
    const session = await signIn(t.server, t.app);
    const res = await session.post('/admin/subscribers/new', { email: 'eve@example.com', lists: ['dispatch'], frequency: 'instant' });
    expect(res.statusCode).toBe(303);
    const page = await session.get(res.headers.location as string);
    expect(page.body).toContain('a confirmation email is queued');
    expect(page.body).toContain('<span class="badge pending">pending</span>');
    const mail = await t.outbox();
    expect(mail.filter((m) => JSON.stringify(m.parsed.to).includes('eve@example.com')).map((m) => m.parsed.subject)).toEqual([expect.stringMatching(/^Confirm/)]);
  });

  it('re-renders the form with the error, keeping what was typed', async () => {
    await add('ann@example.com');
    const session = await signIn(t.server, t.app);
    const bad = await session.post('/admin/subscribers/new', { email: 'not an address', name: 'Zed', lists: ['weekly'], confirmed: 'yes' });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain('class="flash error"');
    expect(bad.body).toContain('value="Zed"');
    expect(bad.body).toContain('name="lists" value="weekly" checked');
    const none = await session.post('/admin/subscribers/new', { email: 'new@example.com', confirmed: 'yes' });
    expect(none.statusCode).toBe(400);
    expect(none.body).toContain('choose at least one list');
    const taken = await session.post('/admin/subscribers/new', { email: 'ann@example.com', lists: ['dispatch'], confirmed: 'yes' });
    expect(taken.statusCode).toBe(400);
    expect(taken.body).toContain('already subscribed');
  });
});

describe('erasing and unsuppressing', () => {
  it('shows Erase to admins only; an editor is refused (403); an admin erases after confirming', async () => {
    await add('ann@example.com');
    const editor = await signIn(t.server, t.app, 'editor@example.com', 'editor');
    const seen = await editor.get('/admin/subscribers/ann%40example.com');
    expect(seen.body).not.toContain('/erase');
    expect((await editor.get('/admin/subscribers/ann%40example.com/erase')).statusCode).toBe(403);
    const refused = await editor.post('/admin/subscribers/ann%40example.com/erase');
    expect(refused.statusCode).toBe(403);
    expect(refused.body).toContain('only an admin can erase subscribers');
    expect((await t.app.subscribers.find('ann@example.com')).email).toBe('ann@example.com');

    const admin = await signIn(t.server, t.app, 'admin@example.com', 'admin');
    const page = await admin.get('/admin/subscribers/ann%40example.com');
    expect(page.body).toContain('href="/admin/subscribers/ann%40example.com/erase"');
    const confirm = await admin.get('/admin/subscribers/ann%40example.com/erase');
    expect(confirm.statusCode).toBe(200);
    expect(confirm.body).toContain('action="/admin/subscribers/ann%40example.com/erase"');
    const erased = await admin.post('/admin/subscribers/ann%40example.com/erase');
    expect(erased.statusCode).toBe(303);
    expect(erased.headers.location).toBe('/admin/subscribers');
    expect((await admin.get('/admin/subscribers')).body).toContain('Erased ann@example.com.');
    await expect(t.app.subscribers.find('ann@example.com')).rejects.toThrow(/no subscriber/);
  });

  it('lifts a suppression after a confirmation page', async () => {
    await add('bob@example.com');
    await (await t.app.adapters.subscribers()).suppress('bob@example.com', 'bounced', '550 5.1.1 mailbox unknown', new Date());
    const session = await signIn(t.server, t.app);
    const page = await session.get('/admin/subscribers/bob%40example.com');
    expect(page.body).toContain('<span class="badge failed">suppressed</span>');
    expect(page.body).toContain('550 5.1.1 mailbox unknown');
    expect(page.body).toContain('href="/admin/subscribers/bob%40example.com/unsuppress"');
    expect((await session.get('/admin/subscribers')).body).toContain('title="bounced">suppressed</span>');
    const confirm = await session.get('/admin/subscribers/bob%40example.com/unsuppress');
    expect(confirm.statusCode).toBe(200);
    expect(confirm.body).toContain('Lift the suppression');
    const lifted = await session.post('/admin/subscribers/bob%40example.com/unsuppress');
    expect(lifted.statusCode).toBe(303);
    const after = await session.get(lifted.headers.location as string);
    expect(after.body).toContain('Lifted the suppression of bob@example.com (bounced)');
    expect(after.body).not.toContain('/unsuppress"');
    expect((await t.app.subscribers.find('bob@example.com')).suppression).toBeNull();
    // Not suppressed any more: nothing to lift.
    expect((await session.post('/admin/subscribers/bob%40example.com/unsuppress')).statusCode).toBe(404);
  });
});

describe('CSV import', () => {
  it('imports a file in the background: the job page shows progress, then the summary and the refused row by line', async () => {
    await add('old@example.com');
    const session = await signIn(t.server, t.app);
    const form = await session.get('/admin/subscribers/import');
    expect(form.body).toContain('enctype="multipart/form-data"');
    expect(html(form.body)).toContain(`action="/admin/subscribers/import?_csrf=${session.csrf}"`);
    const csv = 'email,name\nann@example.com,Ann\nbob@example.com,Bob\nnot-an-address,Nobody\ncat@example.com,Cat\nold@example.com,Old\n';
    const res = await upload(session, csv);
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toMatch(/^\/admin\/subscribers\/import\/[A-Za-z0-9_-]+$/);
    const page = await finishedJob(session, res.headers.location as string);
    expect(page).toContain('Import of people.csv');
    expect(page).toContain('Imported: 3');
    expect(page).toContain('Rows: 5');
    expect(page).toContain('Already subscribed: 1');
    expect(page).toContain('Refused: 1');
    expect(page).toMatch(/<td class="num">4<\/td><td>[^<]*not-an-address/);
    expect((await t.app.subscribers.find('cat@example.com')).status).toBe('active');
    expect((await t.app.subscribers.counts()).total).toBe(4);
    // The spooled file is gone once the import ended.
    expect(await readdir(path.join(t.dataDir, 'tmp'))).toEqual([]);
  });

  it('refuses a malformed file whole: nothing stored, the reason shown', async () => {
    const session = await signIn(t.server, t.app);
    const res = await upload(session, 'email,name\nann@example.com,Ann\n"bob@example.com,Bob\ncat@example.com,Cat\n', { list: 'weekly' });
    expect(res.statusCode).toBe(303);
    const page = await finishedJob(session, res.headers.location as string);
    expect(page).toContain('The file was refused: malformed CSV at line 3');
    expect(page).toContain('nothing was imported');
    expect((await t.app.subscribers.counts()).total).toBe(0);
    expect(await readdir(path.join(t.dataDir, 'tmp'))).toEqual([]);
  });

  it('re-renders the form for an unknown list or a missing file, and needs the CSRF token', async () => {
    const session = await signIn(t.server, t.app);
    const unknown = await upload(session, 'email\nann@example.com\n', { list: 'nope' });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.body).toContain('unknown list');
    const empty = await upload(session, '', { list: 'dispatch' });
    expect(empty.statusCode).toBe(400);
    expect(empty.body).toContain('is empty');
    const form = new FormData();
    form.set('file', new Blob(['email\nann@example.com\n']), 'a.csv');
    const encoded = new Response(form);
    const forged = await t.server.inject({
      method: 'POST',
      url: '/admin/subscribers/import',
      headers: { cookie: session.cookie, accept: 'text/html', 'content-type': encoded.headers.get('content-type')! },
      payload: Buffer.from(await encoded.arrayBuffer()),
    });
    expect(forged.statusCode).toBe(403);
    expect((await t.app.subscribers.counts()).total).toBe(0);
    expect(await readdir(path.join(t.dataDir, 'tmp'))).toEqual([]);
    expect((await session.get('/admin/subscribers/import/nope')).statusCode).toBe(404);
  });
});

describe('CSV export', () => {
  it('downloads every subscriber, or one list’s, as CSV', async () => {
    await add('ann@example.com');
    await add('bob@example.com', { lists: ['weekly'] });
    const session = await signIn(t.server, t.app);
    const all = await session.get('/admin/subscribers/export');
    expect(all.statusCode).toBe(200);
    expect(all.headers['content-type']).toMatch(/^text\/csv/);
    expect(all.headers['content-disposition']).toMatch(/^attachment; filename="subscribers-\d{4}-\d{2}-\d{2}\.csv"$/);
    expect(all.body.split('\n')[0]).toContain('email');
    expect(all.body).toContain('ann@example.com');
    expect(all.body).toContain('bob@example.com');
    const weekly = await session.get('/admin/subscribers/export?list=weekly');
    expect(weekly.headers['content-disposition']).toContain('subscribers-weekly-');
    expect(weekly.body).toContain('bob@example.com');
    expect(weekly.body).not.toContain('ann@example.com');
  });
});

describe('the import registry', () => {
  it('follows a running import, removes its file when it ends, then forgets it after an hour', async () => {
    let now = new Date('2026-12-01T10:00:00Z');
    const jobs = new ImportJobs(() => now);
    let finish!: (summary: ImportSummary) => void;
    let report!: (progress: ImportProgress) => void;
    let cleaned = 0;
    const job = jobs.start(
      { fileName: 'a.csv', size: 1000, list: 'dispatch', confirmed: false, startedBy: 1 },
      (onProgress) => {
        report = onProgress;
        return new Promise((resolve) => (finish = resolve));
      },
      async () => void (cleaned += 1),
    );
    expect(jobs.get(job.id)).toMatchObject({ state: 'running', checked: 0 });
    report({ phase: 'validate', rows: 400, bytes: 500 });
    expect(jobs.get(job.id)).toMatchObject({ phase: 'validate', checked: 400, stored: 0 });
    expect(jobPercent(job)).toBe(25);
    report({ phase: 'insert', rows: 200, bytes: 500 });
    expect(jobs.get(job.id)).toMatchObject({ phase: 'insert', checked: 400, stored: 200 });
    expect(jobPercent(job)).toBe(75);
    finish({ rows: 800, imported: 790, existing: 5, suppressed: 1, invalidCount: 4, invalid: [] });
    await jobs.settled();
    expect(cleaned).toBe(1);
    expect(jobs.get(job.id)).toMatchObject({ state: 'done', checked: 800, stored: 800, summary: { imported: 790 } });
    expect(jobPercent(job)).toBe(100);
    now = new Date(now.getTime() + 59 * 60_000);
    expect(jobs.get(job.id)).toBeDefined();
    now = new Date(now.getTime() + 2 * 60_000);
    expect(jobs.get(job.id)).toBeUndefined();
  });

  it('keeps the reason of a refused file, and hides an unexpected failure behind a plain message', async () => {
    const jobs = new ImportJobs(() => new Date(), { error: () => undefined });
    let cleaned = 0;
    const cleanup = async () => void (cleaned += 1);
    const refused = jobs.start({ fileName: 'a.csv', size: 1, list: undefined, confirmed: false, startedBy: 1 }, async () => {
      throw new InputError('malformed CSV at line 2: quote not closed (nothing was imported)');
    }, cleanup);
    const broken = jobs.start({ fileName: 'b.csv', size: 1, list: undefined, confirmed: false, startedBy: 1 }, async () => {
      throw new Error('SQLITE_BUSY');
    }, cleanup);
    await jobs.settled();
    expect(cleaned).toBe(2);
    expect(jobs.get(refused.id)).toMatchObject({ state: 'failed', error: 'malformed CSV at line 2: quote not closed (nothing was imported)' });
    expect(jobs.get(broken.id)?.error).toMatch(/^The import broke off on our side/);
  });
});
