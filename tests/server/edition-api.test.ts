import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { testServer, type TestServer } from '../helpers/server.ts';

const TOKEN = 'admin-token-0123456789abcdef0123456789';

let t: TestServer;
let list: string;
let editor: { authorization: string };
beforeEach(async () => {
  t = await testServer({ env: { GAZETTE_ADMIN_TOKEN: TOKEN } });
  list = (await t.app.content()).site.lists[0]!.slug;
  await t.app.users.add({ email: 'ed@example.com', password: 'a long enough password' });
  editor = { authorization: `Bearer ${(await t.app.users.createToken('ed@example.com', 'script')).token}` };
  for (const email of ['r1@example.com', 'r2@example.com']) await t.app.subscribers.add({ email, confirmed: true, source: 'cli' });
});
afterEach(() => t.close());

describe('editions API', () => {
  it('lets a script do what the console does: make a draft, edit it, preview, test, send, pause, resume, cancel', async () => {
    const stories = (await t.app.content()).stories.filter((s) => !s.draft).slice(0, 2).map((s) => s.slug);
    const made = await t.server.inject({ method: 'POST', url: '/api/editions', headers: editor, payload: { list, digest: true, stories, subject: 'From a script' } });
    expect(made.statusCode).toBe(201);
    const { id } = made.json();
    expect(made.json()).toMatchObject({ kind: 'digest', subject: 'From a script', status: 'draft', left_out: null });

    const patched = await t.server.inject({ method: 'PATCH', url: `/api/editions/${id}`, headers: editor, payload: { preheader: 'New preheader' } });
    expect(patched.json()).toMatchObject({ subject: 'From a script', preheader: 'New preheader' });
    const shown = (await t.server.inject({ url: `/api/editions/${id}`, headers: editor })).json();
    expect(shown).toMatchObject({ id, preflight: [], progress: { status: 'draft', total: 0 } });
    const preview = (await t.server.inject({ url: `/api/editions/${id}/preview`, headers: editor })).json();
    expect(preview.html).toContain('New preheader');
    expect(preview.text.length).toBeGreaterThan(0);
    expect((await t.server.inject({ url: `/api/editions/${id}/audience`, headers: editor })).json()).toEqual({ subscribers: 2 });

    const test = await t.server.inject({ method: 'POST', url: `/api/editions/${id}/test`, headers: editor, payload: { to: ['a@example.com', 'b@example.com'] } });
    expect(test.json()).toEqual({ to: ['a@example.com', 'b@example.com'], transport: 'outbox' });
    expect((await t.server.inject({ method: 'POST', url: `/api/editions/${id}/test`, headers: editor, payload: { to: 'nope' } })).statusCode).toBe(400);

    const sent = await t.server.inject({ method: 'POST', url: `/api/editions/${id}/send`, headers: editor });
    expect(sent.json()).toMatchObject({ editionId: id, added: 2, queued: 2 });
    const paused = await t.server.inject({ method: 'POST', url: `/api/editions/${id}/pause`, headers: editor });
    expect(paused.json()).toMatchObject({ status: 'paused', pause_kind: 'operator' });
    expect(paused.json().last_error).toContain('ed@example.com');
    expect((await t.server.inject({ method: 'POST', url: `/api/editions/${id}/resume`, headers: editor })).json()).toMatchObject({ resumed: true });
    expect((await t.server.inject({ method: 'POST', url: `/api/editions/${id}/cancel`, headers: { authorization: `Bearer ${TOKEN}` } })).json()).toMatchObject({ status: 'cancelled', last_error: 'cancelled by GAZETTE_ADMIN_TOKEN' });
    const listed = (await t.server.inject({ url: '/api/editions', headers: editor })).json();
    expect(listed.editions.map((e: { id: number; status: string }) => [e.id, e.status])).toEqual([[id, 'cancelled']]);
  });

  it('refuses bad input naming the field, and unknown editions with 404', async () => {
    const bad = await t.server.inject({ method: 'POST', url: '/api/editions', headers: editor, payload: { list, digest: true, colour: 'red' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toContain('unknown field "colour"');
    expect((await t.server.inject({ method: 'POST', url: '/api/editions', headers: editor, payload: { list, digest: 'yes' } })).json().message).toBe('digest: expected true or false');
    expect((await t.server.inject({ method: 'POST', url: '/api/editions', headers: editor, payload: { list: 'nope', digest: true } })).statusCode).toBe(404);
    expect((await t.server.inject({ url: '/api/editions/999', headers: editor })).statusCode).toBe(404);
    expect((await t.server.inject({ url: '/api/editions/abc', headers: editor })).statusCode).toBe(400);
    expect((await t.server.inject({ url: '/api/editions' })).statusCode).toBe(401);
  });
});

describe('stories and users API', () => {
  it('lists every story with its state, and the files left out with their problems', async () => {
    const { writeFile } = await import('node:fs/promises');
    await writeFile(`${t.contentDir}/stories/broken.md`, '---\ntitle: Broken\n---\nNo date.\n');
    const stories = async () => (await t.server.inject({ url: '/api/stories', headers: editor })).json();
    // content/ is looked at again at most once a second: the new file shows within that.
    await expect.poll(async () => (await stories()).problems.length, { timeout: 5000, interval: 100 }).toBeGreaterThan(0);
    const body = await stories();
    expect(body.stories.find((s: { slug: string }) => s.slug === 'draft-sanctions-tracker')).toMatchObject({ state: 'draft' });
    expect(body.stories.filter((s: { state: string }) => s.state === 'published').length).toBeGreaterThan(0);
    expect(body.problems).toContainEqual(expect.objectContaining({ line: 2, field: 'date', file: expect.stringMatching(/stories\/broken\.md$/) }));
  });

  it('manages users for admins only', async () => {
    const admin = { authorization: `Bearer ${TOKEN}` };
    expect((await t.server.inject({ url: '/api/users', headers: editor })).statusCode).toBe(403);
    const added = await t.server.inject({ method: 'POST', url: '/api/users', headers: admin, payload: { email: 'new@example.com', password: 'twelve chars!', role: 'admin' } });
    expect(added.statusCode).toBe(201);
    expect(added.json()).toMatchObject({ email: 'new@example.com', role: 'admin' });
    const short = await t.server.inject({ method: 'POST', url: '/api/users', headers: admin, payload: { email: 'x@example.com', password: 'short' } });
    expect(short.json()).toMatchObject({ error: 'bad_request', message: 'password: at least 12 characters (got 5)' });
    expect((await t.server.inject({ method: 'PATCH', url: '/api/users/ed@example.com', headers: admin, payload: { role: 'admin' } })).json().role).toBe('admin');
    expect((await t.server.inject({ method: 'PUT', url: '/api/users/new@example.com/password', headers: admin, payload: { password: 'another long one' } })).statusCode).toBe(204);
    expect(await t.app.users.authenticate('new@example.com', 'another long one')).toBeDefined();
    expect((await t.server.inject({ method: 'DELETE', url: '/api/users/new@example.com', headers: admin })).statusCode).toBe(204);
    expect((await t.server.inject({ url: '/api/users', headers: admin })).json().users.map((u: { email: string }) => u.email)).toEqual(['ed@example.com']);
  });
});
