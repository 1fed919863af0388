import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { testServer, type TestServer } from '../helpers/server.ts';

const TOKEN = 'admin-token-0123456789abcdef0123456789';
const EXPECTED = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'permissions-policy': 'interest-cohort=()',
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
};

function expectSecured(headers: Record<string, unknown>, what: string): void {
  for (const [name, value] of Object.entries(EXPECTED)) expect(headers[name], `${what}: ${name}`).toBe(value);
  expect(headers['content-security-policy'], what).toContain("frame-ancestors 'none'");
}

describe('security headers, through inject', () => {
  let t: TestServer;
  beforeEach(async () => {
    t = await testServer({ env: { GAZETTE_ADMIN_TOKEN: TOKEN }, server: { subscribeRateLimit: 1 } });
  });
  afterEach(() => t.close());

  it('are on pages, feeds, HEAD and OPTIONS answers', async () => {
    for (const [method, url, status] of [
      ['GET', '/', 200],
      ['GET', '/rss.xml', 200],
      ['HEAD', '/', 200],
      ['HEAD', '/rss.xml', 200],
      ['OPTIONS', '/', 404],
      ['GET', '/no-such-page', 404],
    ] as const) {
      const res = await t.server.inject({ method, url });
      expect(res.statusCode, `${method} ${url}`).toBe(status);
      expectSecured(res.headers, `${method} ${url}`);
    }
  });

  it('are on the errors Fastify answers before routing, which no longer echo the URL', async () => {
    for (const [url, status, message] of [
      ['/%', 400, 'That address is not a valid URL.'],
      ['/%E0%A4%A', 400, 'That address is not a valid URL.'],
      [`/stories/${'a'.repeat(300)}`, 414, 'That address is too long.'],
      [`/api/subscribers/${'a'.repeat(300)}`, 414, 'That address is too long.'],
    ] as const) {
      const res = await t.server.inject({ url, headers: { accept: 'application/json' } });
      expect(res.statusCode, url).toBe(status);
      expectSecured(res.headers, url);
      expect(res.json()).toEqual({ error: status === 400 ? 'bad_request' : 'uri_too_long', message });
    }
    const page = await t.server.inject({ url: '/%' });
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expectSecured(page.headers, '/% as a page');
  });

  it('are on 400, 413 and 415 answers to bad bodies', async () => {
    const post = (headers: Record<string, string>, payload: string) => t.server.inject({ method: 'POST', url: '/api/subscribers', headers: { authorization: `Bearer ${TOKEN}`, ...headers }, payload });
    for (const [res, status] of [
      [await post({ 'content-type': 'application/json' }, '{"email": '), 400],
      [await post({ 'content-type': 'application/json' }, JSON.stringify({ email: 'x'.repeat(70 * 1024) })), 413],
      [await post({ 'content-type': 'text/xml' }, '<email/>'), 415],
    ] as const) {
      expect(res.statusCode).toBe(status);
      expectSecured(res.headers, String(status));
    }
    const form = await t.server.inject({ method: 'POST', url: '/subscribe', headers: { 'content-type': 'application/json' }, payload: '{bad' });
    expect(form.statusCode).toBe(400);
    expectSecured(form.headers, 'invalid JSON to /subscribe');
  });

  it("are on 401, the admin limit's 429, the subscribe rate limit's 429 and a 500", async () => {
    const unauthorized = await t.server.inject({ url: '/api/subscribers' });
    expect(unauthorized.statusCode).toBe(401);
    expectSecured(unauthorized.headers, '401');

    const subscribe = () => t.server.inject({ method: 'POST', url: '/subscribe', payload: { email: 'a@example.com' } });
    expect((await subscribe()).statusCode).toBe(202);
    const limited = await subscribe();
    expect(limited.statusCode).toBe(429);
    expectSecured(limited.headers, 'subscribe 429');

    for (let i = 0; i < 10; i++) await t.server.inject({ url: '/api/subscribers', headers: { authorization: 'Bearer wrong' } });
    const blocked = await t.server.inject({ url: '/api/subscribers', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(blocked.statusCode).toBe(429);
    expectSecured(blocked.headers, 'admin 429');

    vi.spyOn(t.app.subscribers, 'counts').mockRejectedValue(new Error('disk on fire'));
    const failed = await t.server.inject({ url: '/api/subscribers/counts', headers: { authorization: `Bearer ${TOKEN}` }, remoteAddress: '192.0.2.7' });
    expect(failed.statusCode).toBe(500);
    expect(failed.body).not.toContain('disk on fire');
    expectSecured(failed.headers, '500');
  });

  it('keep no-store on URLs that carry a token', async () => {
    const res = await t.server.inject({ url: '/unsubscribe?token=abc' });
    expect(res.headers['cache-control']).toBe('no-store');
    expectSecured(res.headers, 'token URL');
  });
});

describe('Strict-Transport-Security', () => {
  it('is left out when BASE_URL is plain http', async () => {
    const t = await testServer({ env: { BASE_URL: 'http://localhost:3000' } });
    try {
      const res = await t.server.inject({ url: '/' });
      expect(res.headers['x-frame-options']).toBe('DENY');
      expect(res.headers['strict-transport-security']).toBeUndefined();
    } finally {
      await t.close();
    }
  });
});

describe('security headers, on a real socket', () => {
  let t: TestServer;
  let port: number;
  beforeEach(async () => {
    t = await testServer();
    await t.server.listen({ host: '127.0.0.1', port: 0 });
    port = (t.server.server.address() as net.AddressInfo).port;
  });
  afterEach(() => t.close());

  /** Sends `request` as raw bytes and reads until the server closes; returns status and headers. */
  function raw(request: string): Promise<{ status: number; headers: Record<string, string[]>; body: string }> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => socket.write(request));
      const chunks: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('error', reject);
      socket.on('close', () => {
        const text = Buffer.concat(chunks).toString('latin1');
        const [head = '', body = ''] = text.split('\r\n\r\n', 2);
        const [statusLine = '', ...lines] = head.split('\r\n');
        const headers: Record<string, string[]> = {};
        for (const line of lines) {
          const at = line.indexOf(':');
          (headers[line.slice(0, at).toLowerCase()] ??= []).push(line.slice(at + 1).trim());
        }
        resolve({ status: Number(statusLine.split(' ')[1]), headers, body });
      });
    });
  }

  function expectSecuredOnce(headers: Record<string, string[]>, what: string): void {
    for (const [name, value] of Object.entries(EXPECTED)) expect(headers[name], `${what}: ${name}`).toEqual([value]);
    expect(headers['content-security-policy'], what).toHaveLength(1);
  }

  const get = (target: string, extra = '') => `GET ${target} HTTP/1.1\r\nHost: gazette.test\r\n${extra}Connection: close\r\n\r\n`;

  it('are sent once on an ordinary answer', async () => {
    const res = await raw(get('/healthz'));
    expect(res.status).toBe(200);
    expectSecuredOnce(res.headers, 'GET /healthz');
  });

  it('are on the answers Node writes itself: header overflow, unparsable requests, no Host, a refused Expect', async () => {
    for (const [what, request, status] of [
      ['a 20 KB header', get('/', `X-Big: ${'a'.repeat(20 * 1024)}\r\n`), 431],
      ['a 20 KB URL', get(`/${'a'.repeat(20 * 1024)}`), 431],
      ['a garbage request line', 'NOT HTTP AT ALL\r\n\r\n', 400],
      ['a space in the URL', get('/a b'), 400],
      ['no Host header', 'GET / HTTP/1.1\r\nConnection: close\r\n\r\n', 400],
      ['Expect: something-else', get('/', 'Expect: something-else\r\n'), 417],
    ] as const) {
      const res = await raw(request);
      expect(res.status, what).toBe(status);
      expectSecuredOnce(res.headers, what);
    }
  });

  it('say what went wrong in JSON on socket-level errors', async () => {
    const res = await raw(get('/', `X-Big: ${'a'.repeat(20 * 1024)}\r\n`));
    expect(res.headers['content-type']).toEqual(['application/json; charset=utf-8']);
    expect(res.headers.connection).toEqual(['close']);
    expect(JSON.parse(res.body)).toEqual({ error: 'request_header_fields_too_large', message: 'the request line and headers are too large' });
  });

  it('are on the pre-routing errors over the wire too', async () => {
    for (const [target, status] of [
      ['/%E0%A4%A', 400],
      [`/stories/${'a'.repeat(300)}`, 414],
    ] as const) {
      const res = await raw(get(target));
      expect(res.status, target).toBe(status);
      expectSecuredOnce(res.headers, target);
    }
  });
});

describe('request logs', () => {
  it('never carry the tokens of confirm, unsubscribe and preferences links', async () => {
    const { withoutTokens } = await import('../../src/server/server.ts');
    expect(withoutTokens('/unsubscribe?token=1.u.0.abc')).toBe('/unsubscribe?token=…');
    expect(withoutTokens('/preferences?x=1&token=1.p.0.abc&y=2')).toBe('/preferences?x=1&token=…&y=2');
    expect(withoutTokens('/confirm?TOKEN=abc#top')).toBe('/confirm?TOKEN=…#top');
    expect(withoutTokens('/stories/x')).toBe('/stories/x');
  });
});
