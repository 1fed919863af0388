import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import nodemailer from 'nodemailer';
import { describe, expect, it } from 'vitest';
import type { App } from '../../src/app.ts';
import { startInbound } from '../../src/inbound/start-inbound.ts';
import { addSubscribers, afterThisTest, deliverAll, readers, sendDigest, setup } from '../helpers/delivery-setup.ts';

// Mail that comes back, end to end: an edition goes out through SMTP, then DSNs, ARF reports,
// auto-replies and unsubscribe mails in real formats are delivered with nodemailer to the real
// inbound receiver, and each must act on the right subscriber and only on them.

const FIXTURES = fileURLToPath(new URL('../fixtures/inbound/mail/', import.meta.url));
const DOMAIN = 'gazette.example.org';

const fixture = (name: string) => readFile(`${FIXTURES}${name}`, 'utf8');

interface Sent {
  app: App;
  editionId: number;
  /** Each reader's delivery id and signed token, by address. */
  delivery: Map<string, { id: number; token: string }>;
  /** The List-Unsubscribe mailto: each reader got, by address. */
  mailto: Map<string, string>;
  send(to: string, raw: string): Promise<{ accepted: boolean; response: string }>;
  status(email: string): Promise<{ status: string; lists: string[]; suppressed: string | undefined; events: string[] }>;
  log: string[];
}

async function sent(count: number, options: { maxBytes?: number } = {}): Promise<Sent> {
  const { app, recorder } = await setup({ env: options.maxBytes ? { GAZETTE_INBOUND_MAX_BYTES: String(options.maxBytes) } : {} });
  const people = readers(count);
  await addSubscribers(app, people);
  const editionId = await sendDigest(app);
  await deliverAll(app, editionId);
  const tokens = await app.adapters.deliveryTokens();
  const rows = await (await app.adapters.store()).db
    .selectFrom('deliveries')
    .innerJoin('subscribers', 'subscribers.id', 'deliveries.subscriber_id')
    .select(['deliveries.id', 'subscribers.email_key'])
    .where('edition_id', '=', editionId)
    .execute();
  const delivery = new Map(rows.map((r) => [r.email_key, { id: Number(r.id), token: tokens.sign(Number(r.id)) }]));
  const mailto = new Map(
    recorder.messages.map((m) => [m.rcpt[0]!, /<(mailto:[^>]+)>/.exec(m.raw.replace(/\r\n\s+/g, ' '))![1]!]),
  );

  const controller = new AbortController();
  const log: string[] = [];
  const inbound = await startInbound(app, { port: 0, host: '127.0.0.1', mailboxUrl: undefined, log: (line) => log.push(line), signal: controller.signal });
  const smtp = nodemailer.createTransport({ host: '127.0.0.1', port: inbound.receiver!.port, secure: false, ignoreTLS: true, pool: true, maxConnections: 3 });
  afterThisTest(async () => {
    smtp.close();
    controller.abort();
    await inbound.done;
  });
  return {
    app,
    editionId,
    delivery,
    mailto,
    log,
    async send(to, raw) {
      try {
        // MAIL FROM:<>, as every DSN and auto-reply comes.
        const info = await smtp.sendMail({ envelope: { from: '', to: [to] }, raw });
        return { accepted: info.accepted.length === 1, response: info.response };
      } catch (error) {
        return { accepted: false, response: (error as { response?: string }).response ?? String(error) };
      }
    },
    async status(email) {
      const found = await app.subscribers.find(email);
      return { status: found.status, lists: found.lists.map((l) => l.slug), suppressed: found.suppression?.reason, events: found.events.map((e) => `${e.type}:${e.action}`) };
    },
  };
}

const withDelivery = (raw: string, token: string) => raw.replace(/X-Gazette-Delivery: \S+/g, `X-Gazette-Delivery: ${token}`);

