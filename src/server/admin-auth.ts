import { createHash, timingSafeEqual } from 'node:crypto';
import { normalizeIP } from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuthFailures } from './auth-failures.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** Failed admin logins per client, shared by every route behind checkAdminAccess. */
    adminAuthFailures?: AuthFailures;
  }
}

/** Gives `server` and every plugin inside it the failure counter that checkAdminAccess consults. */
export function registerAdminAuth(server: FastifyInstance, failures: AuthFailures): void {
  server.decorate('adminAuthFailures', failures);
}

/**
 * The admin API's gate: 404 when GAZETTE_ADMIN_TOKEN is unset (the API is off), 429 with Retry-After
 * while the client has too many recent wrong tokens (even if this one is right), 401 with
 * WWW-Authenticate without the right bearer token; undefined lets the request through.
 */
export async function checkAdminAccess(token: string | undefined, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
  if (!token) return reply.status(404).send({ error: 'not_found', message: 'admin API is off: set GAZETTE_ADMIN_TOKEN' });
  const failures = request.server.adminAuthFailures;
  // Fail closed: a gate without its limit would allow unlimited guesses.
  if (!failures) throw new Error('checkAdminAccess: call registerAdminAuth(server, …) before registering admin routes');
  // By /64 for IPv6, as @fastify/rate-limit does: one host usually holds a whole /64 and could rotate through it.
  const client = normalizeIP(request.ip ?? '');
  const waitMs = failures.retryAfterMs(client);
  if (waitMs > 0) {
    const seconds = Math.ceil(waitMs / 1000);
    return reply
      .status(429)
      .header('Retry-After', String(seconds))
      .send({ error: 'too_many_requests', message: `too many wrong admin tokens from your address; try again in ${seconds} seconds` });
  }
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(request.headers.authorization ?? '');
  // Compared even without a token, so a missing token and a wrong one take the same time.
  const right = sameSecret(match?.[1] ?? '', token);
  if (match && right) return undefined;
  // Only a presented bearer token is a guess; counting bare requests would let any crawler of /api lock the admin out.
  if (match) failures.record(client);
  return reply
    .status(401)
    .header('WWW-Authenticate', match ? 'Bearer realm="gazette", error="invalid_token"' : 'Bearer realm="gazette"')
    .send({ error: 'unauthorized', message: 'send Authorization: Bearer <GAZETTE_ADMIN_TOKEN> with the right token' });
}

// Hashing both sides first makes the comparison constant-time whatever the lengths.
function sameSecret(given: string, expected: string): boolean {
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(given), digest(expected));
}
