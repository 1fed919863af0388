import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { afterEach, describe, expect, it } from 'vitest';
import { dataSection } from '../../src/delivery/smtp-pipeline.ts';
import { createSmtpTransport, type SmtpOptions, type SmtpTransport } from '../../src/delivery/transport-smtp.ts';
import type { OutgoingMessage } from '../../src/delivery/transport.ts';
import { DeliveryFault } from '../../src/errors.ts';
import { startRawSmtpServer, type RawReply, type RawSession, type RawSmtpOptions, type RawSmtpServer } from '../fixtures/smtp/raw-smtp-server.ts';

// The SMTP transport's fast data path (smtp-pipeline.ts) against real servers on 127.0.0.1:
// smtp-server for the sessions nodemailer sets up (plain, STARTTLS, implicit TLS, AUTH), and a
// bare scripted server for the replies smtp-server cannot give.

const FIXTURES = new URL('../fixtures/smtp/', import.meta.url);
const KEY = readFileSync(new URL('key.pem', FIXTURES), 'utf8');
const CERT = readFileSync(new URL('cert.pem', FIXTURES), 'utf8');

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function transport(url: string, options: Partial<SmtpOptions> = {}): SmtpTransport {
  const t = createSmtpTransport(url, { maxConnections: 1, timeoutMs: 5_000, transactionTimeoutMs: 5_000, ...options });
  cleanups.push(() => t.close());
  return t;
}

async function rawServer(options: RawSmtpOptions = {}): Promise<RawSmtpServer> {
  const server = await startRawSmtpServer(options);
  cleanups.push(() => server.close());
  return server;
}

