import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkEml } from '../helpers/check-eml.ts';
import { linkIn, readOutbox } from '../helpers/outbox.ts';
import { testServer } from '../helpers/server.ts';

type TestServer = Awaited<ReturnType<typeof testServer>>;

let clock = new Date('2026-01-05T10:00:00Z');
let t: TestServer;

beforeEach(async () => {
  clock = new Date('2026-01-05T10:00:00Z');
  // The tests stand behind a proxy (inject) that names the client in X-Forwarded-For.
  t = await testServer({ now: () => clock, env: { GAZETTE_TRUST_PROXY: 'true' } });
});
afterEach(async () => t.close());

const form = (fields: Record<string, string | string[]>) =>
  Object.entries(fields)
    .flatMap(([key, value]) => (Array.isArray(value) ? value : [value]).map((v) => `${encodeURIComponent(key)}=${encodeURIComponent(v)}`))
    .join('&');

async function subscribe(fields: Record<string, string | string[]>, headers: Record<string, string> = {}) {
  return t.server.inject({
    method: 'POST',
    url: '/subscribe',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    payload: form(fields),
  });
}

async function subscriber(email: string) {
  return (await t.app.subscribers()).findByEmail(email.toLowerCase());
}

async function confirmedSubscriber(email: string) {
  await subscribe({ email, name: 'Ann', lists: 'dispatch', frequency: 'weekly' });
  const confirmation = (await readOutbox(t.dataDir)).find((m) => m.raw.includes(`<${email}>`) && m.parsed.subject?.startsWith('Confirm'));
  const confirm = new URL(linkIn(confirmation!, '/confirm'));
  const response = await t.server.inject({ method: 'GET', url: `${confirm.pathname}${confirm.search}` });
  expect(response.statusCode).toBe(200);
  return (await readOutbox(t.dataDir)).find((m) => m.raw.includes(`<${email}>`) && m.parsed.subject?.startsWith('Welcome'))!;
}

