import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { testServer, type TestServer } from '../helpers/server.ts';
import { signIn, TEST_PASSWORD } from '../helpers/console-session.ts';

let t: TestServer;
beforeEach(async () => {
  t = await testServer({ env: { BASE_URL: 'http://gazette.test' } });
});
afterEach(() => t.close());

const NEW_PASSWORD = 'a brand new passphrase 42';

describe('the users page', () => {
  it('lets an admin add an editor, who can then sign in; a short password is refused naming 12 characters', async () => {
    const admin = await signIn(t.server, t.app, 'admin@example.com', 'admin');
    const page = await admin.get('/admin/users');
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('admin@example.com');
    expect(page.body).toContain('<span class="muted">(you)</span>');
    expect(page.body).toContain('aria-current="page">Users</a>');

    const short = await admin.post('/admin/users', { email: 'ed@example.com', role: 'editor', password: 'short' });
    expect(short.statusCode).toBe(400);
    expect(short.body).toContain('at least 12 characters');
    expect(short.body).toContain('value="ed@example.com"');
    await expect(t.app.users.find('ed@example.com')).rejects.toThrow(/no user/);

    const added = await admin.post('/admin/users', { email: 'ed@example.com', role: 'editor', password: TEST_PASSWORD });
    expect(added.statusCode).toBe(303);
    expect(added.headers.location).toBe('/admin/users');
    const listed = await admin.get('/admin/users');
    expect(listed.body).toContain('Added ed@example.com (editor)');
    expect(listed.body).toMatch(/<td>ed@example\.com<\/td>\s*<td><span class="badge draft">editor<\/span>/);
    expect(listed.body).toMatch(/ed@example\.com[\s\S]*?<span class="muted">never<\/span>/);
    expect((await t.app.users.authenticate('ed@example.com', TEST_PASSWORD))?.role).toBe('editor');

    const again = await admin.post('/admin/users', { email: 'ED@example.com', role: 'editor', password: TEST_PASSWORD });
    expect(again.statusCode).toBe(409);
    expect(again.body).toContain('already has an account');
  });

  it('is for admins only: an editor gets 403 on the page and on every change', async () => {
    await t.app.users.add({ email: 'admin@example.com', password: TEST_PASSWORD, role: 'admin' });
    const admin = await t.app.users.find('admin@example.com');
    const editor = await signIn(t.server, t.app, 'editor@example.com', 'editor');
    expect((await editor.get('/admin')).body).not.toContain('href="/admin/users"');
    const page = await editor.get('/admin/users');
    expect(page.statusCode).toBe(403);
    expect(page.body).toContain('only an admin can manage users');
    const posts: [string, Record<string, string>][] = [
      ['/admin/users', { email: 'x@example.com', role: 'admin', password: TEST_PASSWORD }],
      [`/admin/users/${admin.id}/role`, { role: 'editor' }],
      [`/admin/users/${admin.id}/password`, { password: NEW_PASSWORD }],
      [`/admin/users/${admin.id}/remove`, {}],
    ];
    for (const [url, form] of posts) expect((await editor.post(url, form)).statusCode, url).toBe(403);
    expect((await editor.get(`/admin/users/${admin.id}/remove`)).statusCode).toBe(403);
    expect((await t.app.users.find('admin@example.com')).role).toBe('admin');
    expect(await t.app.users.authenticate('admin@example.com', TEST_PASSWORD)).toBeDefined();
    await expect(t.app.users.find('x@example.com')).rejects.toThrow();
  });

  it('changes a role, resets a password (ending their sessions), and removes a user after confirming', async () => {
    const admin = await signIn(t.server, t.app, 'admin@example.com', 'admin');
    const ed = await signIn(t.server, t.app, 'ed@example.com', 'editor');
    const edUser = await t.app.users.find('ed@example.com');

    const promoted = await admin.post(`/admin/users/${edUser.id}/role`, { role: 'admin' });
    expect(promoted.statusCode).toBe(303);
    expect((await admin.get('/admin/users')).body).toContain('ed@example.com is now an admin.');
    expect((await t.app.users.find('ed@example.com')).role).toBe('admin');
    expect((await admin.post(`/admin/users/${edUser.id}/role`, { role: 'boss' })).statusCode).toBe(303);
    expect((await admin.get('/admin/users')).body).toContain('role: expected one of editor, admin');

    const short = await admin.post(`/admin/users/${edUser.id}/password`, { password: 'tiny' });
    expect(short.statusCode).toBe(303);
    expect((await admin.get('/admin/users')).body).toContain('at least 12 characters');
    const reset = await admin.post(`/admin/users/${edUser.id}/password`, { password: NEW_PASSWORD });
    expect(reset.statusCode).toBe(303);
    expect((await admin.get('/admin/users')).body).toContain('New password set for ed@example.com');
    expect(await t.app.users.authenticate('ed@example.com', NEW_PASSWORD)).toBeDefined();
    // Ed's session was ended by the reset.
    const edNow = await ed.get('/admin/account');
    expect(edNow.statusCode).toBe(303);
    expect(edNow.headers.location).toMatch(/^\/admin\/login/);

    const confirm = await admin.get(`/admin/users/${edUser.id}/remove`);
    expect(confirm.statusCode).toBe(200);
    expect(confirm.body).toContain('Remove ed@example.com?');
    expect(confirm.body).toContain(`action="/admin/users/${edUser.id}/remove"`);
    const removed = await admin.post(`/admin/users/${edUser.id}/remove`);
    expect(removed.statusCode).toBe(303);
    expect((await admin.get('/admin/users')).body).toContain('Removed ed@example.com.');
    await expect(t.app.users.find('ed@example.com')).rejects.toThrow(/no user/);
    expect((await admin.post(`/admin/users/${edUser.id}/remove`)).statusCode).toBe(404);

    // The last admin stays.
    const me = await t.app.users.find('admin@example.com');
    expect((await admin.post(`/admin/users/${me.id}/remove`)).statusCode).toBe(303);
    expect((await admin.get('/admin/users')).body).toContain('is the last admin');
    expect((await t.app.users.find('admin@example.com')).role).toBe('admin');
  });
});