describe('the inbound SMTP receiver', () => {
  it('each DSN format suppresses the subscriber its VERP address names, and no one else', async () => {
    const hard = ['postfix-hard.eml', 'gmail-hard.eml', 'outlook-hard.eml', 'exim-hard.eml', 'sendmail-two-recipients.eml', 'qmail-plain-bounce.eml'];
    const s = await sent(hard.length + 2);
    for (const [i, name] of hard.entries()) {
      const reader = `reader${i + 1}@example.com`;
      const answer = await s.send(`bounces+${s.delivery.get(reader)!.token}@${DOMAIN}`, await fixture(name));
      expect(answer, name).toMatchObject({ accepted: true, response: expect.stringContaining('recorded 1') });
      expect(await s.status(reader), name).toEqual({ status: 'bounced', lists: ['dispatch'], suppressed: 'bounced', events: ['hard-bounce:suppressed'] });
    }
    // The two readers no report named are as they were.
    for (const reader of [`reader${hard.length + 1}@example.com`, `reader${hard.length + 2}@example.com`]) {
      expect(await s.status(reader)).toEqual({ status: 'active', lists: ['dispatch'], suppressed: undefined, events: [] });
    }
    const report = await s.app.editions.status(s.editionId);
    expect(report).toMatchObject({ sent: 2, bounced: hard.length, cameBack: { hardBounces: hard.length, softBounces: 0, complaints: 0, unsubscribes: 0 } });
  });

  it('reads the delivery from the quoted original when the return path was rewritten, and counts a soft bounce', async () => {
    const s = await sent(3);
    const token = s.delivery.get('reader1@example.com')!.token;
    expect((await s.send(`bounces@${DOMAIN}`, withDelivery(await fixture('postfix-hard.eml'), token))).accepted).toBe(true);
    expect((await s.status('reader1@example.com')).suppressed).toBe('bounced');
    // Mailbox full (5.2.2) and a 4.x.x failure are soft: counted, not suppressed.
    await s.send(`bounces+${s.delivery.get('reader2@example.com')!.token}@${DOMAIN}`, await fixture('dovecot-mailbox-full.eml'));
    expect(await s.status('reader2@example.com')).toMatchObject({ status: 'active', suppressed: undefined, events: ['soft-bounce:counted'] });
    // Postfix giving up after days of 4xx: Action failed, Status 4.4.7.
    const expired = (await fixture('postfix-hard.eml')).replace(/^Status: 5\.1\.1/m, 'Status: 4.4.7');
    expect(expired).toMatch(/^Status: 4\.4\.7/m);
    await s.send(`bounces+${s.delivery.get('reader3@example.com')!.token}@${DOMAIN}`, expired);
    expect(await s.status('reader3@example.com')).toMatchObject({ status: 'active', events: ['soft-bounce:counted'] });
  });

  it('a complaint (ARF) removes the person from every list and suppresses them', async () => {
    const s = await sent(2);
    const token = s.delivery.get('reader2@example.com')!.token;
    // Feedback loops report to a fixed address: the delivery comes from the attached original.
    expect((await s.send(`bounces@${DOMAIN}`, withDelivery(await fixture('yahoo-arf-abuse.eml'), token))).accepted).toBe(true);
    expect(await s.status('reader2@example.com')).toEqual({ status: 'complained', lists: [], suppressed: 'complained', events: ['complaint:complained'] });
    expect((await s.status('reader1@example.com')).status).toBe('active');
    expect((await s.app.editions.status(s.editionId)).cameBack.complaints).toBe(1);
  });

  it('a forged VERP token, an auto-reply, a delay warning and a report naming no delivery are taken and ignored', async () => {
    const s = await sent(2);
    const real = s.delivery.get('reader1@example.com')!.token;
    const forged = real.replace(/-([0-9a-f])/, (_, c: string) => `-${c === '0' ? '1' : '0'}`);
    expect((await s.send(`bounces+${forged}@${DOMAIN}`, await fixture('postfix-hard.eml'))).accepted).toBe(true);
    // A token for another delivery id, made without the key.
    expect((await s.send(`bounces+d2-0123456789abcdef0123@${DOMAIN}`, await fixture('gmail-hard.eml'))).accepted).toBe(true);
    for (const name of ['sieve-vacation.eml', 'outlook-automatic-reply.eml', 'postfix-delayed.eml']) {
      expect((await s.send(`bounces+${real}@${DOMAIN}`, await fixture(name))).accepted, name).toBe(true);
    }
    expect((await s.send(`bounces@${DOMAIN}`, await fixture('rfc3464-example.eml'))).accepted).toBe(true);
    for (const reader of ['reader1@example.com', 'reader2@example.com']) {
      expect(await s.status(reader)).toEqual({ status: 'active', lists: ['dispatch'], suppressed: undefined, events: [] });
    }
    expect(s.log.join('\n')).toMatch(/token we did not sign/);
    expect(s.log.join('\n')).toMatch(/auto-reply/);
  });

  it("the List-Unsubscribe mailto: each reader got unsubscribes them, whatever the body", async () => {
    const s = await sent(2);
    const mailto = new URL(s.mailto.get('reader1@example.com')!);
    const subject = mailto.searchParams.get('subject')!;
    expect(mailto.pathname).toMatch(new RegExp(`^unsubscribe\\+d[0-9a-z]+-[0-9a-f]{20}@${DOMAIN.replace(/\./g, '\\.')}$`));
    // What a mail client sends for it: the address and subject from the URI, a body of its own.
    const raw = `From: Reader One <reader1@example.com>\r\nTo: ${mailto.pathname}\r\nSubject: ${subject}\r\nMessage-ID: <unsub-1@client.example.com>\r\nDate: Mon, 04 May 2026 09:00:00 +0000\r\n\r\nSent from my phone\r\n`;
    expect((await s.send(mailto.pathname, raw)).accepted).toBe(true);
    expect(await s.status('reader1@example.com')).toEqual({ status: 'unsubscribed', lists: [], suppressed: undefined, events: ['unsubscribe:unsubscribed'] });
    // The same mail again changes nothing more.
    await s.send(mailto.pathname, raw);
    expect((await s.status('reader1@example.com')).events).toEqual(['unsubscribe:unsubscribed']);
    // A client that drops the +token keeps the subject: that is enough.
    const token = subject.replace(/^unsubscribe /, '');
    await s.send(`unsubscribe@${DOMAIN}`, `From: reader2@example.com\r\nTo: unsubscribe@${DOMAIN}\r\nSubject: unsubscribe ${s.delivery.get('reader2@example.com')!.token}\r\nMessage-ID: <unsub-2@client.example.com>\r\n\r\n.\r\n`);
    expect((await s.status('reader2@example.com')).status).toBe('unsubscribed');
    expect(token).toBe(s.delivery.get('reader1@example.com')!.token);
    expect((await s.app.editions.status(s.editionId)).cameBack.unsubscribes).toBe(2);
  });

  it('refuses at RCPT every address but the bounce and unsubscribe ones, and a message over the size limit', async () => {
    const s = await sent(1, { maxBytes: 64 * 1024 });
    for (const to of [`editors@${DOMAIN}`, `bounces@elsewhere.example`, 'postmaster@gazette.example.org', `bouncesx@${DOMAIN}`]) {
      const answer = await s.send(to, 'Subject: hi\r\n\r\nhello\r\n');
      expect(answer.accepted, to).toBe(false);
      expect(answer.response, to).toMatch(/^550 /);
    }
    const big = `Subject: big\r\n\r\n${'x'.repeat(76).concat('\r\n').repeat(1000)}`;
    const answer = await s.send(`bounces@${DOMAIN}`, big);
    expect(answer.accepted).toBe(false);
    expect(answer.response).toMatch(/^552 /);
  });
});
