import { createHmac, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { WebhookConfig } from '../../src/config.ts';
import { ConfigError, InputError } from '../../src/errors.ts';
import type { InboundReport, ReportHandler } from '../../src/inbound/inbound-report.ts';
import { MailgunVerifier, mailgunReports, parseMailgunBody } from '../../src/inbound/webhooks/mailgun.ts';
import { postmarkAuthorized, postmarkReports } from '../../src/inbound/webhooks/postmark.ts';
import { sendgridPublicKey, sendgridReports } from '../../src/inbound/webhooks/sendgrid.ts';
import { sesReports } from '../../src/inbound/webhooks/ses.ts';
import { createSnsClient, isSnsUrl, snsStringToSign, type SnsClient, type SnsMessage } from '../../src/inbound/webhooks/sns-message.ts';
import { webhookRoutes } from '../../src/server/webhook-routes.ts';

const run = promisify(execFile);
const FIXTURES = new URL('../fixtures/inbound/webhooks/', import.meta.url);
const TOPIC = 'arn:aws:sns:us-east-1:123456789012:gazette-ses';
const CERT_URL = 'https://sns.us-east-1.amazonaws.com/SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem';
const SUBSCRIBE_URL = `https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=${TOPIC}&Token=2336412f37fb687f5d51e6e2425dacbba`;
const MAILGUN_KEY = 'key-3ax6xnjp29jd6fds4gc373sgvjxteol0';
const POSTMARK = { user: 'postmark', password: 'correct horse battery staple' };

async function fixture(name: string): Promise<unknown> {
  return JSON.parse(await readFile(new URL(name, FIXTURES), 'utf8')) as unknown;
}

/** A ReportHandler that keeps what it is given and answers recorded (or duplicate the second time). */
function recordingHandler() {
  const handled: InboundReport[] = [];
  const seen = new Set<string>();
  let failing = false;
  const handler: ReportHandler = {
    async handle(report) {
      if (failing) throw new Error('database is locked');
      handled.push(report);
      const key = `${report.reportId}|${report.deliveryId}`;
      if (seen.has(key)) return { result: 'duplicate' };
      seen.add(key);
      return { result: 'recorded' };
    },
  };
  return { handler, handled, fail: (value: boolean) => (failing = value) };
}

// The string SNS signs, written out here rather than taken from the module under test.
function canonical(message: Record<string, string>): string {
  const keys = message.Type === 'Notification' ? ['Message', 'MessageId', 'Subject', 'Timestamp', 'TopicArn', 'Type'] : ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'];
  return keys.filter((key) => message[key] !== undefined).map((key) => `${key}\n${message[key]}\n`).join('');
}

describe('SNS message', () => {
  it('builds the string to sign in AWS order, Subject only when present', () => {
    const base = { MessageId: 'm1', TopicArn: TOPIC, Message: 'hello\nworld', Timestamp: '2026-03-16T12:00:00.000Z', SignatureVersion: '1', Signature: 'x', SigningCertURL: CERT_URL };
    const notification: SnsMessage = { ...base, Type: 'Notification' };
    expect(snsStringToSign(notification)).toBe(
      `Message\nhello\nworld\nMessageId\nm1\nTimestamp\n2026-03-16T12:00:00.000Z\nTopicArn\n${TOPIC}\nType\nNotification\n`,
    );
    expect(snsStringToSign({ ...notification, Subject: 'Amazon SES Email Event Notification' })).toContain('MessageId\nm1\nSubject\nAmazon SES Email Event Notification\nTimestamp\n');
    const confirmation: SnsMessage = { ...base, Type: 'SubscriptionConfirmation', SubscribeURL: SUBSCRIBE_URL, Token: 'tok' };
    expect(snsStringToSign(confirmation)).toBe(
      `Message\nhello\nworld\nMessageId\nm1\nSubscribeURL\n${SUBSCRIBE_URL}\nTimestamp\n2026-03-16T12:00:00.000Z\nToken\ntok\nTopicArn\n${TOPIC}\nType\nSubscriptionConfirmation\n`,
    );
  });

  it('takes https URLs on sns.<region>.amazonaws.com(.cn) only', () => {
    expect(isSnsUrl(CERT_URL)).toBe(true);
    expect(isSnsUrl('https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem')).toBe(true);
    expect(isSnsUrl('http://sns.us-east-1.amazonaws.com/x.pem')).toBe(false);
    expect(isSnsUrl('https://sns.us-east-1.amazonaws.com.evil.example/x.pem')).toBe(false);
    expect(isSnsUrl('https://evil.example/sns.us-east-1.amazonaws.com/x.pem')).toBe(false);
    expect(isSnsUrl('https://sns.us-east-1.amazonaws.com:8443/x.pem')).toBe(false);
    expect(isSnsUrl('https://user@sns.us-east-1.amazonaws.com/x.pem')).toBe(false);
    expect(isSnsUrl('https://s3.amazonaws.com/x.pem')).toBe(false);
    expect(isSnsUrl('not a url')).toBe(false);
  });

  it('the default client caches certificates, forgets failures and checks every URL before fetching', async () => {
    const calls: string[] = [];
    let status = 500;
    const fakeFetch = (async (url: string | URL | Request) => {
      calls.push(String(url));
      return new Response(status === 200 ? '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' : 'oops', { status });
    }) as typeof fetch;
    const client = createSnsClient({ fetch: fakeFetch });
    await expect(client.fetchCertificate(CERT_URL)).rejects.toThrow(/SNS answered 500/);
    status = 200;
    const [a, b] = await Promise.all([client.fetchCertificate(CERT_URL), client.fetchCertificate(CERT_URL)]);
    expect(a).toBe(b);
    await client.fetchCertificate(CERT_URL);
    expect(calls).toEqual([CERT_URL, CERT_URL]);
    await expect(client.fetchCertificate('https://evil.example/cert.pem')).rejects.toThrow(/not on an https SNS host/);
    await client.confirmSubscription(SUBSCRIBE_URL);
    expect(calls.at(-1)).toBe(SUBSCRIBE_URL);
    await expect(client.confirmSubscription('https://evil.example/?Action=ConfirmSubscription')).rejects.toThrow(/SubscribeURL/);
    expect(calls).toHaveLength(3);
  });
});

describe('SES payloads', () => {
  const envelope = (message: unknown) => ({ MessageId: 'sns-1', Timestamp: '2026-03-16T12:00:00.000Z', Message: typeof message === 'string' ? message : JSON.stringify(message) });
  const now = new Date('2026-03-16T12:00:01Z');

  it('a permanent bounce is a hard bounce per recipient, the delivery from our Message-ID in the raw headers', async () => {
    const { reports, ignored } = sesReports(envelope(await fixture('ses-bounce.json')), now);
    expect(ignored).toEqual([]);
    expect(reports).toEqual([
      {
        type: 'hard-bounce',
        source: 'ses',
        deliveryId: 123,
        email: 'ada@example.org',
        status: '5.1.1',
        diagnostic: 'smtp; 550 5.1.1 <ada@example.org>: Recipient address rejected: User unknown in virtual mailbox table',
        reportId: '0100018e4f3a2b1c-7d9e2f60-1a2b-4c3d-9e8f-0123456789ab-000000/ada@example.org',
        at: new Date('2026-03-16T11:58:04.000Z'),
      },
      expect.objectContaining({ type: 'hard-bounce', deliveryId: 123, email: 'Grace@Example.net', status: '5.2.1', reportId: expect.stringMatching(/\/grace@example\.net$/) }),
    ]);
  });

  it('transient and undetermined bounces are soft; event publishing (eventType) reads the same', async () => {
    const body = (await fixture('ses-bounce.json')) as { bounce: { bounceType: string; bounceSubType: string; bouncedRecipients: unknown[] }; notificationType?: string; eventType?: string };
    body.bounce.bounceType = 'Transient';
    body.bounce.bounceSubType = 'MailboxFull';
    delete body.notificationType;
    body.eventType = 'Bounce';
    expect(sesReports(envelope(body), now).reports.map((r) => r.type)).toEqual(['soft-bounce', 'soft-bounce']);
    body.bounce.bounceType = 'Undetermined';
    body.bounce.bouncedRecipients = [{ emailAddress: 'x@example.com' }];
    const [report] = sesReports(envelope(body), now).reports;
    expect(report).toMatchObject({ type: 'soft-bounce', status: null, diagnostic: 'Undetermined MailboxFull' });
  });

  it('a complaint carries its feedback type; the delivery from commonHeaders', async () => {
    const { reports } = sesReports(envelope(await fixture('ses-complaint.json')), now);
    expect(reports).toEqual([expect.objectContaining({ type: 'complaint', deliveryId: 77, email: 'linus@example.com', status: 'abuse', diagnostic: null })]);
    const body = (await fixture('ses-complaint.json')) as { complaint: Record<string, unknown>; mail: unknown };
    delete body.complaint.complaintFeedbackType;
    delete body.complaint.feedbackId;
    body.mail = { headers: [{ name: 'Message-ID', value: '<not-ours@amazonses.com>' }] };
    expect(sesReports(envelope(body), now).reports[0]).toMatchObject({ status: 'abuse', deliveryId: null, reportId: 'sns-1/linus@example.com' });
  });

  it('ignores deliveries and SES set-up messages; a malformed bounce is an InputError', () => {
    expect(sesReports(envelope({ notificationType: 'Delivery', delivery: {} }), now)).toEqual({ reports: [], ignored: ['SES Delivery notifications are not reports'] });
    expect(sesReports(envelope('Successfully validated SNS topic for Amazon SES event publishing.'), now).ignored).toHaveLength(1);
    expect(() => sesReports(envelope({ notificationType: 'Bounce', bounce: { bounceType: 'Permanent' } }), now)).toThrow(InputError);
    expect(() => sesReports(envelope({ notificationType: 'Bounce', bounce: { bounceType: 'Permanent' } }), now)).toThrow(/bounce\.bouncedRecipients/);
  });
});

describe('Postmark payloads', () => {
  const now = new Date('2026-03-16T12:00:00Z');

  it('a hard bounce with our Message-ID in Headers, its enhanced code read from Details', async () => {
    expect(postmarkReports(await fixture('postmark-bounce.json'), now)).toEqual({
      reports: [
        {
          type: 'hard-bounce',
          source: 'postmark',
          deliveryId: 123,
          email: 'ada@example.org',
          status: '5.1.1',
          diagnostic: 'smtp;550 5.1.1 The email account that you tried to reach does not exist.',
          reportId: 'Bounce/4323372036',
          at: new Date('2026-03-16T11:55:54.907Z'),
        },
      ],
      ignored: [],
    });
  });

  it('sorts bounce types: soft ones counted, auto-replies and the like ignored', async () => {
    const bounce = (await fixture('postmark-bounce.json')) as Record<string, unknown>;
    const typeOf = (Type: string) => postmarkReports({ ...bounce, Type }, now).reports[0]?.type ?? 'ignored';
    expect(['HardBounce', 'BadEmailAddress', 'SoftBounce', 'Transient', 'DnsError', 'Unsubscribe', 'AutoResponder', 'SpamNotification', 'ManuallyDeactivated', 'Unknown'].map(typeOf)).toEqual([
      'hard-bounce', 'hard-bounce', 'soft-bounce', 'soft-bounce', 'soft-bounce', 'unsubscribe', 'ignored', 'ignored', 'ignored', 'ignored',
    ]);
  });

  it('a spam complaint, our Message-ID without brackets in Metadata', async () => {
    const [report] = postmarkReports(await fixture('postmark-spam-complaint.json'), now).reports;
    expect(report).toMatchObject({ type: 'complaint', deliveryId: 88, email: 'linus@example.com', status: 'abuse', reportId: 'SpamComplaint/42' });
  });

  it('a manual suppression is an unsubscribe; Postmark suppressions after bounces and reactivations are not', async () => {
    const change = (await fixture('postmark-subscription-change.json')) as Record<string, unknown>;
    expect(postmarkReports(change, now).reports).toEqual([
      expect.objectContaining({ type: 'unsubscribe', email: 'margaret@example.com', deliveryId: null, reportId: 'SubscriptionChange/883953f4-6105-42a2-a16a-77a8eac79483/margaret@example.com', at: new Date('2026-03-16T10:53:34.416Z') }),
    ]);
    expect(postmarkReports({ ...change, SuppressionReason: 'HardBounce' }, now).ignored).toHaveLength(1);
    expect(postmarkReports({ ...change, SuppressSending: false }, now).ignored).toHaveLength(1);
    expect(postmarkReports({ RecordType: 'Open', Recipient: 'a@example.com' }, now).ignored).toEqual(['Postmark Open records are not reports']);
    expect(() => postmarkReports({ Type: 'HardBounce' }, now)).toThrow(/RecordType/);
  });

  it('checks Basic credentials: both parts, in any case of the scheme', () => {
    const basic = (text: string) => `Basic ${Buffer.from(text).toString('base64')}`;
    expect(postmarkAuthorized(basic('postmark:correct horse battery staple'), POSTMARK)).toBe(true);
    expect(postmarkAuthorized(basic('postmark:correct horse battery staple').replace('Basic', 'basic'), POSTMARK)).toBe(true);
    expect(postmarkAuthorized(basic('postmark:wrong'), POSTMARK)).toBe(false);
    expect(postmarkAuthorized(basic('other:correct horse battery staple'), POSTMARK)).toBe(false);
    expect(postmarkAuthorized(basic('postmarkcorrect horse battery staple'), POSTMARK)).toBe(false);
    expect(postmarkAuthorized('Bearer abc', POSTMARK)).toBe(false);
    expect(postmarkAuthorized(undefined, POSTMARK)).toBe(false);
  });
});

describe('Mailgun payloads', () => {
  const now = new Date('2026-03-16T12:00:00Z');
  const event = async (changes: Record<string, unknown> = {}) =>
    parseMailgunBody({ signature: { timestamp: '1', token: 't', signature: 's' }, 'event-data': { ...((await fixture('mailgun-failed-permanent.json')) as object), ...changes } })['event-data'];

  it('a permanent failure is a hard bounce; the Message-ID without brackets names the delivery', async () => {
    expect(mailgunReports(await event(), now).reports).toEqual([
      {
        type: 'hard-bounce',
        source: 'mailgun',
        deliveryId: 123,
        email: 'ada@example.org',
        status: '5.1.1',
        diagnostic: '5.1.1 The email account that you tried to reach does not exist.',
        reportId: 'G9Bn5sl1TC6nu79C8C0bwg',
        at: new Date(1773662280375.624),
      },
    ]);
  });

  it('temporary is soft; suppression-list refusals keep their reason; complained and unsubscribed; the rest ignored', async () => {
    const typeOf = async (changes: Record<string, unknown>) => mailgunReports(await event(changes), now).reports[0]?.type ?? 'ignored';
    expect(await typeOf({ severity: 'temporary', 'delivery-status': { code: 452, message: '4.2.2 mailbox full' } })).toBe('soft-bounce');
    expect(await typeOf({ reason: 'suppress-unsubscribe' })).toBe('unsubscribe');
    expect(await typeOf({ reason: 'suppress-complaint' })).toBe('complaint');
    expect(await typeOf({ reason: 'old' })).toBe('soft-bounce');
    expect(await typeOf({ event: 'complained' })).toBe('complaint');
    expect(await typeOf({ event: 'unsubscribed' })).toBe('unsubscribe');
    expect(await typeOf({ event: 'delivered' })).toBe('ignored');
    expect(await typeOf({ event: 'opened' })).toBe('ignored');
    const [soft] = mailgunReports(await event({ severity: 'temporary', 'delivery-status': { code: 452, message: 'Mailbox full: 4.2.2 over quota' } }), now).reports;
    expect(soft).toMatchObject({ status: '4.2.2', diagnostic: 'Mailbox full: 4.2.2 over quota' });
  });

  it('a body without the signature or event-data is an InputError naming the field', () => {
    expect(() => parseMailgunBody({ 'event-data': {} })).toThrow(/signature/);
    expect(() => parseMailgunBody([])).toThrow(InputError);
  });

  it('the verifier forgets old tokens and keeps at most maxTokens', () => {
    let clock = 1_773_662_400_000;
    const verifier = new MailgunVerifier({ signingKey: MAILGUN_KEY, now: () => new Date(clock), maxTokens: 2 });
    const signed = (token: string) => {
      const timestamp = String(Math.floor(clock / 1000));
      return { timestamp, token, signature: createHmac('sha256', MAILGUN_KEY).update(timestamp + token).digest('hex') };
    };
    const first = signed('a');
    expect(verifier.refusal(first)).toBeUndefined();
    expect(verifier.refusal(first)).toMatch(/replay/);
    expect(verifier.refusal(signed('b'))).toBeUndefined();
    expect(verifier.refusal(signed('c'))).toBeUndefined();
    // "a" was dropped to keep two tokens; its timestamp is still fresh, so it passes again.
    expect(verifier.refusal(first)).toBeUndefined();
    clock += 6 * 60_000;
    expect(verifier.refusal(first)).toMatch(/more than 5 minutes off/);
  });
});

describe('SendGrid payloads', () => {
  const now = new Date('2026-03-16T12:00:00Z');

  it('reads a batch: bounces, blocks, spam reports, unsubscribes and drops for bounced addresses', async () => {
    const events = (await fixture('sendgrid-events.json')) as unknown[];
    const { reports, ignored } = sendgridReports([...events, { event: 'bounce' }], now);
    expect(reports.map((r) => [r.type, r.email, r.deliveryId, r.status])).toEqual([
      ['hard-bounce', 'ada@example.org', 123, '5.0.0'],
      ['soft-bounce', 'grace@example.net', 124, '5.7.1'],
      ['complaint', 'linus@example.com', 125, 'abuse'],
      ['unsubscribe', 'margaret@example.com', 126, null],
      ['hard-bounce', 'alan@example.com', 127, '5.0.0'],
    ]);
    expect(reports[0]).toEqual({
      type: 'hard-bounce',
      source: 'sendgrid',
      deliveryId: 123,
      email: 'ada@example.org',
      status: '5.0.0',
      diagnostic: '500 unknown recipient',
      reportId: '6g4ZI7SA-xmRDv57GoPIPw==',
      at: new Date(1773662280_000),
    });
    expect(ignored).toEqual([
      'a SendGrid drop for Unsubscribed Address',
      'SendGrid deferred events are not reports',
      'SendGrid delivered events are not reports',
      'event 8: email: Invalid input: expected string, received undefined',
    ]);
  });

  it('takes the verification key as base64 DER or PEM, and refuses one that is not elliptic-curve', () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const der = publicKey.export({ format: 'der', type: 'spki' }).toString('base64');
    expect(sendgridPublicKey(der).asymmetricKeyType).toBe('ec');
    expect(sendgridPublicKey(publicKey.export({ format: 'pem', type: 'spki' }).toString()).asymmetricKeyType).toBe('ec');
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'pem', type: 'spki' }).toString();
    expect(() => sendgridPublicKey(rsa)).toThrow(ConfigError);
    expect(() => sendgridPublicKey('bm90IGEga2V5')).toThrow(/GAZETTE_SENDGRID_PUBLIC_KEY/);
  });
});