describe('POST /subscribe', () => {
  it('stores a pending subscriber with consent and sends one confirmation email', async () => {
    const response = await subscribe({ email: 'Ann@Example.com', name: 'Ann', lists: ['dispatch', 'weekly'], frequency: 'daily' }, { 'x-forwarded-for': '203.0.113.9' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/text\/html; charset=utf-8/);
    expect(response.body).toContain('Check your inbox');
    const stored = await subscriber('ann@example.com');
    expect(stored).toMatchObject({ email: 'Ann@Example.com', status: 'pending', name: 'Ann', source: 'form', consent_ip: '203.0.113.9' });
    expect(stored!.lists).toEqual([
      { slug: 'dispatch', frequency: 'daily' },
      { slug: 'weekly', frequency: 'daily' },
    ]);
    const outbox = await readOutbox(t.dataDir);
    expect(outbox).toHaveLength(1);
    expect(outbox[0]!.raw).toMatch(/^To: "Ann" <Ann@Example\.com>/m);
    expect(outbox[0]!.parsed.subject).toBe('Confirm your subscription to The Gazette Dispatch');
    expect(linkIn(outbox[0]!, '/confirm')).toMatch(/^https:\/\/gazette\.test\/confirm\?token=/);
    expect(outbox[0]!.parsed.html).toContain('Confirm my subscription');
  });

  it('answers the same whether or not the address is known, and sends nothing to an active one', async () => {
    const first = await subscribe({ email: 'known@example.com' });
    await confirmedSubscriber('known2@example.com');
    const before = (await readOutbox(t.dataDir)).length;
    const again = await subscribe({ email: 'KNOWN2@example.com' });
    expect(again.statusCode).toBe(first.statusCode);
    expect(again.body).toBe(first.body);
    expect((await readOutbox(t.dataDir)).length).toBe(before);
    expect((await subscriber('known2@example.com'))!.status).toBe('active');
  });

  it('sends a pending address at most one confirmation per 10 minutes', async () => {
    await subscribe({ email: 'slow@example.com' });
    clock = new Date(clock.getTime() + 9 * 60_000);
    await subscribe({ email: 'slow@example.com' });
    expect(await readOutbox(t.dataDir)).toHaveLength(1);
    clock = new Date(clock.getTime() + 2 * 60_000);
    await subscribe({ email: 'slow@example.com' });
    expect(await readOutbox(t.dataDir)).toHaveLength(2);
  });

  it.each([
    ['not-an-email', /not a valid email address/],
    ['a@b', /not a valid email address/],
    [`${'x'.repeat(250)}@example.com`, /at most 254 characters/],
    ['evil@example.com\r\nBcc: victim@example.com', /line breaks/],
    ['', /email: required/],
  ])('refuses %j with 400 and stores nothing', async (email, message) => {
    const response = await subscribe({ email });
    expect(response.statusCode).toBe(400);
    expect(response.body).toMatch(message);
    expect(response.body).not.toMatch(/at .*\.ts:\d+/); // no stack trace
    expect((await (await t.app.subscribers()).countByStatus()).pending).toBe(0);
    expect(await readOutbox(t.dataDir)).toHaveLength(0);
  });

  it('refuses unknown lists, bad frequencies and names with line breaks', async () => {
    expect((await subscribe({ email: 'a@example.com', lists: 'nope' })).body).toMatch(/unknown list &quot;nope&quot;/);
    expect((await subscribe({ email: 'a@example.com', frequency: 'hourly' })).body).toMatch(/frequency: expected one of instant, daily, weekly/);
    expect((await subscribe({ email: 'a@example.com', name: 'A\nB' })).statusCode).toBe(400);
    expect(await subscriber('a@example.com')).toBeUndefined();
  });

  it('takes JSON and answers 202 with JSON; errors come back as JSON', async () => {
    const ok = await t.server.inject({ method: 'POST', url: '/subscribe', payload: { email: 'json@example.com', lists: ['weekly'] } });
    expect(ok.statusCode).toBe(202);
    expect(ok.json()).toMatchObject({ status: 'pending' });
    const bad = await t.server.inject({ method: 'POST', url: '/subscribe', payload: { email: 'nope' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ error: 'bad_request', message: expect.stringMatching(/email/) });
  });

  it('refuses an oversized body with 413', async () => {
    const response = await subscribe({ email: 'big@example.com', name: 'x'.repeat(100_000) });
    expect(response.statusCode).toBe(413);
    expect(await subscriber('big@example.com')).toBeUndefined();
  });

  it('rate-limits a client that subscribes too often', async () => {
    let last = 0;
    for (let i = 0; i < 21; i++) last = (await subscribe({ email: `r${i}@example.com` }, { 'x-forwarded-for': '198.51.100.7' })).statusCode;
    expect(last).toBe(429);
    const other = await subscribe({ email: 'other@example.com' }, { 'x-forwarded-for': '198.51.100.8' });
    expect(other.statusCode).toBe(200);
  });
});

describe('GET /confirm', () => {
  it('activates the subscriber and sends a welcome list email that passes the bulk-sender checks', async () => {
    const welcome = await confirmedSubscriber('welcome@example.com');
    expect((await subscriber('welcome@example.com'))!.status).toBe('active');
    expect(welcome.raw).toMatch(/^List-Unsubscribe: <https:\/\/gazette\.test\/unsubscribe\?token=/m);
    expect(welcome.raw).toMatch(/^List-Unsubscribe-Post: List-Unsubscribe=One-Click/m);
    expect(welcome.parsed.html).toContain('You are now subscribed to The Dispatch');
    const report = await checkEml([welcome.file]);
    expect(report.output).toMatch(/RESULT: PASS/);
  });

  it('is idempotent: a second click sends no second welcome', async () => {
    await confirmedSubscriber('twice@example.com');
    const [confirmation] = await readOutbox(t.dataDir);
    const confirm = new URL(linkIn(confirmation!, '/confirm'));
    const again = await t.server.inject({ method: 'GET', url: `${confirm.pathname}${confirm.search}` });
    expect(again.statusCode).toBe(200);
    expect((await readOutbox(t.dataDir)).filter((m) => m.parsed.subject?.startsWith('Welcome'))).toHaveLength(1);
  });

  it('answers a tampered, missing or expired token with a friendly 400 page', async () => {
    await subscribe({ email: 'late@example.com' });
    const [confirmation] = await readOutbox(t.dataDir);
    const url = new URL(linkIn(confirmation!, '/confirm'));
    const token = url.searchParams.get('token')!;
    const tampered = await t.server.inject({ method: 'GET', url: `/confirm?token=${token.slice(0, -2)}xx` });
    expect(tampered.statusCode).toBe(400);
    expect(tampered.body).toContain('This link is not valid');
    expect(tampered.headers['content-type']).toMatch(/text\/html/);
    const missing = await t.server.inject({ method: 'GET', url: '/confirm' });
    expect(missing.statusCode).toBe(400);
    clock = new Date(clock.getTime() + 8 * 86_400_000);
    const expired = await t.server.inject({ method: 'GET', url: `/confirm?token=${token}` });
    expect(expired.statusCode).toBe(400);
    expect(expired.body).toContain('expired');
    expect((await subscriber('late@example.com'))!.status).toBe('pending');
  });
});

describe('unsubscribe (RFC 8058)', () => {
  async function unsubscribeUrl(email: string): Promise<string> {
    const welcome = await confirmedSubscriber(email);
    const header = /^List-Unsubscribe: <([^>]+)>/m.exec(welcome.raw)![1]!;
    const url = new URL(header);
    return `${url.pathname}${url.search}`;
  }

  it('a GET shows one button and never unsubscribes', async () => {
    const url = await unsubscribeUrl('scanner@example.com');
    const response = await t.server.inject({ method: 'GET', url });
    expect(response.statusCode).toBe(200);
    expect(response.body).toMatch(/<form method="post" action="\/unsubscribe\?token=[^"]+">/);
    expect(response.body).toContain('<button type="submit">Unsubscribe</button>');
    expect((await subscriber('scanner@example.com'))!.status).toBe('active');
  });

  it('the one-click POST from a client with no cookies unsubscribes at once, 200 and no redirect', async () => {
    const url = await unsubscribeUrl('oneclick@example.com');
    const response = await t.server.inject({
      method: 'POST',
      url,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'List-Unsubscribe=One-Click',
    });
    expect(response.statusCode).toBe(200);
    expect(response.headers.location).toBeUndefined();
    expect(response.headers['set-cookie']).toBeUndefined();
    const stored = await subscriber('oneclick@example.com');
    expect(stored!.status).toBe('unsubscribed');
    expect(stored!.lists).toEqual([]);
    expect(stored!.unsubscribed_at).toBe(clock.toISOString());
  });

  it('accepts the one-click POST as multipart/form-data too, and years later', async () => {
    const url = await unsubscribeUrl('multipart@example.com');
    clock = new Date(clock.getTime() + 5 * 365 * 86_400_000); // unsubscribe links never expire
    const boundary = '----gazette-test';
    const response = await t.server.inject({
      method: 'POST',
      url,
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      payload: `--${boundary}\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\nOne-Click\r\n--${boundary}--\r\n`,
    });
    expect(response.statusCode).toBe(200);
    expect((await subscriber('multipart@example.com'))!.status).toBe('unsubscribed');
  });

  it('refuses a confirm token used as an unsubscribe token', async () => {
    await subscribe({ email: 'mixup@example.com' });
    const [confirmation] = await readOutbox(t.dataDir);
    const token = new URL(linkIn(confirmation!, '/confirm')).searchParams.get('token')!;
    const response = await t.server.inject({ method: 'POST', url: `/unsubscribe?token=${token}`, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'List-Unsubscribe=One-Click' });
    expect(response.statusCode).toBe(400);
    expect((await subscriber('mixup@example.com'))!.status).toBe('pending');
  });
});

describe('preferences', () => {
  it('changes lists and frequency, and leaving all lists unsubscribes', async () => {
    const welcome = await confirmedSubscriber('prefs@example.com');
    const url = new URL(linkIn(welcome, '/preferences'));
    const path = `${url.pathname}${url.search}`;
    const page = await t.server.inject({ method: 'GET', url: path });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('value="weekly" checked');
    const saved = await t.server.inject({
      method: 'POST',
      url: path,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: form({ lists: ['dispatch', 'weekly'], frequency: 'instant' }),
    });
    expect(saved.statusCode).toBe(200);
    expect(saved.body).toContain('Saved.');
    expect((await subscriber('prefs@example.com'))!.lists).toEqual([
      { slug: 'dispatch', frequency: 'instant' },
      { slug: 'weekly', frequency: 'instant' },
    ]);
    const left = await t.server.inject({ method: 'POST', url: path, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'action=leave' });
    expect(left.statusCode).toBe(200);
    expect((await subscriber('prefs@example.com'))!.status).toBe('unsubscribed');
  });
});

describe('abuse resistance', () => {
  it('ignores X-Forwarded-For unless GAZETTE_TRUST_PROXY names the proxy, so the limit cannot be dodged', async () => {
    const direct = await testServer({ now: () => clock });
    try {
      let last = 0;
      for (let i = 0; i < 21; i++) {
        last = (
          await direct.server.inject({
            method: 'POST',
            url: '/subscribe',
            headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': `10.0.0.${i}` },
            payload: `email=spoof${i}%40example.com`,
          })
        ).statusCode;
      }
      expect(last).toBe(429);
    } finally {
      await direct.close();
    }
  });

  it('answers a double-submitted form the same twice, storing one subscriber and no error', async () => {
    const responses = await Promise.all([1, 2, 3].map(() => subscribe({ email: 'twice@example.com' })));
    expect(responses.map((r) => r.statusCode)).toEqual([200, 200, 200]);
    expect(new Set(responses.map((r) => r.body)).size).toBe(1);
    expect((await subscriber('twice@example.com'))!.status).toBe('pending');
  });
});
