import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { NotFoundError } from '../errors.ts';
import { tagSlug } from '../feed/tags.ts';
import type { CachedFile, SiteSnapshot } from './feed-cache.ts';
import type { ServerContext } from './server.ts';

// Feed readers poll often; five minutes bounds staleness while conditional GETs keep the rest cheap.
const FEED_CACHE_CONTROL = 'public, max-age=300';

/** Registers GET (and HEAD) /rss.xml, /feed.json and /tags/<tag>.xml, served from memory with conditional GET. */
export function registerFeedRoutes(server: FastifyInstance, context: ServerContext): void {
  const { feeds } = context;
  const serveFile = (name: string) => async (request: FastifyRequest, reply: FastifyReply) => {
    const snapshot = await feeds.current();
    const file = snapshot.files.get(name);
    if (!file) throw new NotFoundError(`no feed at /${name}`);
    return sendCached(request, reply, snapshot, file, FEED_CACHE_CONTROL);
  };
  server.get('/rss.xml', serveFile('rss.xml'));
  server.get('/feed.json', serveFile('feed.json'));
  // The router decodes the parameter, so a Cyrillic tag arrives as letters, not %-escapes. Its static
  // `.xml` suffix sets this route apart from the tag's page, /tags/:tag (tag-pages.ts).
  server.get<{ Params: { tag: string } }>('/tags/:tag.xml', async (request, reply) => {
    const snapshot = await feeds.current();
    const { tag } = request.params;
    const file = snapshot.files.get(`tags/${tag}.xml`);
    if (file) return sendCached(request, reply, snapshot, file, FEED_CACHE_CONTROL);
    // "Україна" or "C++ & Rust" as written in a story: send the reader to the slug's one address.
    const slug = tagSlug(tag);
    if (slug !== tag && snapshot.files.has(`tags/${slug}.xml`)) return reply.redirect(`/tags/${encodeURIComponent(slug)}.xml`, 301);
    throw new NotFoundError(`no feed for the tag "${tag}"`);
  });
}

/** Sends a cached body with ETag, Last-Modified and Cache-Control, or an empty 304 when the client's copy is current. */
export function sendCached(
  request: FastifyRequest,
  reply: FastifyReply,
  snapshot: SiteSnapshot,
  file: CachedFile,
  cacheControl: string,
): FastifyReply {
  reply.header('etag', file.etag);
  reply.header('last-modified', snapshot.lastModifiedHttp);
  reply.header('cache-control', cacheControl);
  if (isNotModified(request.headers, file.etag, snapshot.lastModified)) return reply.code(304).send();
  reply.header('content-type', file.contentType);
  return reply.send(file.body);
}

/** True when the client's copy is current: If-None-Match when sent (RFC 9110 weak comparison), else If-Modified-Since. */
export function isNotModified(headers: IncomingHttpHeaders, etag: string, lastModified: Date): boolean {
  const ifNoneMatch = headers['if-none-match'];
  if (ifNoneMatch !== undefined) return etagListMatches(ifNoneMatch, etag);
  const ifModifiedSince = headers['if-modified-since'];
  if (ifModifiedSince === undefined) return false;
  const since = Date.parse(ifModifiedSince);
  return !Number.isNaN(since) && lastModified.getTime() <= since;
}

/** Whether an If-None-Match value ("*", or a list of possibly weak tags) names `etag`. */
function etagListMatches(header: string, etag: string): boolean {
  if (header === etag) return true;
  // Our tags are base64url, so they never hold a comma: splitting the list is safe.
  for (const part of header.split(',')) {
    const candidate = part.trim();
    if (candidate === '*' || candidate === etag || (candidate.startsWith('W/') && candidate.slice(2) === etag)) return true;
  }
  return false;
}
