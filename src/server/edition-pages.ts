import type { FastifyInstance } from 'fastify';
import { NotFoundError } from '../errors.ts';
import { escapeValuesForHtml, fillSlots, recipientValues } from '../render/slots.ts';
import { editionArchive } from './edition-archive.ts';
import { sendByEtag } from './page-cache.ts';
import type { ServerContext } from './server.ts';

// The compiled email is a whole HTML document with inline styles, so its page allows those and nothing else.
const EMAIL_PAGE_CSP = "default-src 'none'; img-src https: data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'";

/**
 * GET /editions, the archive of sent editions, and GET /editions/:id: the web version of an edition
 * that went out, exactly as it was mailed, with the per-recipient slots filled for nobody in
 * particular. The target of every digest's "view in browser" link; drafts are not public.
 */
export function registerEditionPages(server: FastifyInstance, context: ServerContext): void {
  const archive = editionArchive(context);
  server.get('/editions', async (request, reply) => sendByEtag(request, reply, await archive(await context.feeds.current())));

  server.get<{ Params: { id: string } }>('/editions/:id', async (request, reply) => {
    const id = /^[1-9][0-9]{0,9}$/.test(request.params.id) ? Number(request.params.id) : undefined;
    const edition = id === undefined ? undefined : await context.app.editions.find(id).catch((error: unknown) => (error instanceof NotFoundError ? undefined : Promise.reject(error)));
    if (!edition || edition.status === 'draft') throw new NotFoundError(`no edition ${request.params.id.slice(0, 40)}`);
    const base = edition.origin?.baseUrl ?? (await context.feeds.current()).content.site.baseUrl;
    const values = recipientValues({ greeting: 'Hello,', email: 'you', unsubscribe_url: `${base}/unsubscribe`, preferences_url: `${base}/preferences` });
    return reply
      .type('text/html; charset=utf-8')
      .header('Content-Security-Policy', EMAIL_PAGE_CSP)
      .header('Cache-Control', 'public, max-age=300')
      .send(fillSlots(edition.compiled.html, escapeValuesForHtml(values)));
  });
}
