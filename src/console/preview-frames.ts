import type { FastifyReply } from 'fastify';

// An email is a whole document with inline styles; in the console it may run nothing and reach nothing but images.
// `sandbox` repeats the iframe's own attribute, so the frame stays inert even when opened on its own.
const EMAIL_FRAME_CSP = "default-src 'none'; img-src https: http: data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'; sandbox";
// A story's web page uses the site's own stylesheet, as readers will see it.
const PAGE_FRAME_CSP = "default-src 'self'; img-src 'self' https: http: data:; style-src 'self'; script-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'; sandbox";

/** Sends HTML meant only for the console's sandboxed preview iframes: framable by the console alone, never cached. */
export function sendFrame(reply: FastifyReply, html: string, kind: 'email' | 'page'): FastifyReply {
  return reply
    .type('text/html; charset=utf-8')
    .header('Content-Security-Policy', kind === 'email' ? EMAIL_FRAME_CSP : PAGE_FRAME_CSP)
    .header('X-Frame-Options', 'SAMEORIGIN')
    .header('Cache-Control', 'no-store')
    .send(html);
}
