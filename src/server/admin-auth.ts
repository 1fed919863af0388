import { createHash, timingSafeEqual } from 'node:crypto';
import { normalizeIP } from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ForbiddenError } from '../errors.ts';
import type { Actor, User } from '../model/user.ts';
import type { AuthFailures } from './auth-failures.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** Failed admin logins per client, shared by every route behind checkAdminAccess. */
    adminAuthFailures?: AuthFailures;
  }
  interface FastifyRequest {
    /** Who called the admin API: set by checkAdminAccess on every request it lets through. */
    apiActor?: Actor;
  }
}

/** What the API's gate checks a bearer token against: the operator's token, and users' own tokens. */
export interface ApiAccess {
  adminToken: string | undefined;
  userForToken(token: string): Promise<User | undefined>;
}

/** Gives `server` and every plugin inside it the failure counter that checkAdminAccess consults. */
export function registerAdminAuth(server: FastifyInstance, failures: AuthFailures): void {
  server.decorate('adminAuthFailures', failures);
}

/**
 * The admin API's gate: 429 with Retry-After while the client has too many recent wrong tokens (even
 * if this one is right), 401 with WWW-Authenticate without a right bearer token (GAZETTE_ADMIN_TOKEN,
 * an admin, or a user's own API token, with that user's role); undefined lets the request through.
 */
export async function checkAdminAccess(access: ApiAccess, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
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
  const given = match?.[1] ?? '';
  // Compared even without a token, so a missing token and a wrong one take the same time.
  const operator = access.adminToken !== undefined && sameSecret(given, access.adminToken);
  if (match && operator) {
    request.apiActor = { user: undefined, role: 'admin', name: 'GAZETTE_ADMIN_TOKEN' };
    return undefined;
  }
  // Only a presented bearer token is a guess; counting bare requests would let any crawler of /api lock the admin out.
  // Counted before the lookup, so parallel guesses cannot all pass the check above; a right token takes it back.
  if (match) failures.record(client);
  const user = match ? await access.userForToken(given) : undefined;
  if (user) {
    failures.forgive(client);
    request.apiActor = { user, role: user.role, name: user.email };
    return undefined;
  }
  return reply
    .status(401)
    .header('WWW-Authenticate', match ? 'Bearer realm="gazette", error="invalid_token"' : 'Bearer realm="gazette"')
    .send({ error: 'unauthorized', message: 'send Authorization: Bearer <token> with GAZETTE_ADMIN_TOKEN or a user\'s API token (gazette users token EMAIL)' });
}

/** Refuses (403) an API caller who is not an admin. */
export function requireApiAdmin(request: FastifyRequest, what: string): void {
  const actor = request.apiActor;
  if (actor?.role !== 'admin') throw new ForbiddenError(`only an admin can ${what}: this token belongs to ${actor?.name ?? 'nobody'}, an editor`);
}

/** The API's gate over the app's configuration and users. */
export function apiAccess(app: { config: { adminToken: string | undefined }; users: { userForToken(token: string): Promise<User | undefined> } }): ApiAccess {
  return { adminToken: app.config.adminToken, userForToken: (token) => app.users.userForToken(token) };
}

// Hashing both sides first makes the comparison constant-time whatever the lengths.
function sameSecret(given: string, expected: string): boolean {
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(given), digest(expected));
}
