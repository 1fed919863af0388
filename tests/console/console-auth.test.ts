import { afterEach, describe, expect, it } from 'vitest';
import { SESSION_COOKIE, SESSION_IDLE_MS } from '../../src/console/console-plugin.ts';
import { testServer, type TestServer } from '../helpers/server.ts';
import { cookieOf, csrfOf, formBody, signIn, TEST_PASSWORD } from '../helpers/console-session.ts';

const PAGES = ['/admin', '/admin/stories', '/admin/editions', '/admin/editions/new', '/admin/editions/1', '/admin/schedules', '/admin/subscribers', '/admin/users', '/admin/account', '/admin/no-such-page'];

let t: TestServer | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

/** A server over an http base URL (inject speaks plain http), with a clock the test moves. */
async function consoleServer(options: { env?: Record<string, string> } = {}) {
  let now = new Date('2026-12-01T10:00:00Z');
  t = await testServer({ now: () => now, env: { BASE_URL: 'http://gazette.test', ...options.env }, server: { console: { loginFailures: { perAccount: 3, perClient: 6 } } } });
  return { t, advance: (ms: number) => (now = new Date(now.getTime() + ms)) };
}

async function loginPage(server: TestServer['server']) {
  const page = await server.inject({ method: 'GET', url: '/admin/login' });
  return { cookie: cookieOf(page, SESSION_COOKIE)!, csrf: csrfOf(page.body), page };
}

async function tryLogin(server: TestServer['server'], email: string, password: string) {
  const { cookie, csrf } = await loginPage(server);
  return server.inject({ method: 'POST', url: '/admin/login', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, payload: formBody({ email, password, _csrf: csrf }) });
}

