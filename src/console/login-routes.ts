import type { FastifyInstance, FastifyRequest } from 'fastify';
import { clientKey, type ConsoleContext } from './console-plugin.ts';
import { field, type Form } from './console-request.ts';

const WRONG = 'That email and password do not match an account.';

/** GET+POST /admin/login and POST /admin/logout. */
export function registerLoginRoutes(admin: FastifyInstance, context: ConsoleContext): void {
  const { app, kit, failures } = context;

  admin.get<{ Querystring: { next?: string; signed_out?: string } }>('/login', async (request, reply) => {
    if (request.session.userId !== undefined && (await app.users.findById(request.session.userId))) return reply.redirect(safeNext(request.query.next), 303);
    const signedOut = request.query.signed_out === '1';
    return kit.page(request, reply, 'login', { title: 'Sign in' }, { next: safeNext(request.query.next), insecure: insecureProblem(context, request), signedOut });
  });

  admin.post<{ Body: Form; Querystring: { next?: string } }>('/login', async (request, reply) => {
    const email = (field(request.body, 'email') ?? '').trim();
    const password = field(request.body, 'password') ?? '';
    const next = safeNext(field(request.body, 'next') ?? request.query.next);
    const again = (status: number, error: string) => kit.page(request, reply, 'login', { title: 'Sign in' }, { next, email, error, insecure: insecureProblem(context, request) }, status);
    // Counted per address typed, whether or not it has an account: a lockout tells nothing about who exists.
    const account = email.toLowerCase();
    const client = clientKey(request);
    const waitMs = Math.max(failures.accounts.retryAfterMs(account), failures.clients.retryAfterMs(client));
    if (waitMs > 0) {
      const minutes = Math.ceil(waitMs / 60_000);
      reply.header('Retry-After', String(Math.ceil(waitMs / 1000)));
      return again(429, `Too many failed sign-ins. Try again in ${minutes} minute${minutes === 1 ? '' : 's'}.`);
    }
    // Counted before the password is checked (argon2 takes a while): parallel guesses each find the
    // ones before them already counted. A right password takes its count back.
    failures.accounts.record(account);
    failures.clients.record(client);
    const user = await app.users.authenticate(email, password);
    if (!user) {
      request.log.info({ client }, 'console sign-in refused');
      return again(401, WRONG);
    }
    failures.accounts.forgive(account);
    failures.clients.forgive(client);
    // A new session id at sign-in: an id planted before (session fixation) never becomes a signed-in one.
    await request.session.regenerate();
    request.session.userId = user.id;
    request.session.signedInAt = app.now().getTime();
    const zone = field(request.body, 'zone');
    if (!user.timeZone && zone) await app.users.setTimeZone(user.id, zone).catch(() => undefined);
    request.log.info({ user: user.id }, 'console sign-in');
    return reply.redirect(next, 303);
  });

  admin.post('/logout', async (request, reply) => {
    await request.session.destroy();
    return reply.redirect('/admin/login?signed_out=1', 303);
  });
}

/** Where to go after signing in: a console path only, never another site. */
function safeNext(next: string | undefined): string {
  return next && /^\/admin(\/|$|\?)/.test(next) && !next.startsWith('//') && !/[\r\n\\]/.test(next) ? next : '/admin';
}

/** Why signing in cannot work on this connection: the cookie is Secure but the request came over http. */
function insecureProblem(context: ConsoleContext, request: FastifyRequest): string | undefined {
  if (!context.secureCookie || request.protocol === 'https') return undefined;
  return 'BASE_URL is https, so the session cookie is sent over https only, but this request came over http. Open the console at its https address (behind a proxy, set GAZETTE_TRUST_PROXY so the server sees https).';
}
