import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import type { App } from '../../src/app.ts';
import type { Role } from '../../src/model/user.ts';

/** A password every console test user gets: long enough for the 12-character rule. */
export const TEST_PASSWORD = 'correct horse battery staple';

/** A signed-in console session over inject(): its cookie, and requests that carry it (and the CSRF token). */
export interface ConsoleSession {
  cookie: string;
  /** The CSRF token of the last page fetched with get(). */
  csrf: string;
  get(url: string, headers?: Record<string, string>): Promise<LightMyRequestResponse>;
  /** A form POST with the session's CSRF token added (unless `_csrf` is given, or `csrf: false`). */
  post(url: string, form?: Record<string, string | string[]>, options?: { csrf?: boolean }): Promise<LightMyRequestResponse>;
}

/** The `_csrf` value a console page's forms carry. */
export function csrfOf(html: string): string {
  const match = /name="_csrf" value="([^"]+)"/.exec(html);
  if (!match) throw new Error('no CSRF token on the page');
  return match[1]!;
}

/** The value of `name` in a response's Set-Cookie headers, or undefined. */
export function cookieOf(response: LightMyRequestResponse, name: string): string | undefined {
  const cookie = response.cookies.find((c) => c.name === name);
  return cookie?.value === undefined ? undefined : `${name}=${cookie.value}`;
}

/** Form-urlencodes fields; arrays become repeated fields. */
export function formBody(form: Record<string, string | string[]>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(form)) for (const v of Array.isArray(value) ? value : [value]) params.append(key, v);
  return params.toString();
}

/**
 * Adds a user (unless one has the address) and signs in through the real login form. The server must
 * be built with an http BASE_URL (a Secure cookie is not sent back over inject's plain http).
 */
export async function signIn(server: FastifyInstance, app: App, email = 'editor@example.com', role: Role = 'editor'): Promise<ConsoleSession> {
  await app.users.add({ email, password: TEST_PASSWORD, role }).catch(() => undefined);
  const loginPage = await server.inject({ method: 'GET', url: '/admin/login' });
  const anonymous = cookieOf(loginPage, 'gazette_session');
  if (!anonymous) throw new Error(`the login page set no session cookie (status ${loginPage.statusCode})`);
  const login = await server.inject({
    method: 'POST',
    url: '/admin/login',
    headers: { cookie: anonymous, 'content-type': 'application/x-www-form-urlencoded' },
    payload: formBody({ email, password: TEST_PASSWORD, _csrf: csrfOf(loginPage.body) }),
  });
  const cookie = cookieOf(login, 'gazette_session');
  if (login.statusCode !== 303 || !cookie) throw new Error(`sign-in failed: ${login.statusCode} ${login.body.slice(0, 200)}`);
  const session: ConsoleSession = {
    cookie,
    csrf: '',
    async get(url, headers = {}) {
      const response = await server.inject({ method: 'GET', url, headers: { cookie: session.cookie, accept: 'text/html', ...headers } });
      const token = /name="_csrf" value="([^"]+)"/.exec(response.body)?.[1];
      if (token) session.csrf = token;
      return response;
    },
    async post(url, form = {}, options = {}) {
      if (!session.csrf) await session.get('/admin');
      const fields = options.csrf === false || '_csrf' in form ? form : { ...form, _csrf: session.csrf };
      return server.inject({
        method: 'POST',
        url,
        headers: { cookie: session.cookie, accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded' },
        payload: formBody(fields),
      });
    },
  };
  return session;
}