/** A built message as the worker hands it over: CRLF lines, quoted-printable body, with lines a naive sender would get wrong. */
function message(n: number, to = `reader${n}@example.com`): OutgoingMessage {
  const raw = [
    'From: "The Gazette" <news@gazette.example.org>',
    `To: <${to}>`,
    `Subject: =?UTF-8?Q?Edition_${n}_=E2=80=94_caf=C3=A9?=`,
    `Message-ID: <d${n}@gazette.example.org>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: quoted-printable',
    '',
    '.a line that starts with a dot',
    '.',
    '..',
    '...three',
    '',
    'caf=C3=A9 na=C3=AFve =E2=80=94 '.repeat(2) + 'x'.repeat(40) + '=',
    'soft-broken line continues here',
    `message ${n}`,
    '.',
    '',
  ].join('\r\n');
  return { key: `k${n}`, envelopeFrom: 'bounces@gazette.example.org', to, raw };
}

interface Received {
  from: string;
  to: string[];
  raw: Buffer;
  secure: boolean;
  authMethod: string | undefined;
}

/** smtp-server in process; records each accepted message with its session's facts. */
async function smtpServer(options: SMTPServerOptions = {}): Promise<{ url: (userinfo?: string) => string; received: Received[]; connections: () => number; authMethods: string[] }> {
  const received: Received[] = [];
  const authMethods: string[] = [];
  let connections = 0;
  const server = new SMTPServer({
    logger: false,
    authOptional: true,
    allowInsecureAuth: true,
    key: KEY,
    cert: CERT,
    ...options,
    onConnect(_session, callback) {
      connections++;
      callback();
    },
    onAuth(auth, _session, callback) {
      authMethods.push(auth.method);
      if (auth.username === 'gazette' && auth.password === 's3cret') callback(null, { user: auth.username });
      else callback(Object.assign(new Error('Authentication credentials invalid'), { responseCode: 535 }));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        received.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks),
          secure: session.secure,
          authMethod: authMethods.at(-1),
        });
        callback();
      });
    },
  });
  server.on('error', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.server.address() as AddressInfo).port;
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const scheme = options.secure ? 'smtps' : 'smtp';
  return { url: (userinfo) => `${scheme}://${userinfo ? `${userinfo}@` : ''}127.0.0.1:${port}`, received, connections: () => connections, authMethods };
}

describe('the fast path against smtp-server', () => {
  const sessions: [string, SMTPServerOptions, string, Partial<SmtpOptions>][] = [
    ['plain', { disabledCommands: ['STARTTLS'] }, '', {}],
    ['STARTTLS (certificate verified against the fixture CA)', {}, '', { tls: { ca: CERT } }],
    ['implicit TLS (smtps)', { secure: true }, '', { tls: { ca: CERT } }],
    ['plain with AUTH PLAIN', { disabledCommands: ['STARTTLS'], authMethods: ['PLAIN'], authOptional: false }, 'gazette:s3cret', {}],
    ['plain with AUTH LOGIN', { disabledCommands: ['STARTTLS'], authMethods: ['LOGIN'], authOptional: false }, 'gazette:s3cret', {}],
    ['STARTTLS with AUTH LOGIN', { authMethods: ['LOGIN'], authOptional: false, allowInsecureAuth: false }, 'gazette:s3cret', { tls: { ca: CERT } }],
  ];
  it.each(sessions)('%s: every message arrives byte for byte, on one pipelined session', async (name, serverOptions, userinfo, options) => {
    const server = await smtpServer(serverOptions);
    const t = transport(server.url(userinfo), options);
    const messages = [1, 2, 3].map((n) => message(n));
    for (const m of messages) await t.send(m);

    expect(server.received.map((r) => r.raw.toString('utf8'))).toEqual(messages.map((m) => m.raw));
    expect(server.received.map((r) => [r.from, r.to])).toEqual(messages.map((m) => [m.envelopeFrom, [m.to]]));
    const tls = name.includes('TLS');
    expect(server.received.every((r) => r.secure === tls)).toBe(true);
    if (userinfo) expect(server.received.every((r) => r.authMethod === serverOptions.authMethods![0])).toBe(true);
    expect(server.connections()).toBe(1);
    expect(t.stats()).toMatchObject({ sessions: 1, pipelinedSessions: 1, pipelinedMessages: 3, nodemailerMessages: 0 });
  });

  it('wrong credentials: refused at AUTH as before, nothing sent', async () => {
    const server = await smtpServer({ disabledCommands: ['STARTTLS'], authMethods: ['PLAIN'], authOptional: false });
    const t = transport(server.url('gazette:wrong'));
    const fault = await t.send(message(1)).catch((e: unknown) => e);
    expect(fault).toBeInstanceOf(DeliveryFault);
    expect((fault as DeliveryFault).kind).toBe('refused');
    expect((fault as DeliveryFault).message).toMatch(/^SMTP authentication failed \(AUTH PLAIN\): 535/);
    expect(server.received).toHaveLength(0);
  });

  it('dots: a message starting with a dot, lines that are ".", "..", and a last line "." arrive unchanged', async () => {
    const server = await smtpServer({ disabledCommands: ['STARTTLS'] });
    const t = transport(server.url());
    const raws = [
      '.starts with a dot\r\n\r\nbody\r\n',
      'Subject: dots\r\n\r\n.\r\n..\r\n.\r\n',
      'Subject: no final line break\r\n\r\n.\r\nlast line .',
      'Subject: a dot line at the very end\r\n\r\nabove\r\n.',
      '.',
    ];
    for (const [i, raw] of raws.entries()) await t.send({ key: `d${i}`, envelopeFrom: 'news@gazette.example.org', to: 'dots@example.com', raw });
    // smtp-server keeps the CRLF before the final dot; a message without its last line break gains one, as with nodemailer.
    expect(server.received.map((r) => r.raw.toString('utf8'))).toEqual(raws.map((raw) => (raw.endsWith('\r\n') ? raw : `${raw}\r\n`)));
    expect(t.stats().pipelinedMessages).toBe(raws.length);
  });

  it('50 messages on one session, in order and intact', async () => {
    const server = await smtpServer({ disabledCommands: ['STARTTLS'] });
    const t = transport(server.url());
    const messages = Array.from({ length: 50 }, (_, i) => message(i + 1));
    await Promise.all(messages.map((m) => t.send(m)));
    expect(server.connections()).toBe(1);
    expect(server.received.map((r) => r.raw.toString('utf8'))).toEqual(messages.map((m) => m.raw));
    expect(t.stats()).toMatchObject({ sessions: 1, pipelinedSessions: 1, pipelinedMessages: 50 });
  });

  it('a server without PIPELINING: nodemailer sends, and everything still arrives', async () => {
    const server = await smtpServer({ disabledCommands: ['STARTTLS'], hidePIPELINING: true });
    const t = transport(server.url(), { maxConnections: 2 });
    const messages = Array.from({ length: 6 }, (_, i) => message(i + 1));
    await Promise.all(messages.map((m) => t.send(m)));
    expect(server.received.map((r) => r.raw.toString('utf8')).sort()).toEqual(messages.map((m) => m.raw).sort());
    expect(t.stats()).toMatchObject({ pipelinedSessions: 0, pipelinedMessages: 0, nodemailerMessages: 6 });
  });

  it('the same server through nodemailer’s data path (pipelinedDataPath: false) gets the same bytes', async () => {
    const server = await smtpServer({ disabledCommands: ['STARTTLS'] });
    const fast = transport(server.url());
    const slow = transport(server.url(), { pipelinedDataPath: false });
    await fast.send(message(7));
    await slow.send(message(7));
    expect(server.received[0]!.raw.equals(server.received[1]!.raw)).toBe(true);
    expect(slow.stats()).toMatchObject({ pipelinedSessions: 0, nodemailerMessages: 1 });
  });
});

describe('the fast path on the wire (a scripted server)', () => {
  it('writes the envelope as one pipelined packet, then the message; a server without PIPELINING gets one command at a time', async () => {
    const pipelining = await rawServer();
    const t = transport(pipelining.url);
    await t.send(message(1));
    await t.send(message(2));
    const [session] = pipelining.sessions;
    const envelopes = session!.packets.filter((p) => p[0]!.startsWith('MAIL'));
    expect(envelopes).toEqual([1, 2].map((n) => ['MAIL FROM:<bounces@gazette.example.org>', `RCPT TO:<reader${n}@example.com>`, 'DATA']));
    expect(session!.transactions[0]!.toString('utf8')).toBe(
      `MAIL FROM:<bounces@gazette.example.org>\r\nRCPT TO:<reader1@example.com>\r\nDATA\r\n${dataSection(message(1).raw)}`,
    );

    const plain = await rawServer({ extensions: ['8BITMIME'] });
    const fallback = transport(plain.url);
    await fallback.send(message(3));
    expect(plain.sessions[0]!.packets.filter((p) => p.length > 1)).toEqual([]);
    expect(plain.messages().map((m) => m.toString('utf8'))).toEqual([message(3).raw]);
    expect(fallback.stats()).toMatchObject({ pipelinedSessions: 0, nodemailerMessages: 1 });
  });

  it('replies split byte by byte across packets, multi-line, and several in one packet', async () => {
    const server = await rawServer({
      write: 'bytes',
      reply: (verb) =>
        verb === 'MAIL' ? '250-2.1.0 sender ok\r\n250-and more to say\r\n250 2.1.0 Ok' : verb === '.' ? '250-2.0.0 queued\r\n250 2.0.0 as RAW1' : undefined,
    });
    const t = transport(server.url);
    await t.send(message(1));
    await t.send(message(2));
    expect(server.messages().map((m) => m.toString('utf8'))).toEqual([message(1).raw, message(2).raw]);
    expect(t.stats()).toMatchObject({ pipelinedSessions: 1, pipelinedMessages: 2 });

    // The other way round: one packet with all three envelope replies (the default 'batch' writing).
    const batched = await rawServer();
    const b = transport(batched.url);
    await b.send(message(3));
    expect(batched.messages()).toHaveLength(1);
  });

  it('SMTPUTF8 on MAIL FROM exactly when an address is not ASCII and the server offers it', async () => {
    const server = await rawServer();
    const t = transport(server.url);
    await t.send(message(1, 'zoë@example.com'));
    await t.send(message(2));
    const without = await rawServer({ extensions: ['PIPELINING'] });
    const w = transport(without.url);
    await w.send(message(3, 'zoë@example.com'));
    const mails = (s: RawServerLike) => s.sessions[0]!.commands.filter((c) => c.startsWith('MAIL'));
    expect(mails(server)).toEqual(['MAIL FROM:<bounces@gazette.example.org> SMTPUTF8', 'MAIL FROM:<bounces@gazette.example.org>']);
    expect(mails(without)).toEqual(['MAIL FROM:<bounces@gazette.example.org>']);
  });

  it('RCPT refused while DATA still gets 354 (RFC 2920): a lone ".", RSET, the RCPT reply reported, the session reused', async () => {
    const server = await rawServer({ reply: (verb, line) => (verb === 'RCPT' && line.includes('gone@') ? '550 5.1.1 <gone@example.com>: Recipient address rejected: User unknown' : undefined) });
    const t = transport(server.url);
    const fault = (await t.send(message(1, 'gone@example.com')).catch((e: unknown) => e)) as DeliveryFault;
    expect(fault).toBeInstanceOf(DeliveryFault);
    expect(fault.kind).toBe('recipient-permanent');
    expect(fault.reply).toBe('550 5.1.1 <gone@example.com>: Recipient address rejected: User unknown');
    expect(fault.message).toBe('recipient refused (RCPT TO): 550 5.1.1 <gone@example.com>: Recipient address rejected: User unknown');
    await t.send(message(2));

    expect(server.sessions).toHaveLength(1);
    const [session] = server.sessions;
    // The empty message ended by the lone dot, then RSET before the next transaction.
    expect(session!.messages.map((m) => m.toString('utf8'))).toEqual(['', message(2).raw]);
    expect(session!.commands.filter((c) => !c.startsWith('EHLO'))).toEqual([
      'MAIL FROM:<bounces@gazette.example.org>',
      'RCPT TO:<gone@example.com>',
      'DATA',
      'RSET',
      'MAIL FROM:<bounces@gazette.example.org>',
      'RCPT TO:<reader2@example.com>',
      'DATA',
    ]);
    expect(t.stats()).toMatchObject({ resets: 1, sessions: 1, pipelinedMessages: 1 });
  });

  it('421 mid-session: that message fails as unreachable, the session is dropped, the next one opens a new session', async () => {
    const server = await rawServer({ reply: (verb, _line, session) => (verb === 'MAIL' && session.id === 1 && session.mailCount === 2 ? '421 4.7.0 raw.test Error: too many errors' : undefined) });
    const t = transport(server.url);
    await t.send(message(1));
    const fault = (await t.send(message(2)).catch((e: unknown) => e)) as DeliveryFault;
    expect(fault.kind).toBe('unreachable');
    expect(fault.message).toBe('no SMTP session (MAIL FROM): 421 4.7.0 raw.test Error: too many errors');
    await t.send(message(3));
    expect(server.sessions).toHaveLength(2);
    expect(server.sessions[1]!.messages.map((m) => m.toString('utf8'))).toEqual([message(3).raw]);
  });

  it('a 421 on an idle session (the server’s idle timeout) is noticed: the next message opens a new session', async () => {
    const server = await rawServer();
    const t = transport(server.url);
    await t.send(message(1));
    const [first] = server.sessions;
    first!.socket.end('421 4.4.2 raw.test Error: timeout exceeded\r\n');
    await until(() => first!.closed);
    await t.send(message(2));
    expect(server.sessions).toHaveLength(2);
    expect(server.sessions[1]!.messages).toHaveLength(1);
  });

  it('a connection dropped while the message is on the wire: unreachable; the next message reconnects', async () => {
    const server = await rawServer({ reply: (verb, _line, session) => (verb === '.' && session.id === 1 ? 'drop' : undefined) });
    const t = transport(server.url);
    const fault = (await t.send(message(1)).catch((e: unknown) => e)) as DeliveryFault;
    expect(fault.kind).toBe('unreachable');
    expect(fault.message).toMatch(/^no SMTP session \(connection\): (ECONNECTION: )?Connection closed unexpectedly|ECONNRESET/);
    await t.send(message(1));
    expect(server.sessions[1]!.messages).toHaveLength(1);
  });

  it('a server that never gives the final reply: cut at transactionTimeoutMs, and the abort signal cuts at once', async () => {
    const server = await rawServer({ reply: (verb, _line, session) => (verb === '.' && session.id <= 2 ? 'silent' : undefined) });
    const t = transport(server.url, { transactionTimeoutMs: 400 });
    const started = Date.now();
    const timedOut = (await t.send(message(1)).catch((e: unknown) => e)) as DeliveryFault;
    expect(timedOut.kind).toBe('unreachable');
    expect(timedOut.message).toMatch(/took more than/);
    expect(Date.now() - started).toBeLessThan(2_000);

    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const aborted = (await t.send(message(2), controller.signal).catch((e: unknown) => e)) as DeliveryFault;
    expect(aborted.message).toMatch(/paused while it was in flight/);

    await t.send(message(3));
    expect(server.sessions).toHaveLength(3);
    expect(server.sessions[2]!.messages).toHaveLength(1);
  });

  it('a reply nobody asked for (a server out of step): the message it followed stands, the session is not reused', async () => {
    // nodemailer here takes the stray reply for the next message's MAIL FROM reply and fails that
    // message with a misplaced 354; the fast path sees the reply left over and drops the session.
    const server = await rawServer({ reply: (verb, _line, session) => (verb === '.' && session.id === 1 ? '250 2.0.0 Ok\r\n250 2.0.0 Ok again' : undefined) });
    const t = transport(server.url);
    await t.send(message(1));
    await t.send(message(2));
    expect(server.sessions.map((s) => s.messages.map((m) => m.toString('utf8')))).toEqual([[message(1).raw], [message(2).raw]]);
  });

  it('a signal aborted before the send starts: refused at once, nothing left unhandled, and the pool goes on', async () => {
    const server = await rawServer();
    const t = transport(server.url);
    await t.send(message(1));
    const fault = (await t.send(message(2), AbortSignal.abort()).catch((e: unknown) => e)) as DeliveryFault;
    expect(fault.message).toMatch(/paused while it was in flight/);
    // The cut session is dropped; the transaction that would have run on it fails quietly.
    await new Promise((resolve) => setTimeout(resolve, 50));
    await t.send(message(3));
    expect(server.messages().map((m) => m.toString('utf8'))).toEqual([message(1).raw, message(3).raw]);
  });

  it('close(): idle sessions get QUIT; a send after close is refused', async () => {
    const server = await rawServer();
    const t = transport(server.url);
    await t.send(message(1));
    await t.close();
    await until(() => server.sessions[0]!.closed);
    expect(server.sessions[0]!.commands.at(-1)).toBe('QUIT');
    await expect(t.send(message(2))).rejects.toThrow(/closed/);
  });

  it('an envelope nodemailer would refuse is refused alike, before a byte is sent, and the session stays usable', async () => {
    const server = await rawServer();
    const t = transport(server.url);
    await t.send(message(1));
    const bad = (await t.send({ ...message(2), to: 'bob@example.org>\r\nRCPT TO:<mallory@example.org' }).catch((e: unknown) => e)) as DeliveryFault;
    expect(bad.kind).toBe('recipient-permanent');
    const sender = (await t.send({ ...message(3), envelopeFrom: 'News <news@example.org>' }).catch((e: unknown) => e)) as DeliveryFault;
    expect(sender.kind).toBe('refused');
    await t.send(message(4));
    expect(server.sessions).toHaveLength(1);
    expect(server.sessions[0]!.commands.filter((c) => c.startsWith('RCPT'))).toEqual(['RCPT TO:<reader1@example.com>', 'RCPT TO:<reader4@example.com>']);
  });
});

type RawServerLike = { sessions: RawSession[] };

/** A scripted failure, and what the session should be after it on the fast path. */
interface Scenario {
  name: string;
  reply: (verb: string, line: string, session: RawSession) => RawReply | undefined;
  /** 'reused': reset (RSET) and used for the next message; 'dropped': a new session for it. */
  after: 'reused' | 'dropped';
}

// Replies a real server gives on a refused transaction: what it says to the commands pipelined after the refused one.
const NEED_MAIL = '503 5.5.1 Error: need MAIL command';
const NEED_RCPT = '554 5.5.1 Error: no valid recipients';
const first = (session: RawSession) => session.id === 1 && session.mailCount === 1;
const scenarios: Scenario[] = [
  { name: '550 5.7.1 to MAIL FROM', reply: (v, _l, s) => (first(s) ? ({ MAIL: '550 5.7.1 <bounces@gazette.example.org>: Sender address rejected: not owned by user', RCPT: NEED_MAIL, DATA: NEED_MAIL } as Record<string, string>)[v] : undefined), after: 'reused' },
  { name: '451 4.3.0 to MAIL FROM', reply: (v, _l, s) => (first(s) ? ({ MAIL: '451 4.3.0 <bounces@gazette.example.org>: Temporary lookup failure', RCPT: NEED_MAIL, DATA: NEED_MAIL } as Record<string, string>)[v] : undefined), after: 'reused' },
  { name: '421 to MAIL FROM', reply: (v, _l, s) => (first(s) && v === 'MAIL' ? '421 4.7.0 raw.test Error: too many connections' : undefined), after: 'dropped' },
  { name: '550 to MAIL FROM, yet 354 to DATA', reply: (v, _l, s) => (first(s) ? ({ MAIL: '550 5.7.1 Sender rejected', RCPT: NEED_MAIL } as Record<string, string>)[v] : undefined), after: 'dropped' },
  { name: '550 5.1.1 to RCPT TO, 554 to DATA', reply: (v, _l, s) => (first(s) ? ({ RCPT: '550 5.1.1 <reader1@example.com>: Recipient address rejected: User unknown', DATA: NEED_RCPT } as Record<string, string>)[v] : undefined), after: 'reused' },
  { name: '550 5.1.1 to RCPT TO, 354 to DATA', reply: (v, _l, s) => (first(s) && v === 'RCPT' ? '550 5.1.1 <reader1@example.com>: User unknown' : undefined), after: 'reused' },
  {
    name: 'a multi-line 550 to RCPT TO (Gmail)',
    reply: (v, _l, s) =>
      first(s)
        ? ({ RCPT: '550-5.1.1 The email account that you tried to reach does not exist. Please try\r\n550-5.1.1 double-checking the recipient\'s email address for typos or\r\n550 5.1.1 unnecessary spaces. - gsmtp', DATA: NEED_RCPT } as Record<string, string>)[v]
        : undefined,
    after: 'reused',
  },
  { name: '450 4.2.0 greylisted at RCPT TO', reply: (v, _l, s) => (first(s) ? ({ RCPT: '450 4.2.0 <reader1@example.com>: Recipient address rejected: Greylisted', DATA: NEED_RCPT } as Record<string, string>)[v] : undefined), after: 'reused' },
  { name: '554 5.7.1 relay access denied at RCPT TO', reply: (v, _l, s) => (first(s) ? ({ RCPT: '554 5.7.1 <reader1@example.com>: Relay access denied', DATA: NEED_RCPT } as Record<string, string>)[v] : undefined), after: 'reused' },
  { name: '421 to RCPT TO', reply: (v, _l, s) => (first(s) && v === 'RCPT' ? '421 4.7.0 raw.test Error: too many errors' : undefined), after: 'dropped' },
  { name: '554 to DATA', reply: (v, _l, s) => (first(s) && v === 'DATA' ? '554 5.7.1 <DATA>: Data command rejected: Improper use of SMTP command pipelining' : undefined), after: 'reused' },
  { name: '421 to DATA', reply: (v, _l, s) => (first(s) && v === 'DATA' ? '421 4.3.2 Service not available' : undefined), after: 'dropped' },
  { name: '554 5.7.1 after the message (spam)', reply: (v, _l, s) => (first(s) && v === '.' ? '554 5.7.1 Message rejected as spam' : undefined), after: 'reused' },
  { name: '451 4.3.0 after the message', reply: (v, _l, s) => (first(s) && v === '.' ? '451 4.3.0 Error: queue file write error' : undefined), after: 'reused' },
  {
    name: 'a multi-line 550 5.7.26 after the message',
    reply: (v, _l, s) => (first(s) && v === '.' ? '550-5.7.26 This mail has been blocked because the sender is unauthenticated.\r\n550 5.7.26 Gmail requires all senders to authenticate.' : undefined),
    after: 'reused',
  },
  { name: '421 after the message', reply: (v, _l, s) => (first(s) && v === '.' ? '421 4.4.2 raw.test Error: timeout exceeded' : undefined), after: 'dropped' },
  { name: 'the connection dropped at RCPT TO', reply: (v, _l, s) => (first(s) && v === 'RCPT' ? 'drop' : undefined), after: 'dropped' },
];

describe('every failure becomes the same DeliveryFault as through nodemailer', () => {
  it.each(scenarios.map((s) => [s.name, s] as const))('%s', async (_name, scenario) => {
    const outcome = async (pipelinedDataPath: boolean) => {
      const server = await rawServer({ reply: scenario.reply });
      const t = transport(server.url, { pipelinedDataPath });
      const result = await t.send(message(1)).then(
        () => undefined,
        (error: unknown) => error,
      );
      // And the next message goes through, on the same session or a new one.
      await t.send(message(2));
      return { result, server, stats: t.stats() };
    };
    const fast = await outcome(true);
    const slow = await outcome(false);
    expect(fast.stats.pipelinedSessions).toBeGreaterThan(0);
    expect(slow.stats.pipelinedSessions).toBe(0);

    const describeFault = (fault: unknown) => {
      if (fault === undefined) return undefined;
      expect(fault).toBeInstanceOf(DeliveryFault);
      const f = fault as DeliveryFault;
      const cause = f.cause as { code?: string; command?: string; responseCode?: number; response?: string; message?: string };
      return { kind: f.kind, message: f.message, reply: f.reply, code: cause.code, command: cause.command, responseCode: cause.responseCode, response: cause.response, causeMessage: cause.message };
    };
    expect(describeFault(fast.result)).toEqual(describeFault(slow.result));
    expect(fast.result).toBeInstanceOf(DeliveryFault);
    expect(fast.server.sessions).toHaveLength(scenario.after === 'reused' ? 1 : 2);
    const last = fast.server.sessions.at(-1)!;
    expect(last.messages.at(-1)!.toString('utf8')).toBe(message(2).raw);
    if (scenario.after === 'reused') expect(last.commands).toContain('RSET');
  });
});

async function until(check: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`waited ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
