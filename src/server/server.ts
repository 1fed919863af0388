import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import formbody from '@fastify/formbody';
import type { App } from '../app.ts';
import { ConflictError, ContentError, ForbiddenError, GazetteError, InputError, NotFoundError } from '../errors.ts';
import { LinkError } from '../subscribers/link-error.ts';
import { registerAdminApi } from './admin-api.ts';
import { registerAdminAuth } from './admin-auth.ts';
import { AuthFailures } from './auth-failures.ts';
import { registerScheduleApi } from './schedule-api.ts';
import { registerEditionApi } from './edition-api.ts';
import { registerStoryAndUserApi } from './story-user-api.ts';
import { FeedCache } from './feed-cache.ts';
import { registerFeedRoutes } from './feed-routes.ts';
import { registerEditionPages } from './edition-pages.ts';
import { renderNotFound } from './not-found-page.ts';
import { registerPublicPages } from './public-pages.ts';
import { registerSiteAssets } from './site-assets.ts';
import { registerTagPages } from './tag-pages.ts';
import { clientErrorResponder, responseWithHeaders, securityHeaders } from './security-headers.ts';
import { registerSubscriptionRoutes } from './subscription-routes.ts';
import { webhookRoutes } from './webhook-routes.ts';
import { registerConsole, type ConsoleOptions } from '../console/console-plugin.ts';
import { loadWebTemplates, type WebTemplates } from './web-templates.ts';

/** What the HTTP layer shares between its route modules. */
export interface ServerContext {
  app: App;
  web: WebTemplates;
  feeds: FeedCache;
}

/** Server options; tests turn logging off and may change limits. */
export interface ServerOptions {
  logger?: boolean;
  /** Subscribe requests per minute per client IP. */
  subscribeRateLimit?: number;
  /** Options of the editors' console under /admin. */
  console?: ConsoleOptions;
}

/** Builds the Fastify app: public pages, feeds, subscription routes, admin API. */
export async function buildServer(app: App, options: ServerOptions = {}): Promise<FastifyInstance> {
  const headers = securityHeaders(app.config.baseUrl);
  // A route may set a Content-Security-Policy of its own (an email's web version needs its inline
  // styles), and a frame policy; every other header is always the house's.
  const secure = (reply: FastifyReply) => {
    for (const [name, value] of headers) {
      // The console's preview frame is framed by the console itself: it sets both of these its own way.
      if ((name === 'Content-Security-Policy' || name === 'X-Frame-Options') && reply.getHeader(name) !== undefined && reply.getHeader(name) !== value) continue;
      reply.header(name, value);
    }
    return reply;
  };
  const server = Fastify({
    // Tokens in confirm, unsubscribe and preferences links are keys to a subscriber: never logged.
    logger: options.logger
      ? {
          level: app.config.logLevel,
          serializers: {
            req: (request: FastifyRequest) => ({ method: request.method, url: withoutTokens(request.url), host: request.hostname, remoteAddress: request.ip }),
          },
        }
      : false,
    bodyLimit: 64 * 1024,
    // Only configured proxies may name the client: else X-Forwarded-For would dodge the rate limit.
    trustProxy: app.config.trustProxy,
    routerOptions: { maxParamLength: 200 },
    // The security headers on the answers no Fastify reply makes; the onSend hook below covers the rest.
    http: { ServerResponse: responseWithHeaders(headers) },
    clientErrorHandler: clientErrorResponder(headers, (err) => server.log.debug({ err }, 'client error')),
    // A bad URL or an over-long path parameter, answered like any other error (Fastify's own answer echoes the URL).
    // Its replies skip the onSend hooks, hence the headers set here.
    frameworkErrors: (error, request, reply) => {
      const secured = secure(reply);
      sendError(context, frameworkError(error), request, secured).catch((failure: Error) => secured.send(failure));
    },
  });
  const web = await loadWebTemplates(app.config.templatesDir);
  const feeds = new FeedCache(app, { onError: (err, what) => server.log.warn({ err }, what) });
  const context: ServerContext = { app, web, feeds };

  await server.register(formbody);
  // RFC 8058 allows the one-click POST as multipart/form-data; its fields are not needed
  // (the token is in the URL), so the body is read as text and ignored.
  server.addContentTypeParser('multipart/form-data', { parseAs: 'string', bodyLimit: 16 * 1024 }, (_req, body, done) =>
    done(null, { raw: body }),
  );
  // Synchronous on purpose: this runs on every response, the feed hot path included.
  server.addHook('onSend', (request, reply, payload, done) => {
    secure(reply);
    if (request.url.includes('token=')) reply.header('Cache-Control', 'no-store');
    done(null, payload);
  });
  server.setErrorHandler((error, request, reply) => sendError(context, error, request, reply));
  server.setNotFoundHandler((request, reply) => sendError(context, new NotFoundError(`no page at ${request.url.split('?')[0]}`), request, reply));

  // Healthy only while the database answers: a supervisor restarts a server whose store is gone.
  server.get('/healthz', async (_request, reply) => {
    try {
      await app.checkDatabase();
      return { ok: true };
    } catch (error) {
      return reply.status(503).send({ ok: false, error: (error as Error).message });
    }
  });
  registerSiteAssets(server, context);
  registerPublicPages(server, context);
  registerTagPages(server, context);
  registerEditionPages(server, context);
  registerFeedRoutes(server, context);
  await registerSubscriptionRoutes(server, context, { rateLimit: options.subscribeRateLimit ?? 20 });
  registerAdminAuth(server, new AuthFailures({ now: () => app.now().getTime() }));
  registerAdminApi(server, context);
  registerScheduleApi(server, context);
  registerEditionApi(server, context);
  registerStoryAndUserApi(server, context);
  await registerConsole(server, context, options.console);
  // The handler (and the store behind it) is opened by the first report, not by building the server.
  await server.register(webhookRoutes, { reports: { handle: async (report) => (await app.reports()).handle(report) }, config: app.config.webhooks, now: () => app.now() });
  server.addHook('onClose', async () => feeds.close());
  return server;
}

