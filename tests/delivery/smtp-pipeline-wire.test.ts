import fc from 'fast-check';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { encode as qpEncode, wrap as qpWrap } from 'nodemailer/lib/qp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSmtpTransport, type SmtpTransport } from '../../src/delivery/transport-smtp.ts';
import { startRawSmtpServer, type RawSmtpServer } from '../fixtures/smtp/raw-smtp-server.ts';

// Property: for any message and envelope, the fast data path writes on the wire exactly the
// bytes nodemailer's SMTPConnection.send writes: MAIL FROM (with SMTPUTF8 when nodemailer adds
// it), RCPT TO, DATA, the dot-stuffed message and its terminator. Both are recorded by the same
// bare server, which advertises PIPELINING (so nodemailer pipelines too), with and without SMTPUTF8.

const noBreaks = (s: string) => s.replace(/[\r\n]/g, ' ');
const printable = fc.string({ unit: 'grapheme-ascii', maxLength: 80 }).map(noBreaks);

/** One line of a message body or header block. */
const line = fc.oneof(
  { arbitrary: printable, weight: 6 },
  { arbitrary: fc.constantFrom('', '.', '..', '...', '. ', '.\t'), weight: 4 },
  { arbitrary: printable.map((s) => `.${s}`), weight: 4 },
  { arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 990, maxLength: 2_500 }).map(noBreaks), weight: 1 },
  // Unicode already quoted-printable encoded, as mime-message.ts writes bodies (soft breaks are CRLF).
  { arbitrary: fc.string({ unit: 'grapheme', maxLength: 120 }).map((s) => qpWrap(qpEncode(s), 76)), weight: 3 },
  // 8-bit text as it is, including lone surrogates (both paths encode them as U+FFFD).
  { arbitrary: fc.string({ unit: 'grapheme', maxLength: 60 }).map(noBreaks), weight: 2 },
  { arbitrary: fc.string({ unit: 'binary', maxLength: 30 }).map(noBreaks), weight: 1 },
  // Bare line breaks, which neither path may send as they are.
  { arbitrary: fc.constantFrom('a\nb', 'a\rb', '\n.', '\r.', 'x\r\r\ny', '\r', '\n', '.\n.'), weight: 1 },
);

const message = fc
  .tuple(fc.array(line, { minLength: 1, maxLength: 40 }), fc.constantFrom('', '\r\n', '\n', '\r'))
  .map(([lines, end]) => lines.join('\r\n') + end)
  .filter((raw) => raw.length > 0);

const local = fc.oneof(fc.stringMatching(/^[a-z0-9][a-z0-9.+_-]{0,15}$/), fc.constantFrom('zoë', 'ολγα', 'news', 'bounces+d1.e2'));
const address = fc.tuple(local, fc.constantFrom('example.com', 'gazette.example.org', 'пример.рф')).map(([l, d]) => `${l}@${d}`);

interface Side {
  server: RawSmtpServer;
  fast: SmtpTransport;
  nodemailer: SMTPConnection;
}

const sides: Record<'utf8' | 'ascii', Side> = {} as Record<'utf8' | 'ascii', Side>;

beforeAll(async () => {
  for (const [name, extensions] of [
    ['utf8', ['PIPELINING', '8BITMIME', 'SMTPUTF8', 'SIZE 52428800']],
    ['ascii', ['PIPELINING', 'SIZE']],
  ] as const) {
    const server = await startRawSmtpServer({ extensions: [...extensions] });
    const fast = createSmtpTransport(server.url, { maxConnections: 1, timeoutMs: 5_000 });
    const nodemailer = new SMTPConnection({ host: '127.0.0.1', port: server.port, ignoreTLS: true });
    await new Promise<void>((resolve, reject) => {
      nodemailer.connect((error) => (error ? reject(error) : resolve()));
    });
    sides[name] = { server, fast, nodemailer };
  }
});

afterAll(async () => {
  for (const side of Object.values(sides)) {
    side.nodemailer.close();
    await side.fast.close();
    await side.server.close();
  }
});

/** The bytes of the transaction the server finished last on the session of `sessionIndex`. */
const lastTransaction = (side: Side, sessionIndex: number) => side.server.sessions[sessionIndex]!.transactions.at(-1)!;

describe('the fast path writes what nodemailer writes', () => {
  it('for random messages and envelopes, with and without SMTPUTF8', async () => {
    await fc.assert(
      fc.asyncProperty(message, address, address, fc.constantFrom<'utf8' | 'ascii'>('utf8', 'ascii'), async (raw, from, to, which) => {
        const side = sides[which];
        // Session 1 is the fast transport's (opened on its first send), session 0 nodemailer's.
        await side.fast.send({ key: 'k', envelopeFrom: from, to, raw });
        const fast = lastTransaction(side, 1);
        await new Promise<void>((resolve, reject) => {
          side.nodemailer.send({ from, to: [to] }, raw, (error) => (error ? reject(error) : resolve()));
        });
        const nodemailer = lastTransaction(side, 0);
        expect(fast.toString('latin1')).toBe(nodemailer.toString('latin1'));

        // And the server reads back the message itself, with CRLF line ends and the last one added if missing.
        const expected = Buffer.from(raw.replace(/\r\n|\r|\n/g, '\r\n').replace(/(?<!\r\n)$/, '\r\n'), 'utf8');
        expect(side.server.sessions[1]!.messages.at(-1)!.equals(expected)).toBe(true);
      }),
      { numRuns: 300 },
    );
    expect(sides.utf8.fast.stats()).toMatchObject({ pipelinedSessions: 1, nodemailerMessages: 0 });
    expect(sides.ascii.fast.stats()).toMatchObject({ pipelinedSessions: 1, nodemailerMessages: 0 });
    // Both sides stayed on one session each: nothing desynchronised.
    expect(sides.utf8.server.sessions).toHaveLength(2);
    expect(sides.ascii.server.sessions).toHaveLength(2);
  }, 120_000);
});