describe('webhook routes', () => {
  let dir: string;
  let snsKey: KeyObject;
  let certificate: string;
  let sendgrid: { privateKey: KeyObject; publicKey: string };
  // The test certificate is valid from when openssl made it: the routes' clock starts from then.
  const start = new Date(Math.floor(Date.now() / 1000) * 1000 + 60_000);
  let now: Date;
  let recorder: ReturnType<typeof recordingHandler>;
  let certificateUrls: string[];
  let confirmed: string[];
  let servers: FastifyInstance[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'gazette-sns-'));
    const keyFile = path.join(dir, 'key.pem');
    const certFile = path.join(dir, 'cert.pem');
    await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=sns.amazonaws.com']);
    const { createPrivateKey } = await import('node:crypto');
    snsKey = createPrivateKey(await readFile(keyFile, 'utf8'));
    certificate = await readFile(certFile, 'utf8');
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    sendgrid = { privateKey: pair.privateKey, publicKey: pair.publicKey.export({ format: 'der', type: 'spki' }).toString('base64') };
  });

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    await Promise.all(servers.map((server) => server.close()));
    servers = [];
    now = start;
    recorder = recordingHandler();
    certificateUrls = [];
    confirmed = [];
  });

  const fullConfig = (): WebhookConfig => ({ sesTopicArns: [TOPIC], postmarkAuth: POSTMARK, mailgunSigningKey: MAILGUN_KEY, sendgridPublicKey: sendgrid.publicKey });

  async function server(config: WebhookConfig = fullConfig()): Promise<FastifyInstance> {
    const sns: SnsClient = {
      fetchCertificate: async (url) => {
        certificateUrls.push(url);
        return certificate;
      },
      confirmSubscription: async (url) => {
        confirmed.push(url);
      },
    };
    const app = Fastify({ logger: false });
    await app.register(webhookRoutes, { reports: recorder.handler, config, now: () => now, sns });
    servers.push(app);
    return app;
  }

  function snsBody(fields: Record<string, string>, version: '1' | '2' = '2', tamper?: (m: Record<string, string>) => void): string {
    const message: Record<string, string> = { MessageId: '22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324', TopicArn: TOPIC, Timestamp: now.toISOString(), ...fields, SignatureVersion: version, SigningCertURL: CERT_URL };
    message.Signature = sign(version === '1' ? 'sha1' : 'sha256', Buffer.from(canonical(message), 'utf8'), snsKey).toString('base64');
    message.UnsubscribeURL = `https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=${TOPIC}:c9135db0`;
    tamper?.(message);
    return JSON.stringify(message);
  }

  const postSns = async (app: FastifyInstance, payload: string) =>
    app.inject({ method: 'POST', url: '/webhooks/ses', payload, headers: { 'content-type': 'text/plain; charset=UTF-8', 'x-amz-sns-message-type': 'Notification' } });

  const notification = async (name: string) => ({ Type: 'Notification', Message: JSON.stringify(await fixture(name)) });

  it('SES: a v1-signed Notification with a bounce records a hard bounce per recipient for the delivery', async () => {
    const app = await server();
    const response = await postSns(app, snsBody(await notification('ses-bounce.json'), '1'));
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ recorded: 2, duplicate: 0, ignored: 0 });
    expect(recorder.handled.map((r) => [r.type, r.deliveryId, r.email, r.source])).toEqual([
      ['hard-bounce', 123, 'ada@example.org', 'ses'],
      ['hard-bounce', 123, 'Grace@Example.net', 'ses'],
    ]);
    expect(certificateUrls).toEqual([CERT_URL]);
    // SNS resends the same notification when unsure it arrived: the handler sees it, and says so.
    const again = await postSns(app, snsBody(await notification('ses-bounce.json'), '1'));
    expect(again.json()).toEqual({ recorded: 0, duplicate: 2, ignored: 0 });
  });

  it('SES: a v2-signed Notification with a complaint (and a Subject) records the complaint', async () => {
    const app = await server();
    const response = await postSns(app, snsBody({ ...(await notification('ses-complaint.json')), Subject: 'Amazon SES Email Event Notification' }, '2'));
    expect(response.statusCode).toBe(200);
    expect(recorder.handled).toEqual([expect.objectContaining({ type: 'complaint', deliveryId: 77, status: 'abuse' })]);
  });

  it('SES: a SubscriptionConfirmation is confirmed by its SubscribeURL and records nothing', async () => {
    const app = await server();
    const body = snsBody({ Type: 'SubscriptionConfirmation', Message: `You have chosen to subscribe to the topic ${TOPIC}.`, SubscribeURL: SUBSCRIBE_URL, Token: '2336412f37fb687f5d51e6e2425dacbba' });
    const response = await postSns(app, body);
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ confirmed: true, recorded: 0 });
    expect(confirmed).toEqual([SUBSCRIBE_URL]);
    expect(recorder.handled).toEqual([]);
  });

  it('SES: SES’s plain-text set-up message is answered 200 and ignored', async () => {
    const app = await server();
    const response = await postSns(app, snsBody({ Type: 'Notification', Message: 'Successfully validated SNS topic for Amazon SES event publishing.' }));
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ recorded: 0, duplicate: 0, ignored: 1 });
  });

  it('SES: refuses a tampered body, a wrong topic, a certificate elsewhere, an old Timestamp, and records nothing', async () => {
    const app = await server();
    const bounce = await notification('ses-bounce.json');
    const refused = async (payload: string, reason: RegExp) => {
      const response = await postSns(app, payload);
      expect(response.statusCode).toBe(403);
      expect(response.json().message).toMatch(reason);
    };
    await refused(snsBody(bounce, '2', (m) => (m.Message = m.Message!.replace('ada@example.org', 'someone-else@example.org'))), /signature does not match/);
    await refused(snsBody(bounce, '1', (m) => (m.Timestamp = new Date(now.getTime() - 1000).toISOString())), /signature does not match/);
    await refused(snsBody({ ...bounce, TopicArn: 'arn:aws:sns:us-east-1:999999999999:not-ours' }), /not one of GAZETTE_SES_TOPIC_ARNS/);
    const fetchedBefore = certificateUrls.length;
    await refused(snsBody(bounce, '2', (m) => (m.SigningCertURL = 'https://attacker.example/SimpleNotificationService-x.pem')), /SigningCertURL/);
    await refused(snsBody(bounce, '2', (m) => (m.SigningCertURL = 'https://sns.us-east-1.amazonaws.com/cert.txt')), /SigningCertURL/);
    await refused(snsBody(bounce, '2', (m) => (m.SignatureVersion = '3')), /SignatureVersion/);
    expect(certificateUrls).toHaveLength(fetchedBefore);
    now = new Date(start.getTime() - 2 * 60 * 60_000);
    const old = snsBody(bounce);
    now = start;
    await refused(old, /more than an hour old/);
    expect(recorder.handled).toEqual([]);
  });

  it('SES: malformed JSON and a body that is not an SNS message answer 400 naming the problem', async () => {
    const app = await server();
    const broken = await postSns(app, '{"Type": "Notification",');
    expect(broken.statusCode).toBe(400);
    expect(broken.json()).toMatchObject({ error: 'bad_request', message: expect.stringMatching(/not valid JSON/) });
    const notSns = await postSns(app, JSON.stringify({ Type: 'Notification', MessageId: 'm' }));
    expect(notSns.statusCode).toBe(400);
    expect(notSns.json().message).toMatch(/SNS message: TopicArn/);
  });

  it('SES: answers 503 when the handler rejects, so SNS retries', async () => {
    const app = await server();
    recorder.fail(true);
    const response = await postSns(app, snsBody(await notification('ses-bounce.json')));
    expect(response.statusCode).toBe(503);
    expect(response.json().message).toMatch(/try again/);
  });

  it('Postmark: the right Basic credentials record the bounce; wrong or none answer 401', async () => {
    const app = await server();
    const payload = await readFile(new URL('postmark-bounce.json', FIXTURES), 'utf8');
    const post = (authorization?: string) =>
      app.inject({ method: 'POST', url: '/webhooks/postmark', payload, headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) } });
    const wrong = await post(`Basic ${Buffer.from('postmark:guess').toString('base64')}`);
    expect(wrong.statusCode).toBe(401);
    expect(wrong.headers['www-authenticate']).toMatch(/^Basic/);
    expect((await post()).statusCode).toBe(401);
    expect(recorder.handled).toEqual([]);
    const right = await post(`Basic ${Buffer.from(`${POSTMARK.user}:${POSTMARK.password}`).toString('base64')}`);
    expect(right.statusCode).toBe(200);
    expect(right.json()).toEqual({ recorded: 1, duplicate: 0, ignored: 0 });
    expect(recorder.handled).toEqual([expect.objectContaining({ type: 'hard-bounce', deliveryId: 123, source: 'postmark' })]);
  });

  describe('Mailgun', () => {
    const signed = async (options: { key?: string; timestamp?: number; token?: string } = {}) => {
      const timestamp = String(options.timestamp ?? Math.floor(now.getTime() / 1000));
      const token = options.token ?? 'a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0';
      const signature = createHmac('sha256', options.key ?? MAILGUN_KEY).update(timestamp + token).digest('hex');
      return { signature: { timestamp, token, signature }, 'event-data': await fixture('mailgun-failed-permanent.json') };
    };
    const post = (app: FastifyInstance, payload: object) => app.inject({ method: 'POST', url: '/webhooks/mailgun', payload });

    it('a valid signature records the failure as a hard bounce', async () => {
      const response = await post(await server(), await signed());
      expect(response.statusCode).toBe(200);
      expect(recorder.handled).toEqual([expect.objectContaining({ type: 'hard-bounce', deliveryId: 123, reportId: 'G9Bn5sl1TC6nu79C8C0bwg', source: 'mailgun' })]);
    });

    it('refuses a bad signature, a stale timestamp and a replayed token', async () => {
      const app = await server();
      const bad = await post(app, await signed({ key: 'another-key' }));
      expect(bad.statusCode).toBe(403);
      expect(bad.json().message).toMatch(/signature does not match/);
      const stale = await post(app, await signed({ timestamp: Math.floor(now.getTime() / 1000) - 301, token: 'stale-token' }));
      expect(stale.statusCode).toBe(403);
      expect(stale.json().message).toMatch(/5 minutes/);
      expect((await post(app, await signed({ token: 'once' }))).statusCode).toBe(200);
      const replay = await post(app, await signed({ token: 'once' }));
      expect(replay.statusCode).toBe(403);
      expect(replay.json().message).toMatch(/replay/);
      expect(recorder.handled).toHaveLength(1);
    });

    it('answers 503 when the handler rejects, and takes the same request again when Mailgun retries', async () => {
      const app = await server();
      const body = await signed();
      recorder.fail(true);
      expect((await post(app, body)).statusCode).toBe(503);
      recorder.fail(false);
      expect((await post(app, body)).statusCode).toBe(200);
      expect(recorder.handled).toHaveLength(1);
    });
  });

  describe('SendGrid', () => {
    const post = (app: FastifyInstance, payload: string, headers: Record<string, string>) =>
      app.inject({ method: 'POST', url: '/webhooks/sendgrid', payload, headers: { 'content-type': 'application/json', ...headers } });
    const signatureOf = (timestamp: string, body: string) => sign('sha256', Buffer.from(timestamp + body), sendgrid.privateKey).toString('base64');

    it('a valid signature over timestamp + body records the batch', async () => {
      const app = await server();
      const body = await readFile(new URL('sendgrid-events.json', FIXTURES), 'utf8');
      const timestamp = String(Math.floor(now.getTime() / 1000));
      const response = await post(app, body, { 'X-Twilio-Email-Event-Webhook-Signature': signatureOf(timestamp, body), 'X-Twilio-Email-Event-Webhook-Timestamp': timestamp });
      expect(response.statusCode).toBe(200);
      expect(response.json()).toEqual({ recorded: 5, duplicate: 0, ignored: 3 });
      expect(recorder.handled.map((r) => r.type)).toEqual(['hard-bounce', 'soft-bounce', 'complaint', 'unsubscribe', 'hard-bounce']);
    });

    it('refuses a tampered body, another timestamp, or no signature', async () => {
      const app = await server();
      const body = JSON.stringify([{ email: 'ada@example.org', event: 'bounce', type: 'bounce', sg_event_id: 'e1', timestamp: 1773662280 }]);
      const timestamp = '1773662280';
      const signature = signatureOf(timestamp, body);
      const tampered = await post(app, body.replace('ada@', 'eve@'), { 'X-Twilio-Email-Event-Webhook-Signature': signature, 'X-Twilio-Email-Event-Webhook-Timestamp': timestamp });
      expect(tampered.statusCode).toBe(403);
      expect((await post(app, body, { 'X-Twilio-Email-Event-Webhook-Signature': signature, 'X-Twilio-Email-Event-Webhook-Timestamp': '1773662281' })).statusCode).toBe(403);
      expect((await post(app, body, { 'X-Twilio-Email-Event-Webhook-Signature': 'bm90IGEgc2lnbmF0dXJl', 'X-Twilio-Email-Event-Webhook-Timestamp': timestamp })).statusCode).toBe(403);
      const unsigned = await post(app, body, {});
      expect(unsigned.statusCode).toBe(403);
      expect(unsigned.json().message).toMatch(/X-Twilio-Email-Event-Webhook-Signature/);
      expect(recorder.handled).toEqual([]);
      // Signed, but not the array SendGrid sends.
      const object = JSON.stringify({ event: 'bounce' });
      const notArray = await post(app, object, { 'X-Twilio-Email-Event-Webhook-Signature': signatureOf(timestamp, object), 'X-Twilio-Email-Event-Webhook-Timestamp': timestamp });
      expect(notArray.statusCode).toBe(400);
      expect(notArray.json().message).toMatch(/JSON array/);
    });
  });

  it('an unconfigured provider answers 404 naming the variable to set', async () => {
    const app = await server({ sesTopicArns: [], postmarkAuth: undefined, mailgunSigningKey: undefined, sendgridPublicKey: undefined });
    const expected: Record<string, string> = {
      ses: 'GAZETTE_SES_TOPIC_ARNS',
      postmark: 'GAZETTE_POSTMARK_WEBHOOK_AUTH',
      mailgun: 'GAZETTE_MAILGUN_SIGNING_KEY',
      sendgrid: 'GAZETTE_SENDGRID_PUBLIC_KEY',
    };
    for (const [provider, variable] of Object.entries(expected)) {
      const response = await app.inject({ method: 'POST', url: `/webhooks/${provider}`, payload: '{}', headers: { 'content-type': 'application/json' } });
      expect(response.statusCode).toBe(404);
      expect(response.json()).toEqual({ error: 'not_found', message: `this webhook is off: set ${variable}` });
    }
  });

  it('refuses a body over 1 MiB with 413, and a wrong SendGrid key at registration', async () => {
    const app = await server();
    const response = await app.inject({ method: 'POST', url: '/webhooks/postmark', payload: 'x'.repeat(1024 * 1024 + 1), headers: { 'content-type': 'application/json' } });
    expect(response.statusCode).toBe(413);
    await expect(server({ ...fullConfig(), sendgridPublicKey: 'bm90IGEga2V5' })).rejects.toThrow(ConfigError);
  });

  it('keeps its raw-body parsers to itself: a sibling route still gets parsed JSON', async () => {
    const app = Fastify({ logger: false });
    app.post('/other', async (request) => ({ type: typeof request.body }));
    await app.register(webhookRoutes, { reports: recorder.handler, config: fullConfig(), now: () => now });
    servers.push(app);
    const response = await app.inject({ method: 'POST', url: '/other', payload: { a: 1 } });
    expect(response.json()).toEqual({ type: 'object' });
  });
});
