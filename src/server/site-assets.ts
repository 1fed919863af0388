import type { FastifyInstance } from 'fastify';
import type { Site } from '../model/content.ts';
import { isNotModified } from './feed-routes.ts';
import type { ServerContext } from './server.ts';

// The versioned address changes with every change of the CSS or the theme, so its answer never goes stale.
const VERSIONED_CACHE_CONTROL = 'public, max-age=31536000, immutable';
// Asked for without the current version (an old page, a hand-typed URL): cached briefly, revalidated by ETag.
const UNVERSIONED_CACHE_CONTROL = 'public, max-age=300';
// What the stylesheet is themed with while site.yaml cannot be read: the schema's default.
const DEFAULT_THEME: Site['theme'] = { accent: '#9c2f1f', logoUrl: undefined };

/** Registers GET /assets/site.css: the one stylesheet, themed from site.yaml, from memory with ETag and 304. */
export function registerSiteAssets(server: FastifyInstance, context: ServerContext): void {
  server.get<{ Querystring: { v?: string } }>('/assets/site.css', async (request, reply) => {
    // Error pages need their look even while the content is broken.
    const site = (await context.feeds.current().catch(() => undefined))?.content.site;
    const sheet = context.web.stylesheet(site?.theme ?? DEFAULT_THEME);
    reply.header('etag', sheet.etag);
    reply.header('cache-control', request.query.v === sheet.version ? VERSIONED_CACHE_CONTROL : UNVERSIONED_CACHE_CONTROL);
    if (request.headers['if-none-match'] !== undefined && isNotModified(request.headers, sheet.etag, new Date(0))) return reply.code(304).send();
    return reply.type(sheet.contentType).send(sheet.body);
  });
}
