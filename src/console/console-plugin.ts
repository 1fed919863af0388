import cookie from '@fastify/cookie';
import csrf from '@fastify/csrf-protection';
import session from '@fastify/session';
import { normalizeIP } from '@fastify/rate-limit';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { App } from '../app.ts';
import { ConflictError, ContentError, ForbiddenError, GazetteError, InputError, NotFoundError } from '../errors.ts';
import { AuthFailures } from '../server/auth-failures.ts';
import { isNotModified } from '../server/feed-routes.ts';
import type { ServerContext } from '../server/server.ts';
import { registerLoginRoutes } from './login-routes.ts';
import { frameFor, type ConsoleKit } from './console-request.ts';
import { loadConsoleViews } from './console-views.ts';
import { registerDashboardRoutes } from './dashboard-routes.ts';
import { registerEditionRoutes } from './edition-routes.ts';
import { LiveStreams } from './live-streams.ts';
import { registerStoryRoutes } from './story-routes.ts';
import { sessionStore } from './session-store.ts';
import { registerScheduleRoutes } from './schedule-routes.ts';
import { registerSubscriberRoutes } from './subscriber-routes.ts';
import { registerUserRoutes } from './user-routes.ts';

/** How long a console session lasts without being used. */
export const SESSION_IDLE_MS = 12 * 60 * 60_000;
/** The session cookie's name. */
export const SESSION_COOKIE = 'gazette_session';

/** Options of the console; tests tighten the login limits. */
export interface ConsoleOptions {
  /** Failed sign-ins per account, and per client address, within `windowMs` before both are refused. */
  loginFailures?: { perAccount?: number; perClient?: number; windowMs?: number };
}

/** Everything the console's routes share beyond the kit: the app, its throttles and live streams. */
export interface ConsoleContext {
  app: App;
  kit: ConsoleKit;
  live: LiveStreams;
  /** Whether the session cookie is Secure (BASE_URL is https). */
  secureCookie: boolean;
  failures: { accounts: AuthFailures; clients: AuthFailures };
  /** The public site's templates and snapshot: story previews render the page readers will see. */
  site: ServerContext;
}

/**
 * The editors' console under /admin: server-rendered pages over the same use cases as the CLI and the
 * API. Sessions live in the database (shared by every server process, ended by logout everywhere);
 * every state-changing request carries a CSRF token; every page but the sign-in page needs a session.
 */