describe('the console gate', () => {
  it('sends every page to the sign-in page without a session, and refuses state changes with 401', async () => {
    const { t } = await consoleServer();
    for (const url of PAGES) {
      const res = await t.server.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(303);
      expect(res.headers.location, url).toMatch(/^\/admin\/login/);
    }
    expect((await t.server.inject({ method: 'GET', url: '/admin/editions/3?x=1' })).headers.location).toBe('/admin/login?next=%2Fadmin%2Feditions%2F3%3Fx%3D1');
    const post = await t.server.inject({ method: 'POST', url: '/admin/editions', payload: formBody({ list: 'x' }), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(post.statusCode).toBe(401);
    expect((await t.server.inject({ method: 'GET', url: '/api/subscribers' })).statusCode).toBe(401);
  });

  it('signs in with the right password, rotating the session id, and sends the user where they were going', async () => {
    const { t } = await consoleServer();
    await t.app.users.add({ email: 'ann@example.com', password: TEST_PASSWORD, role: 'editor' });
    const { cookie, csrf, page } = await loginPage(t.server);
    expect(page.statusCode).toBe(200);
    const res = await t.server.inject({
      method: 'POST',
      url: '/admin/login',
      headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: formBody({ email: 'Ann@Example.com', password: TEST_PASSWORD, _csrf: csrf, next: '/admin/editions', zone: 'Europe/Kiev' }),
    });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/admin/editions');
    const signedIn = cookieOf(res, SESSION_COOKIE)!;
    expect(signedIn).not.toBe(cookie);
    const set = res.cookies.find((c) => c.name === SESSION_COOKIE)!;
    expect(set).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/admin' });
    expect(set.secure).toBeFalsy();
    // Rolling: each answer sets the cookie to lapse 12 hours on.
    expect(Math.abs((set.expires as Date).getTime() - (Date.now() + SESSION_IDLE_MS))).toBeLessThan(60_000);
    // The browser's zone, sent by the form, becomes the user's under its current name.
    expect((await t.app.users.find('ann@example.com')).timeZone).toBe('Europe/Kyiv');
    const dashboard = await t.server.inject({ method: 'GET', url: '/admin', headers: { cookie: signedIn } });
    expect(dashboard.statusCode).toBe(200);
    expect(dashboard.body).toContain('ann@example.com');
    // The anonymous session from before sign-in is not a signed-in one.
    expect((await t.server.inject({ method: 'GET', url: '/admin', headers: { cookie } })).statusCode).toBe(303);
    // Only console paths are followed after sign-in.
    const { cookie: c2, csrf: k2 } = await loginPage(t.server);
    const away = await t.server.inject({ method: 'POST', url: '/admin/login', headers: { cookie: c2, 'content-type': 'application/x-www-form-urlencoded' }, payload: formBody({ email: 'ann@example.com', password: TEST_PASSWORD, _csrf: k2, next: '//evil.example/admin' }) });
    expect(away.headers.location).toBe('/admin');
  });

  it('refuses a wrong password and an unknown address alike, then locks out further guesses', async () => {
    const { t, advance } = await consoleServer();
    await t.app.users.add({ email: 'ann@example.com', password: TEST_PASSWORD });
    const wrong = await tryLogin(t.server, 'ann@example.com', 'not the password at all');
    const unknown = await tryLogin(t.server, 'nobody@example.com', 'not the password at all');
    expect(wrong.statusCode).toBe(401);
    expect(unknown.statusCode).toBe(401);
    const message = (html: string) => /role="alert"[^>]*>([^<]+)</.exec(html)?.[1];
    expect(message(wrong.body)).toBe('That email and password do not match an account.');
    expect(message(unknown.body)).toBe(message(wrong.body));
    await tryLogin(t.server, 'ann@example.com', 'still not the password');
    await tryLogin(t.server, 'ann@example.com', 'nor is this one');
    // Three failures for the account: even the right password is refused for a while, and says so.
    const locked = await tryLogin(t.server, 'ann@example.com', TEST_PASSWORD);
    expect(locked.statusCode).toBe(429);
    expect(message(locked.body)).toMatch(/Too many failed sign-ins\. Try again in 15 minutes\./);
    expect(Number(locked.headers['retry-after'])).toBeGreaterThan(0);
    // An unknown address locks the same way, so a lockout tells nobody which addresses have accounts.
    for (let i = 0; i < 2; i++) await tryLogin(t.server, 'nobody@example.com', 'guess');
    expect((await tryLogin(t.server, 'nobody@example.com', 'guess')).statusCode).toBe(429);
    // Six failures from this client in all: another account is refused from here too.
    await t.app.users.add({ email: 'bob@example.com', password: TEST_PASSWORD });
    expect((await tryLogin(t.server, 'bob@example.com', TEST_PASSWORD)).statusCode).toBe(429);
    advance(15 * 60_000 + 1);
    expect((await tryLogin(t.server, 'ann@example.com', TEST_PASSWORD)).statusCode).toBe(303);
  });

  it('refuses a state change without the CSRF token, or with a wrong one, with 403', async () => {
    const { t } = await consoleServer();
    const session = await signIn(t.server, t.app);
    const without = await session.post('/admin/editions', { list: 'main', kind: 'digest' }, { csrf: false });
    expect(without.statusCode).toBe(403);
    expect(without.body).toContain('no valid security token');
    const forged = await session.post('/admin/logout', { _csrf: 'forged-token' });
    expect(forged.statusCode).toBe(403);
    // The session survived both.
    expect((await session.get('/admin')).statusCode).toBe(200);
    // The login form is protected too: a POST without the page's token is refused.
    const { cookie } = await loginPage(t.server);
    const bare = await t.server.inject({ method: 'POST', url: '/admin/login', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, payload: formBody({ email: 'editor@example.com', password: TEST_PASSWORD }) });
    expect(bare.statusCode).toBe(403);
  });

  it('ends the session at logout: the old cookie opens nothing any more', async () => {
    const { t } = await consoleServer();
    const session = await signIn(t.server, t.app);
    expect((await session.get('/admin')).statusCode).toBe(200);
    const out = await session.post('/admin/logout');
    expect(out.statusCode).toBe(303);
    expect(out.headers.location).toBe('/admin/login?signed_out=1');
    expect((await t.server.inject({ url: out.headers.location as string })).body).toContain('You are signed out.');
    const after = await session.get('/admin');
    expect(after.statusCode).toBe(303);
    expect(after.headers.location).toBe('/admin/login');
  });

  it('lets a session lapse after 12 hours unused, and keeps one in use alive', async () => {
    const { t, advance } = await consoleServer();
    const session = await signIn(t.server, t.app);
    advance(SESSION_IDLE_MS - 60_000);
    expect((await session.get('/admin')).statusCode).toBe(200);
    advance(SESSION_IDLE_MS - 60_000);
    expect((await session.get('/admin')).statusCode).toBe(200);
    advance(SESSION_IDLE_MS + 1);
    expect((await session.get('/admin')).statusCode).toBe(303);
  });

  it('ends every session of a user whose password is reset or who is removed', async () => {
    const { t } = await consoleServer();
    const session = await signIn(t.server, t.app, 'ann@example.com');
    await t.app.users.resetPassword('ann@example.com', 'a brand new passphrase');
    expect((await session.get('/admin')).statusCode).toBe(303);
    const again = await signIn(t.server, t.app, 'bob@example.com', 'admin');
    await signIn(t.server, t.app, 'cy@example.com', 'admin');
    await t.app.users.remove('bob@example.com');
    expect((await again.get('/admin')).statusCode).toBe(303);
  });

  it('marks the cookie Secure when BASE_URL is https, and says why signing in over http cannot work', async () => {
    const { t } = await consoleServer({ env: { BASE_URL: 'https://gazette.test', GAZETTE_TRUST_PROXY: 'true' } });
    await t.app.users.add({ email: 'ann@example.com', password: TEST_PASSWORD });
    const plain = await t.server.inject({ method: 'GET', url: '/admin/login' });
    expect(plain.body).toContain('sent over https only');
    const https = { 'x-forwarded-proto': 'https' };
    const page = await t.server.inject({ method: 'GET', url: '/admin/login', headers: https });
    const cookie = cookieOf(page, SESSION_COOKIE)!;
    const res = await t.server.inject({ method: 'POST', url: '/admin/login', headers: { ...https, cookie, 'content-type': 'application/x-www-form-urlencoded' }, payload: formBody({ email: 'ann@example.com', password: TEST_PASSWORD, _csrf: csrfOf(page.body) }) });
    expect(res.statusCode).toBe(303);
    expect(res.cookies.find((c) => c.name === SESSION_COOKIE)).toMatchObject({ secure: true, httpOnly: true, sameSite: 'Strict' });
  });

  it('counts parallel guesses as they come: a burst gets no more tries than the limit', async () => {
    const { t } = await consoleServer();
    await t.app.users.add({ email: 'ann@example.com', password: TEST_PASSWORD });
    const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => tryLogin(t.server, 'ann@example.com', `guess number ${i}`)));
    const statuses = answers.map((a) => a.statusCode).sort();
    expect(statuses.filter((s) => s === 401)).toHaveLength(3);
    expect(statuses.filter((s) => s === 429)).toHaveLength(5);
  });

  it('refuses a session written back after its password was reset (a request that was in flight)', async () => {
    const { t, advance } = await consoleServer();
    const session = await signIn(t.server, t.app, 'ann@example.com');
    const db = (await t.app.adapters.store()).db;
    const [row] = await db.selectFrom('console_sessions').selectAll().where('user_id', 'is not', null).execute();
    advance(1000);
    await t.app.users.resetPassword('ann@example.com', 'a brand new passphrase');
    await db.insertInto('console_sessions').values(row!).execute();
    const after = await session.get('/admin');
    expect(after.statusCode).toBe(303);
    expect(after.headers.location).toBe('/admin/login');
  });

  it('keeps a session nobody signed in to for 30 minutes only', async () => {
    const { t, advance } = await consoleServer();
    await t.app.users.add({ email: 'ann@example.com', password: TEST_PASSWORD });
    const { cookie, csrf } = await loginPage(t.server);
    advance(31 * 60_000);
    const late = await t.server.inject({ method: 'POST', url: '/admin/login', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, payload: formBody({ email: 'ann@example.com', password: TEST_PASSWORD, _csrf: csrf }) });
    expect(late.statusCode).toBe(403);
  });
});