describe('the account page', () => {
  it('shows the user, makes an API token shown once, and revokes it', async () => {
    const session = await signIn(t.server, t.app, 'ed@example.com', 'editor');
    const page = await session.get('/admin/account');
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('Email: ed@example.com');
    expect(page.body).toContain('Role: editor');
    expect(page.body).toContain('You have no API token.');

    const made = await session.post('/admin/account/tokens', { name: 'nightly export' });
    expect(made.statusCode).toBe(201);
    expect(made.headers['cache-control']).toBe('no-store');
    const token = /value="(gz_[A-Za-z0-9_-]+)"/.exec(made.body)?.[1];
    expect(token).toBeDefined();
    expect(made.body).toContain(`Authorization: Bearer ${token}`);
    expect(made.body).toContain('http://gazette.test/api');
    expect(made.body).toContain('shown this once');
    expect((await t.app.users.userForToken(token!))?.email).toBe('ed@example.com');

    const later = await session.get('/admin/account');
    expect(later.body).not.toContain(token!);
    expect(later.body).toContain('nightly export');
    expect(later.body).toContain(`<code>${token!.slice(0, 9)}…</code>`);
    const [listed] = await t.app.users.tokens('ed@example.com');
    expect(listed!.lastUsedAt).not.toBeNull();

    const revoked = await session.post(`/admin/account/tokens/${listed!.id}/revoke`);
    expect(revoked.statusCode).toBe(303);
    expect((await session.get('/admin/account')).body).toContain('You have no API token.');
    expect(await t.app.users.userForToken(token!)).toBeUndefined();
    expect((await session.post(`/admin/account/tokens/${listed!.id}/revoke`)).statusCode).toBe(404);
  });

  it('does not revoke another user’s token', async () => {
    const theirs = await (async () => {
      await t.app.users.add({ email: 'other@example.com', password: TEST_PASSWORD, role: 'admin' });
      return t.app.users.createToken('other@example.com', 'theirs');
    })();
    const session = await signIn(t.server, t.app, 'ed@example.com', 'editor');
    expect((await session.post(`/admin/account/tokens/${theirs.id}/revoke`)).statusCode).toBe(404);
    expect(await t.app.users.userForToken(theirs.token)).toBeDefined();
  });

  it('changes the time zone the console shows times in', async () => {
    const session = await signIn(t.server, t.app, 'ed@example.com', 'editor');
    const page = await session.get('/admin/account');
    expect(page.body).toContain('<option value="Europe/Kyiv">');
    expect(page.body).not.toContain('<option value="Europe/Kiev">');
    expect(page.body).toContain('<option value="UTC" selected>');
    const saved = await session.post('/admin/account/zone', { zone: 'America/New_York' });
    expect(saved.statusCode).toBe(303);
    const after = await session.get('/admin/account');
    expect(after.body).toContain('Times are now shown in America/New_York.');
    expect(after.body).toContain('<option value="America/New_York" selected>');
    expect(after.body).toMatch(/\d\d:\d\d America\/New_York/);
    const user = await t.app.users.find('ed@example.com');
    expect(user.timeZone).toBe('America/New_York');
    // An old spelling is kept under the current name.
    expect((await session.post('/admin/account/zone', { zone: 'Europe/Kiev' })).statusCode).toBe(303);
    expect((await session.get('/admin/account')).body).toContain('Times are now shown in Europe/Kyiv.');
    expect((await t.app.users.find('ed@example.com')).timeZone).toBe('Europe/Kyiv');
    const bad = await session.post('/admin/account/zone', { zone: 'Mars/Olympus' });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain('unknown time zone');
  });

  it('changes the password after checking the current one, then the old session no longer works', async () => {
    const session = await signIn(t.server, t.app, 'ed@example.com', 'editor');
    const wrong = await session.post('/admin/account/password', { current: 'not my password at all', password: NEW_PASSWORD, repeat: NEW_PASSWORD });
    expect(wrong.statusCode).toBe(400);
    expect(wrong.body).toContain('Your current password is not right');
    const differ = await session.post('/admin/account/password', { current: TEST_PASSWORD, password: NEW_PASSWORD, repeat: `${NEW_PASSWORD}!` });
    expect(differ.statusCode).toBe(400);
    expect(differ.body).toContain('differ');
    const short = await session.post('/admin/account/password', { current: TEST_PASSWORD, password: 'short', repeat: 'short' });
    expect(short.statusCode).toBe(400);
    expect(short.body).toContain('at least 12 characters');
    expect(await t.app.users.authenticate('ed@example.com', TEST_PASSWORD)).toBeDefined();

    const changed = await session.post('/admin/account/password', { current: TEST_PASSWORD, password: NEW_PASSWORD, repeat: NEW_PASSWORD });
    expect(changed.statusCode).toBe(303);
    expect(changed.headers.location).toBe('/admin/login');
    // The notice rides on a fresh, signed-out session.
    const fresh = changed.cookies.find((c) => c.name === 'gazette_session');
    expect(fresh).toBeDefined();
    const login = await t.server.inject({ method: 'GET', url: '/admin/login', headers: { cookie: `gazette_session=${fresh!.value}` } });
    expect(login.statusCode).toBe(200);
    expect(login.body).toContain('Your password is changed');
    expect(login.body).toContain('name="password"');

    const old = await session.get('/admin/account');
    expect(old.statusCode).toBe(303);
    expect(old.headers.location).toMatch(/^\/admin\/login/);
    expect(await t.app.users.authenticate('ed@example.com', TEST_PASSWORD)).toBeUndefined();
    expect(await t.app.users.authenticate('ed@example.com', NEW_PASSWORD)).toBeDefined();
  });
});