export async function registerConsole(server: FastifyInstance, site: ServerContext, options: ConsoleOptions = {}): Promise<void> {
  const { app } = site;
  const views = await loadConsoleViews(app.config.templatesDir);
  // BASE_URL, else site.yaml's base_url: the address editors use, whichever says it.
  const baseUrl = app.config.baseUrl ?? (await app.content().catch(() => undefined))?.site.baseUrl;
  const secureCookie = baseUrl?.startsWith('https://') ?? false;
  const limits = options.loginFailures ?? {};
  const windowMs = limits.windowMs ?? 15 * 60_000;
  const clock = () => app.now().getTime();
  const failures = {
    accounts: new AuthFailures({ max: limits.perAccount ?? 5, windowMs, now: clock }),
    clients: new AuthFailures({ max: limits.perClient ?? 20, windowMs, now: clock }),
  };
  const live = new LiveStreams();
  const siteTitle = async () => (await app.content().catch(() => undefined))?.site.title ?? 'Gazette';

  await server.register(
    async (admin) => {
      const secret = (await app.adapters.tokens()).derive('console-session');
      await admin.register(cookie);
      await admin.register(session, {
        secret,
        cookieName: SESSION_COOKIE,
        store: sessionStore(() => app.adapters.consoleSessions(), { idleMs: SESSION_IDLE_MS, now: app.now }),
        saveUninitialized: false,
        rolling: true,
        cookie: { path: '/admin', httpOnly: true, sameSite: 'strict', secure: secureCookie, maxAge: SESSION_IDLE_MS },
      });
      await admin.register(csrf, {
        sessionPlugin: '@fastify/session',
        // Forms send `_csrf`; scripts send the header; a file upload (multipart) carries it in the query.
        getToken: (request: FastifyRequest) => {
          const body = request.body as Record<string, unknown> | undefined;
          const query = request.query as Record<string, unknown> | undefined;
          const header = request.headers['x-csrf-token'];
          const fromBody = typeof body?._csrf === 'string' ? body._csrf : undefined;
          const fromQuery = typeof query?._csrf === 'string' ? query._csrf : undefined;
          return fromBody ?? (typeof header === 'string' ? header : undefined) ?? fromQuery ?? '';
        },
      });

      const kit: ConsoleKit = {
        views,
        siteTitle,
        async page(request, reply, page, frame, context = {}, status = 200) {
          const token = request.session ? reply.generateCsrf() : undefined;
          const html = views.render(page, frameFor(request, token, await siteTitle(), frame.title, frame.section), context);
          return reply.status(status).type('text/html; charset=utf-8').header('Cache-Control', 'no-store').send(html);
        },
        redirect(request, reply, to, flash) {
          if (flash) request.session.flash = flash;
          return reply.redirect(to, 303);
        },
      };
      const context: ConsoleContext = { app, kit, live, secureCookie, failures, site };

      admin.get<{ Params: { name: string } }>('/assets/:name', async (request, reply) => {
        const asset = views.assets.get(request.params.name);
        if (!asset) throw new NotFoundError(`no console asset ${request.params.name.slice(0, 40)}`);
        reply.header('etag', asset.etag);
        reply.header('cache-control', 'public, max-age=31536000, immutable');
        if (request.headers['if-none-match'] !== undefined && isNotModified(request.headers, asset.etag, new Date(0))) return reply.code(304).send();
        return reply.type(asset.contentType).send(asset.body);
      });

      // The gate, then the CSRF check: a stranger is sent to sign in before anything else is said.
      admin.addHook('preHandler', async (request, reply) => {
        const path = request.url.split('?')[0]!;
        if (path.startsWith('/admin/assets/')) return;
        if (path !== '/admin/login') {
          const userId = request.session.userId;
          const found = userId === undefined ? undefined : await app.users.findById(userId);
          // A request in flight at a password reset may write its session back after the reset removed it: still refused.
          const user = found && (request.session.signedInAt ?? 0) >= Date.parse(found.passwordChangedAt) ? found : undefined;
          if (!user) {
            if (request.method === 'GET' || request.method === 'HEAD') {
              const next = path === '/admin' || path === '/admin/' ? '' : `?next=${encodeURIComponent(request.url)}`;
              return reply.redirect(`/admin/login${next}`, 303);
            }
            return reply.status(401).type('application/json; charset=utf-8').send({ error: 'unauthorized', message: 'sign in to the console first (/admin/login)' });
          }
          request.consoleUser = user;
        }
        if (request.method !== 'GET' && request.method !== 'HEAD') {
          await new Promise<void>((resolve) => admin.csrfProtection(request, reply, resolve));
        }
      });

      admin.setErrorHandler((error, request, reply) => consoleError(kit, error as Error, request, reply));
      admin.setNotFoundHandler(async (request) => {
        throw new NotFoundError(`no console page at ${request.url.split('?')[0]!.slice(0, 80)}`);
      });

      registerLoginRoutes(admin, context);
      registerDashboardRoutes(admin, context);
      registerStoryRoutes(admin, context);
      registerEditionRoutes(admin, context);
      registerScheduleRoutes(admin, context);
      await registerSubscriberRoutes(admin, context);
      registerUserRoutes(admin, context);
    },
    { prefix: '/admin' },
  );
  // Open event streams would keep the server from closing.
  server.addHook('preClose', async () => live.closeAll());
}

/** The client address failed sign-ins are counted by: a whole /64 for IPv6, as for the API. */
export function clientKey(request: FastifyRequest): string {
  return normalizeIP(request.ip ?? '');
}

async function consoleError(kit: ConsoleKit, error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const code = (error as { code?: string }).code ?? '';
  let status = 500;
  let message = 'Something went wrong on our side; the server log has the details.';
  if (code.startsWith('FST_CSRF_')) [status, message] = [403, 'This form had no valid security token (it may have come from another site, or the page is old). Reload the page and try again.'];
  else if (error instanceof ForbiddenError) [status, message] = [403, error.message];
  else if (error instanceof InputError) [status, message] = [400, error.message];
  else if (error instanceof NotFoundError) [status, message] = [404, error.message];
  else if (error instanceof ConflictError) [status, message] = [409, error.message];
  else if (error instanceof ContentError) [status, message] = [503, `content/ has errors:\n${error.message}`];
  else if (error instanceof GazetteError) [status, message] = [400, error.message];
  else if ((error as FastifyError).statusCode && (error as FastifyError).statusCode! < 500) [status, message] = [(error as FastifyError).statusCode!, error.message];
  if (status >= 500) request.log.error({ err: error }, 'console request failed');
  const accept = request.headers.accept ?? '';
  if (reply.sent || reply.raw.headersSent) return reply;
  if (!accept.includes('text/html') || !request.session) {
    return reply.status(status).type('application/json; charset=utf-8').send({ error: status === 403 ? 'forbidden' : 'error', message });
  }
  const heading = ({ 400: 'That did not work', 403: 'Not allowed', 404: 'Not found', 409: 'That clashes with something', 503: 'Content needs fixing' } as Record<number, string>)[status] ?? 'Sorry';
  return kit.page(request, reply, 'message', { title: heading }, { heading, text: message, tone: 'error' }, status);
}
