import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * The admin API's gate: 404 when GAZETTE_ADMIN_TOKEN is unset (the API is off), 401 with
 * WWW-Authenticate without the right bearer token; undefined lets the request through.
 */
export async function checkAdminAccess(token: string | undefined, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
  if (!token) return reply.status(404).send({ error: 'not_found', message: 'admin API is off: set GAZETTE_ADMIN_TOKEN' });
  const header = request.headers.authorization ?? '';
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  if (match && sameSecret(match[1]!, token)) return undefined;
  return reply
    .status(401)
    .header('WWW-Authenticate', match ? 'Bearer realm="gazette", error="invalid_token"' : 'Bearer realm="gazette"')
    .send({ error: 'unauthorized', message: match ? 'wrong admin token' : 'send Authorization: Bearer <GAZETTE_ADMIN_TOKEN>' });
}

// Hashing both sides first makes the comparison constant-time whatever the lengths.
function sameSecret(given: string, expected: string): boolean {
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(given), digest(expected));
}
