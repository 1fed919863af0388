import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuthFailures } from '../../src/server/auth-failures.ts';
import { testServer, type TestServer } from '../helpers/server.ts';

const TOKEN = 'admin-token-0123456789abcdef0123456789';
const MINUTE = 60_000;

describe('AuthFailures', () => {
  let now = 0;
  const failures = (options: { max?: number; maxClients?: number } = {}) => new AuthFailures({ max: 3, windowMs: 10 * MINUTE, now: () => now, ...options });
  beforeEach(() => {
    now = 1_000_000;
  });

  it('refuses a client once it has max failures in the window, until the oldest leaves it', () => {
    const f = failures();
    for (let i = 0; i < 3; i++) {
      expect(f.retryAfterMs('a')).toBe(0);
      f.record('a');
      now += MINUTE;
    }
    // Failures at 0, 1 and 2 minutes; it is now minute 3.
    expect(f.retryAfterMs('a')).toBe(7 * MINUTE);
    expect(f.retryAfterMs('b')).toBe(0);
    now += 7 * MINUTE - 1;
    expect(f.retryAfterMs('a')).toBe(1);
    now += 1;
    // Sliding: one failure has left the window, so one more try, and its failure refuses again.
    expect(f.retryAfterMs('a')).toBe(0);
    f.record('a');
    expect(f.retryAfterMs('a')).toBe(MINUTE);
  });

  it('forgets a client whose failures are all older than the window', () => {
    const f = failures();
    f.record('a');
    now += 10 * MINUTE;
    expect(f.retryAfterMs('a')).toBe(0);
    expect(f.size).toBe(0);
  });

  it('keeps at most max timestamps per client and maxClients clients, dropping the least recently failed', () => {
    const f = failures({ maxClients: 2 });
    for (let i = 0; i < 50; i++) f.record('a');
    f.record('b');
    f.record('a');
    f.record('c');
    expect(f.size).toBe(2);
    expect(f.retryAfterMs('b')).toBe(0);
    expect(f.retryAfterMs('a')).toBeGreaterThan(0);
  });
});

describe('admin gate', () => {
  let t: TestServer;
  let now: Date;
  beforeEach(async () => {
    now = new Date('2026-03-16T12:00:00Z');
    t = await testServer({ env: { GAZETTE_ADMIN_TOKEN: TOKEN }, now: () => now });
  });
  afterEach(() => t.close());

  const call = (authorization: string | undefined, options: { url?: string; ip?: string; headers?: Record<string, string> } = {}) =>
    t.server.inject({
      url: options.url ?? '/api/subscribers/counts',
      headers: { ...(authorization === undefined ? {} : { authorization }), ...options.headers },
      remoteAddress: options.ip ?? '198.51.100.1',
    });

  it('answers a missing and a wrong token with the same 401 body, telling them apart only in WWW-Authenticate', async () => {
    const missing = await call(undefined);
    const wrong = await call('Bearer wrong');
    expect([missing.statusCode, wrong.statusCode]).toEqual([401, 401]);
    expect(missing.body).toBe(wrong.body);
    expect(missing.json()).toEqual({ error: 'unauthorized', message: "send Authorization: Bearer <token> with GAZETTE_ADMIN_TOKEN or a user's API token (gazette users token EMAIL)" });
    expect(missing.headers['www-authenticate']).toBe('Bearer realm="gazette"');
    expect(wrong.headers['www-authenticate']).toBe('Bearer realm="gazette", error="invalid_token"');
  });

  it('refuses a client with 429 after 10 wrong tokens in 10 minutes, even with the right token, until the window passes', async () => {
    for (let i = 0; i < 10; i++) {
      expect((await call(`Bearer guess-${i}`)).statusCode).toBe(401);
      now = new Date(now.getTime() + 30_000);
    }
    const refused = await call(`Bearer ${TOKEN}`);
    expect(refused.statusCode).toBe(429);
    // The first guess was 5 minutes ago.
    expect(refused.headers['retry-after']).toBe('300');
    expect(refused.json()).toEqual({ error: 'too_many_requests', message: 'too many wrong admin tokens from your address; try again in 300 seconds' });
    // Refused requests are not compared, so they do not prolong the wait.
    expect((await call('Bearer guess-again')).headers['retry-after']).toBe('300');
    // Other clients are not affected.
    expect((await call(`Bearer ${TOKEN}`, { ip: '198.51.100.2' })).statusCode).toBe(200);

    now = new Date(now.getTime() + 5 * 60_000);
    expect((await call(`Bearer ${TOKEN}`)).statusCode).toBe(200);
  });

  it('covers the schedules API and unknown /api URLs with the same count', async () => {
    for (let i = 0; i < 5; i++) expect((await call('Bearer wrong', { url: '/api/schedules' })).statusCode).toBe(401);
    for (let i = 0; i < 5; i++) expect((await call('Bearer wrong', { url: '/api/nothing-here' })).statusCode).toBe(401);
    for (const url of ['/api/subscribers', '/api/schedules', '/api/nothing-here']) {
      const res = await call(`Bearer ${TOKEN}`, { url });
      expect(res.statusCode, url).toBe(429);
      expect(res.headers['retry-after'], url).toBe('600');
    }
  });

  it('counts neither successes nor requests without a bearer token', async () => {
    for (let i = 0; i < 20; i++) expect((await call(`Bearer ${TOKEN}`)).statusCode).toBe(200);
    for (let i = 0; i < 20; i++) expect((await call(undefined)).statusCode).toBe(401);
    for (let i = 0; i < 20; i++) expect((await call(`Basic ${TOKEN}`)).statusCode).toBe(401);
    for (let i = 0; i < 9; i++) expect((await call('Bearer wrong')).statusCode).toBe(401);
    expect((await call(`Bearer ${TOKEN}`)).statusCode).toBe(200);
    expect((await call('Bearer wrong')).statusCode).toBe(401);
    expect((await call(`Bearer ${TOKEN}`)).statusCode).toBe(429);
  });

  it('is not dodged with X-Forwarded-For when no proxy is trusted, nor by moving within an IPv6 /64', async () => {
    for (let i = 0; i < 10; i++) {
      await call('Bearer wrong', { ip: `2001:db8:1:2::${i + 1}`, headers: { 'x-forwarded-for': `203.0.113.${i}` } });
    }
    const res = await call(`Bearer ${TOKEN}`, { ip: '2001:db8:1:2:ffff::1', headers: { 'x-forwarded-for': '203.0.113.99' } });
    expect(res.statusCode).toBe(429);
    expect((await call(`Bearer ${TOKEN}`, { ip: '2001:db8:1:3::1' })).statusCode).toBe(200);
  });

  it('counts wrong tokens without GAZETTE_ADMIN_TOKEN too: they are guesses at users\' tokens', async () => {
    const off = await testServer();
    try {
      for (let i = 0; i < 10; i++) {
        const res = await off.server.inject({ url: '/api/subscribers', headers: { authorization: 'Bearer wrong' } });
        expect(res.statusCode).toBe(401);
      }
      expect((await off.server.inject({ url: '/api/subscribers', headers: { authorization: 'Bearer wrong' } })).statusCode).toBe(429);
    } finally {
      await off.close();
    }
  });
});
