import { ServerResponse, STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';

/** One response header, as name and value. */
export type Header = readonly [name: string, value: string];

/** The headers every response carries; Strict-Transport-Security only when the site's URL is https. */
export function securityHeaders(baseUrl: string | undefined): readonly Header[] {
  const headers: Header[] = [
    ['X-Content-Type-Options', 'nosniff'],
    ['X-Frame-Options', 'DENY'],
    // Tokens ride in URLs: never leak them to other sites through Referer.
    ['Referrer-Policy', 'no-referrer'],
    [
      'Content-Security-Policy',
      "default-src 'self'; img-src 'self' https: data:; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ],
    ['Permissions-Policy', 'interest-cohort=()'],
  ];
  // Decided by BASE_URL, not by the request: TLS usually ends at a proxy, and browsers ignore it over http.
  if (baseUrl?.startsWith('https://')) headers.push(['Strict-Transport-Security', 'max-age=31536000; includeSubDomains']);
  return headers;
}

/**
 * A ServerResponse class whose responses start with `headers` set, so the answers Node and Fastify write
 * without running the onSend hooks (no Host header, a refused Expect, 503 while closing, Fastify's
 * last-resort error writer) carry them too. inject() does not use it: there the hook does the work.
 */
export function responseWithHeaders(headers: readonly Header[]): typeof ServerResponse {
  return class SecuredResponse<Request extends IncomingMessage = IncomingMessage> extends ServerResponse<Request> {
    // Node passes an options object after the request (highWaterMark…): hand on whatever comes.
    constructor(...args: [req: Request]) {
      super(...args);
      for (const [name, value] of headers) this.setHeader(name, value);
    }
  };
}

const CLIENT_ERRORS: Record<string, { status: number; error: string; message: string }> = {
  HPE_HEADER_OVERFLOW: { status: 431, error: 'request_header_fields_too_large', message: 'the request line and headers are too large' },
  HPE_CHUNK_EXTENSIONS_OVERFLOW: { status: 413, error: 'payload_too_large', message: 'the chunk extensions are too large' },
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, error: 'request_timeout', message: 'the request took too long to arrive' },
};
const BAD_REQUEST = { status: 400, error: 'bad_request', message: 'the request is not valid HTTP' };

/** A socket error of a client: its `code` says what Node's parser or timer refused. */
export interface ClientError extends Error {
  code?: string;
}

/**
 * Fastify's clientErrorHandler: answers a request Node could not read (400, 408, 413, 431) straight on the
 * socket, as Node's own handler would, but with `headers`; then closes the connection.
 */
export function clientErrorResponder(headers: readonly Header[], log: (error: ClientError) => void): (error: ClientError, socket: Socket) => void {
  const lines = headers.map(([name, value]) => `${name}: ${value}\r\n`).join('');
  return (error, socket) => {
    // Reset by the peer: there is nobody to answer.
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    log(error);
    // As Node does: once part of a response is on the wire, another status line would corrupt it.
    const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (socket.writable && !inFlight?.headersSent) {
      const { status, error: name, message } = CLIENT_ERRORS[error.code ?? ''] ?? BAD_REQUEST;
      const body = JSON.stringify({ error: name, message });
      socket.write(
        `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${lines}Content-Type: application/json; charset=utf-8\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    }
    socket.destroy(error);
  };
}
