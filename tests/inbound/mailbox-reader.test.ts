import { setTimeout as delay } from 'node:timers/promises';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InboundMail, InboundMailHandler, MailOutcome } from '../../src/inbound/inbound-report.ts';
import {
  MailboxError,
  parseMailboxUrl,
  PROCESSED_KEYWORD,
  readMailboxOnce,
  watchMailbox,
  type WatchMailboxOptions,
} from '../../src/inbound/mailbox-reader.ts';
import { DOVECOT_AVAILABLE, startDovecot, type TestDovecot } from '../helpers/dovecot.ts';

const OUTCOME: MailOutcome = { recorded: 1, duplicates: 0, ignored: null };

/** A handler that keeps what it was given; rejects for mails whose raw text matches `reject`. */
function recorder(reject?: RegExp): InboundMailHandler & { mails: InboundMail[] } {
  const mails: InboundMail[] = [];
  const handle = async (mail: InboundMail) => {
    if (reject?.test(mail.raw.toString('utf8'))) throw new Error('store unavailable');
    mails.push(mail);
    return OUTCOME;
  };
  return Object.assign(handle, { mails });
}

// CRLF line ends and 8-bit text: what Dovecot hands back must be these bytes exactly.
function mail(n: number): Buffer {
  return Buffer.from(
    `From: mailer-daemon@example.net\r\nTo: bounces+${n}@gazette.test\r\nSubject: Undelivered ${n}\r\n` +
      `Message-ID: <bounce-${n}@example.net>\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n` +
      `Zustellung fehlgeschlagen – ${n} ✉\r\n`,
  );
}

async function until(condition: () => boolean | Promise<boolean>, what: string, ms = 8_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(25);
  }
}

function caught(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(() => undefined, (error: unknown) => error);
}

