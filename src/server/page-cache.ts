import type { FastifyReply, FastifyRequest } from 'fastify';
import { cachedFile, type CachedFile, type SiteSnapshot } from './feed-cache.ts';
import { isNotModified, sendCached } from './feed-routes.ts';

/** The Content-Type of every page. */
export const HTML = 'text/html; charset=utf-8';
// Short: pages show the site's look as well as its stories, and conditional GETs make revalidation cheap.
const PAGE_CACHE_CONTROL = 'public, max-age=60';

/** Renders a page once per snapshot and key, then serves it from memory. */
export type PageCache = (snapshot: SiteSnapshot, key: string, render: () => string) => CachedFile;

/** A cache of rendered pages that lives as long as their snapshot: a rebuild drops them all at once. */
export function pageCache(): PageCache {
  const rendered = new WeakMap<SiteSnapshot, Map<string, CachedFile>>();
  return (snapshot, key, render) => {
    let pages = rendered.get(snapshot);
    if (!pages) rendered.set(snapshot, (pages = new Map()));
    let file = pages.get(key);
    if (!file) pages.set(key, (file = cachedFile(Buffer.from(render(), 'utf8'), HTML)));
    return file;
  };
}

/** Sends a page rendered from the snapshot alone: ETag, Last-Modified and a 304 when the client's copy is current. */
export function sendPage(request: FastifyRequest, reply: FastifyReply, snapshot: SiteSnapshot, file: CachedFile): FastifyReply {
  return sendCached(request, reply, snapshot, file, PAGE_CACHE_CONTROL);
}

/**
 * Sends a page that also depends on the database (the archive): its ETag alone says whether the
 * client's copy is current, since no single date covers both the content and the store.
 */
export function sendByEtag(request: FastifyRequest, reply: FastifyReply, file: CachedFile): FastifyReply {
  reply.header('etag', file.etag);
  reply.header('cache-control', PAGE_CACHE_CONTROL);
  if (request.headers['if-none-match'] !== undefined && isNotModified(request.headers, file.etag, new Date(0))) return reply.code(304).send();
  reply.header('content-type', file.contentType);
  return reply.send(file.body);
}