/** A URL with the value of every token= parameter replaced, for logs. */
export function withoutTokens(url: string): string {
  return url.replace(/([?&](?:token|_csrf)=)[^&#]*/gi, '$1…');
}

/** True when the client wants JSON rather than a page: machines' routes (/api, /webhooks) always do. */
export function wantsJson(request: FastifyRequest): boolean {
  return (
    request.url.startsWith('/api') ||
    request.url.startsWith('/webhooks') ||
    (request.headers['content-type'] ?? '').includes('application/json') ||
    ((request.headers.accept ?? '').includes('application/json') && !(request.headers.accept ?? '').includes('text/html'))
  );
}

/** Maps core errors to HTTP: 400 for bad input and bad links, 404, 503 when content is broken. */
async function sendError(context: ServerContext, error: unknown, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const fastifyError = error as { statusCode?: number; code?: string; message?: string };
  let status = 500;
  let message = 'Something went wrong on our side. Please try again later.';
  if (error instanceof InputError || error instanceof LinkError) [status, message] = [400, error.message];
  else if (error instanceof ForbiddenError) [status, message] = [403, error.message];
  else if (error instanceof NotFoundError) [status, message] = [404, error.message];
  else if (error instanceof ConflictError) [status, message] = [409, error.message];
  else if (error instanceof ContentError) [status, message] = [503, 'The site content is being fixed; please try again shortly.'];
  else if (!(error instanceof GazetteError) && fastifyError.statusCode && fastifyError.statusCode < 500) {
    [status, message] = [fastifyError.statusCode, fastifyError.message ?? 'bad request'];
  }
  if (status >= 500) request.log.error({ err: error }, 'request failed');
  if (wantsJson(request)) return reply.status(status).send({ error: errorName(status), message });
  const snapshot = await context.feeds.current().catch(() => undefined);
  const site = snapshot?.content.site;
  if (!site) return reply.status(status).type('text/plain; charset=utf-8').send(message);
  if (status === 404) return reply.status(404).type('text/html; charset=utf-8').send(renderNotFound(context, snapshot, message));
  const heading = status === 404 ? 'Page not found' : status === 400 ? 'That did not work' : 'Sorry';
  const html = context.web.render('message', site, { title: heading, heading, text: message, tone: 'error', link: { href: '/', label: 'Go to the home page' } });
  return reply.status(status).type('text/html; charset=utf-8').send(html);
}

// Fastify's messages for these quote the URL; ours need not repeat it.
function frameworkError(error: FastifyError): unknown {
  if (error.code === 'FST_ERR_BAD_URL') return { statusCode: 400, message: 'That address is not a valid URL.' };
  if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') return { statusCode: 414, message: 'That address is too long.' };
  return error;
}

function errorName(status: number): string {
  return ({ 400: 'bad_request', 401: 'unauthorized', 403: 'forbidden', 404: 'not_found', 409: 'conflict', 413: 'payload_too_large', 414: 'uri_too_long', 415: 'unsupported_media_type', 429: 'too_many_requests', 503: 'unavailable' } as Record<number, string>)[status] ?? 'internal_error';
}