describe('parseMailboxUrl', () => {
  it('decodes user, password and mailbox and picks the default ports', () => {
    expect(parseMailboxUrl('imaps://bounce%40example.com:p%40ss%3Aw%2Frd@Mail.Example.com/Bounce%20Box')).toEqual({
      secure: true,
      requireStartTls: false,
      host: 'mail.example.com',
      port: 993,
      user: 'bounce@example.com',
      password: 'p@ss:w/rd',
      mailbox: 'Bounce Box',
    });
    expect(parseMailboxUrl('imap://u:p@127.0.0.1')).toMatchObject({ port: 143, mailbox: 'INBOX', requireStartTls: false });
    expect(parseMailboxUrl('imap://u:p@[::1]:1143/')).toMatchObject({ host: '::1', port: 1143, mailbox: 'INBOX', requireStartTls: false });
  });

  it('requires STARTTLS for imap:// to any host but loopback', () => {
    expect(parseMailboxUrl('imap://u:p@mail.example.com/INBOX').requireStartTls).toBe(true);
    expect(parseMailboxUrl('imap://u:p@localhost/INBOX').requireStartTls).toBe(false);
    expect(parseMailboxUrl('imaps://u:p@mail.example.com/INBOX').requireStartTls).toBe(false);
  });

  it.each([
    'imap://u:hunter2-secret@mail.example.com:99999/INBOX',
    'imap://u:hunter2-secret#@mail.example.com/INBOX',
    'smtp://u:hunter2-secret@mail.example.com/',
    'imap://u:hunter2-secret@mail.example.com/%ZZ',
    'imap://mail.example.com/INBOX?hunter2-secret',
  ])('refuses %s without repeating the password', (url) => {
    let error: unknown;
    try {
      parseMailboxUrl(url);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(MailboxError);
    expect(error).toMatchObject({ code: 'MAILBOX_URL_INVALID', transient: false });
    expect(String((error as Error).message)).not.toContain('hunter2');
    expect((error as Error).cause).toBeUndefined();
  });
});

describe.runIf(DOVECOT_AVAILABLE)('mailbox reader against a real Dovecot', () => {
  let dovecot: TestDovecot;
  let boxes = 0;
  // Each test its own mailbox, so none sees another's mail.
  const freshMailbox = async (name = `Test${++boxes}`) => {
    await dovecot.createMailbox(name);
    return name;
  };

  beforeAll(async () => {
    dovecot = await startDovecot();
  });
  afterAll(async () => {
    await dovecot?.stop();
  });

  it('hands over every mail with its bytes, flags them, and hands over none the second time', async () => {
    const box = await freshMailbox();
    for (const n of [1, 2, 3]) await dovecot.append(mail(n), box);
    const handler = recorder();
    expect(await readMailboxOnce({ url: dovecot.url(box), after: 'flag', handle: handler })).toEqual({ processed: 3, failed: 0 });
    expect(handler.mails.map((m) => m.raw)).toEqual([mail(1), mail(2), mail(3)]);
    expect(handler.mails.every((m) => m.source === 'mailbox' && m.recipients.length === 0)).toBe(true);
    expect((await dovecot.list(box)).map((m) => m.flags)).toEqual(Array(3).fill([PROCESSED_KEYWORD, '\\Seen']));

    const again = recorder();
    expect(await readMailboxOnce({ url: dovecot.url(box), after: 'flag', handle: again })).toEqual({ processed: 0, failed: 0 });
    expect(again.mails).toEqual([]);
  });

  it('expunges handled mail in delete mode, in batches smaller than the mailbox', async () => {
    const box = await freshMailbox();
    for (const n of [1, 2, 3, 4, 5]) await dovecot.append(mail(n), box);
    const handler = recorder();
    const result = await readMailboxOnce({ url: dovecot.url(box), after: 'delete', handle: handler, batchSize: 2, batchBytes: 300 });
    expect(result).toEqual({ processed: 5, failed: 0 });
    expect(handler.mails.map((m) => m.raw)).toEqual([1, 2, 3, 4, 5].map(mail));
    expect(await dovecot.list(box)).toEqual([]);
  });

  it('leaves a mail the handler rejected for the next read, and only that one', async () => {
    const box = await freshMailbox();
    for (const n of [1, 2, 3]) await dovecot.append(mail(n), box);
    const lines: string[] = [];
    const first = recorder(/Undelivered 2/);
    const result = await readMailboxOnce({ url: dovecot.url(box), after: 'flag', handle: first, log: (line) => lines.push(line) });
    expect(result).toEqual({ processed: 2, failed: 1 });
    expect(lines).toEqual([expect.stringContaining('store unavailable')]);
    expect((await dovecot.list(box)).map((m) => m.flags)).toEqual([[PROCESSED_KEYWORD, '\\Seen'], [], [PROCESSED_KEYWORD, '\\Seen']]);

    const second = recorder();
    expect(await readMailboxOnce({ url: dovecot.url(box), after: 'flag', handle: second })).toEqual({ processed: 1, failed: 0 });
    expect(second.mails.map((m) => m.raw)).toEqual([mail(2)]);
  });

  it('reads a mailbox whose name has a space, URL-encoded', async () => {
    const box = await freshMailbox('Gazette Bounces');
    await dovecot.append(mail(7), box);
    expect(dovecot.url(box)).toContain('/Gazette%20Bounces');
    const handler = recorder();
    expect(await readMailboxOnce({ url: dovecot.url(box), after: 'delete', handle: handler })).toEqual({ processed: 1, failed: 0 });
    expect(handler.mails.map((m) => m.raw)).toEqual([mail(7)]);
  });

  it('says the login was refused, without the password, and watchMailbox gives up on it', async () => {
    const url = dovecot.url('INBOX', { password: 'wrong-password-42' });
    const error = await caught(readMailboxOnce({ url, after: 'flag', handle: recorder() }));
    expect(error).toBeInstanceOf(MailboxError);
    expect(error).toMatchObject({ code: 'MAILBOX_LOGIN_FAILED', transient: false });
    expect((error as Error).message).toMatch(/login as "gazette" at 127\.0\.0\.1:\d+ refused/);
    // Nor in what a logger printing the whole error (cause and all) would show, plain or as SASL PLAIN.
    const shown = inspect(error, { depth: 5 });
    expect(shown).not.toContain('wrong-password-42');
    expect(shown).not.toContain(Buffer.from('\0gazette\0wrong-password-42').toString('base64'));

    const lines: string[] = [];
    const watched = await caught(
      watchMailbox({ url, after: 'flag', handle: recorder(), pollMs: 1_000, signal: new AbortController().signal, log: (l) => lines.push(l) }),
    );
    expect(watched).toMatchObject({ code: 'MAILBOX_LOGIN_FAILED' });
    expect(lines.join('\n')).not.toContain('wrong-password-42');
  });

  it('names a mailbox that does not exist', async () => {
    const error = await caught(readMailboxOnce({ url: dovecot.url('No Such Box'), after: 'flag', handle: recorder() }));
    expect(error).toMatchObject({ code: 'MAILBOX_NOT_FOUND', transient: false, message: expect.stringContaining('"No Such Box"') });
  });

  it('watchMailbox reads what is there, sees mail that arrives later through IDLE, and stops on abort', async () => {
    const box = await freshMailbox();
    await dovecot.append(mail(1), box);
    const handler = recorder();
    const lines: string[] = [];
    const stop = new AbortController();
    const sleeps: number[] = [];
    const watching = watchMailbox({
      url: dovecot.url(box),
      after: 'flag',
      handle: handler,
      pollMs: 60_000,
      signal: stop.signal,
      log: (line) => lines.push(line),
      sleep: async (ms) => void sleeps.push(ms),
    });
    await until(() => handler.mails.length === 1, 'the mail that was there');
    await delay(100); // let IDLE start, so the next mail comes through it
    await dovecot.append(mail(2), box);
    await until(() => handler.mails.length === 2, 'the mail appended while watching');
    expect(handler.mails.map((m) => m.raw)).toEqual([mail(1), mail(2)]);
    stop.abort();
    await watching;
    expect(lines[0]).toMatch(/connected; waiting for new mail with IDLE/);
    expect(sleeps).toEqual([]); // IDLE, not polling
    expect(lines.join('\n')).not.toContain(dovecot.password);
  });

  it('watchMailbox logs a dropped connection and reconnects once the server is back', async () => {
    const box = await freshMailbox();
    const handler = recorder();
    const lines: string[] = [];
    const stop = new AbortController();
    const options: WatchMailboxOptions = {
      url: dovecot.url(box),
      after: 'delete',
      handle: handler,
      pollMs: 60_000,
      signal: stop.signal,
      log: (line) => lines.push(line),
      backoff: { initialMs: 20, maxMs: 100 },
    };
    const watching = watchMailbox(options);
    await until(() => lines.some((l) => l.includes('connected')), 'the first connection');
    await dovecot.down();
    await until(() => lines.some((l) => l.includes('ECONNREFUSED')), 'a reconnect refused while the server is down');
    await dovecot.up();
    await until(() => lines.filter((l) => l.includes('connected;')).length >= 2, 'the reconnection');
    await dovecot.append(mail(9), box);
    await until(() => handler.mails.length === 1, 'mail after the reconnection');
    stop.abort();
    await watching;
    const waits = lines.flatMap((l) => /reconnecting in (\d+) ms$/.exec(l)?.[1] ?? []).map(Number);
    // Doubling from 20 ms up to 100 ms while the server is down.
    expect(waits).toEqual(waits.map((_, i) => Math.min(100, 20 * 2 ** i)));
    const log = lines.join('\n');
    // BYE during IDLE, or a reset when the server went mid-command: either way a line, then a reconnect.
    expect(lines[1]).toMatch(/(connection lost|ECONNRESET).*; reconnecting in 20 ms$/);
    expect(log).not.toContain(dovecot.password);
  });
});

describe.runIf(DOVECOT_AVAILABLE)('mailbox reader against a Dovecot without IDLE', () => {
  let dovecot: TestDovecot;
  beforeAll(async () => {
    dovecot = await startDovecot({ noIdle: true });
  });
  afterAll(async () => {
    await dovecot?.stop();
  });

  it('polls every pollMs', async () => {
    const handler = recorder();
    const lines: string[] = [];
    const sleeps: number[] = [];
    const stop = new AbortController();
    const watching = watchMailbox({
      url: dovecot.url(),
      after: 'flag',
      handle: handler,
      pollMs: 45_000,
      signal: stop.signal,
      log: (line) => lines.push(line),
      // Stands in for 45 s: each poll comes 20 ms after the last.
      sleep: (ms, signal) => {
        sleeps.push(ms);
        return delay(20, undefined, { signal }).catch(() => {});
      },
    });
    await until(() => sleeps.length >= 2, 'two polls');
    await dovecot.append(mail(3));
    await until(() => handler.mails.length === 1, 'the mail found by polling');
    stop.abort();
    await watching;
    expect(lines[0]).toMatch(/connected; checking every 45 s/);
    expect(new Set(sleeps)).toEqual(new Set([45_000]));
    expect(handler.mails.map((m) => m.raw)).toEqual([mail(3)]);
  });
});

describe.runIf(DOVECOT_AVAILABLE)('mailbox reader over TLS', () => {
  let dovecot: TestDovecot;
  beforeAll(async () => {
    dovecot = await startDovecot({ tls: true });
  });
  afterAll(async () => {
    await dovecot?.stop();
  });

  it('reads over imaps and over imap:// with STARTTLS, and refuses a certificate it cannot verify', async () => {
    await dovecot.append(mail(1));
    const handler = recorder();
    const tls = { ca: dovecot.ca! };
    expect(await readMailboxOnce({ url: dovecot.url('INBOX', { imaps: true }), after: 'flag', handle: handler, tls })).toEqual({ processed: 1, failed: 0 });
    await dovecot.append(mail(2));
    expect(await readMailboxOnce({ url: dovecot.url(), after: 'flag', handle: handler, tls })).toEqual({ processed: 1, failed: 0 });
    expect(handler.mails.map((m) => m.raw)).toEqual([mail(1), mail(2)]);

    const error = await caught(readMailboxOnce({ url: dovecot.url('INBOX', { imaps: true }), after: 'flag', handle: handler }));
    expect(error).toMatchObject({ code: 'MAILBOX_TLS_FAILED', transient: false });
  });
});
