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
