import { setTimeout as delay } from 'node:timers/promises';
import type { ConnectionOptions } from 'node:tls';
import type { FetchMessageObject, ImapFlow, MailboxObject } from 'imapflow';
import { asMailboxError, displayUrl, MailboxError, parseMailboxUrl, scrub, type MailboxAddress } from './mailbox-address.ts';
import type { InboundMailHandler } from './inbound-report.ts';

export { MailboxError, parseMailboxUrl, type MailboxAddress } from './mailbox-address.ts';

/** The keyword that marks a message handled in 'flag' mode, so the next read skips it. */
export const PROCESSED_KEYWORD = '$GazetteProcessed';

/** What one read of a mailbox, and the reader's loop, needs. */
export interface MailboxReaderOptions {
  /** imaps://user:pass@host[:port]/MAILBOX or imap://… (GAZETTE_MAILBOX_URL). */
  url: string;
  /** What becomes of a handled message: expunged, or kept with $GazetteProcessed and \Seen. */
  after: 'delete' | 'flag';
  /** Called once per unprocessed message; a rejection leaves the message for the next read. */
  handle: InboundMailHandler;
  /** Most messages whose sources are fetched in one command; default 50. */
  batchSize?: number;
  /** Most bytes of sources fetched in one command (a larger message comes alone); default 8 MiB. */
  batchBytes?: number;
  /** TLS options for the connection, e.g. `ca` for a server with a private certificate. */
  tls?: ConnectionOptions;
  /** Stops handing over messages once aborted (the one being handled is finished). */
  signal?: AbortSignal;
  /** Where a line goes for each message the handler rejected; none by default. */
  log?(line: string): void;
}

/** How many messages one read handed over successfully, and how many the handler rejected. */
export interface MailboxReadResult {
  processed: number;
  failed: number;
}

/** Hands every unprocessed message of the mailbox to the handler once, then logs out. */
export async function readMailboxOnce(options: MailboxReaderOptions): Promise<MailboxReadResult> {
  const address = parseMailboxUrl(options.url);
  const client = await openClient(address, options.tls);
  try {
    return await readOpenMailbox(client, address, options);
  } catch (error) {
    throw asMailboxError(error, address);
  } finally {
    await client.logout().catch(() => client.close());
  }
}

/** What the reader's loop needs on top of one read. */
export interface WatchMailboxOptions extends MailboxReaderOptions {
  signal: AbortSignal;
  log(line: string): void;
  /** How often to read when the server cannot IDLE (GAZETTE_MAILBOX_POLL_SECONDS). */
  pollMs: number;
  /** Waits between reconnects, and before retrying messages the handler rejected: doubling from initialMs to maxMs; default 1 s to 5 min. */
  backoff?: { initialMs: number; maxMs: number };
  /** Resolves after ms, or early once the signal aborts; never rejects. Injected by tests. */
  sleep?(ms: number, signal: AbortSignal): Promise<void>;
}

/**
 * Reads the mailbox, then again whenever mail arrives (IDLE) or every pollMs (no IDLE), and
 * reconnects with backoff when the connection drops. Resolves once the signal aborts; rejects on
 * what waiting cannot fix (bad URL, login refused, no such mailbox, no TLS where it is required).
 */
export async function watchMailbox(options: WatchMailboxOptions): Promise<void> {
  const address = parseMailboxUrl(options.url);
  const { signal, log } = options;
  const backoff = options.backoff ?? { initialMs: 1_000, maxMs: 300_000 };
  const sleep = options.sleep ?? defaultSleep;
  let attempt = 0;
  while (!signal.aborted) {
    try {
      await watchSession(address, { ...options, backoff, sleep }, () => (attempt = 0));
    } catch (error) {
      const failure = asMailboxError(error, address);
      if (!failure.transient) throw failure;
      if (signal.aborted) break;
      const wait = Math.min(backoff.maxMs, backoff.initialMs * 2 ** attempt++);
      log(`mailbox ${displayUrl(address)}: ${scrub(failure.message, address)}; reconnecting in ${seconds(wait)}`);
      await sleep(wait, signal);
    }
  }
}

type SessionOptions = WatchMailboxOptions & Required<Pick<WatchMailboxOptions, 'backoff' | 'sleep'>>;

// One connection's life: returns when the signal aborts, throws when the connection is lost.
async function watchSession(address: MailboxAddress, options: SessionOptions, connected: () => void): Promise<void> {
  const { signal, log } = options;
  const client = await openClient(address, options.tls);
  let newMail = false;
  let closed = false;
  let wake: (() => void) | undefined;
  client.on('exists', (event) => {
    if (event.count > event.prevCount) newMail = true;
    wake?.();
  });
  client.on('close', () => {
    closed = true;
    wake?.();
  });
  const onAbort = () => wake?.();
  signal.addEventListener('abort', onAbort);
  const idle = client.capabilities.has('IDLE');
  const lost = () => new MailboxError('MAILBOX_CONNECTION_LOST', `connection lost${client.byeReason ? ` (${client.byeReason})` : ''}`, { transient: true });
  try {
    log(`mailbox ${displayUrl(address)}: connected; ${idle ? 'waiting for new mail with IDLE' : `checking every ${seconds(options.pollMs)}`}`);
    let retryAfter = 0;
    for (;;) {
      newMail = false;
      if (!idle) await client.noop(); // lets the server report mail that arrived since the last read
      const result = await readOpenMailbox(client, address, options);
      connected();
      if (result.processed || result.failed) {
        log(`mailbox ${displayUrl(address)}: ${result.processed} processed, ${result.failed} failed${result.failed ? ' (kept for the next read)' : ''}`);
      }
      retryAfter = result.failed ? Math.min(options.backoff.maxMs, Math.max(retryAfter * 2, options.backoff.initialMs)) : 0;
      if (signal.aborted) return;
      if (closed) throw lost();
      if (newMail) continue;
      const timer = new AbortController();
      const woken = new Promise<void>((resolve) => (wake = resolve));
      const waits = [woken];
      if (idle) client.idle({ whenFree: true }).catch(() => {}); // a drop ends it; 'close' tells us
      else waits.push(options.sleep(options.pollMs, AbortSignal.any([signal, timer.signal])));
      if (retryAfter) waits.push(options.sleep(retryAfter, AbortSignal.any([signal, timer.signal])));
      await Promise.race(waits);
      wake = undefined;
      timer.abort();
      if (signal.aborted) return;
      if (closed) throw lost();
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
    if (!closed) await client.logout().catch(() => client.close());
  }
}

async function openClient(address: MailboxAddress, tls: ConnectionOptions | undefined): Promise<ImapFlow> {
  const { ImapFlow } = await import('imapflow');
  const client = new ImapFlow({
    host: address.host,
    port: address.port,
    secure: address.secure,
    // Left unset on loopback: imapflow then upgrades when the server offers STARTTLS.
    doSTARTTLS: address.requireStartTls ? true : undefined,
    auth: { user: address.user, pass: address.password },
    tls,
    logger: false,
    disableAutoIdle: true,
    connectionTimeout: 30_000,
    // Below imapflow's 5-minute socket timeout, for servers that say nothing during IDLE.
    maxIdleTime: 4 * 60_000,
  });
  // The 'close' that follows an error is what the loop acts on; without a listener it would crash the process.
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (error) {
    client.close();
    throw asMailboxError(error, address);
  }
  return client;
}

async function readOpenMailbox(client: ImapFlow, address: MailboxAddress, options: MailboxReaderOptions): Promise<MailboxReadResult> {
  const lock = await client.getMailboxLock(address.mailbox).catch((error: unknown) => {
    if ((error as { mailboxMissing?: boolean }).mailboxMissing) {
      throw new MailboxError('MAILBOX_NOT_FOUND', `no mailbox "${address.mailbox}" at ${address.host}:${address.port}`, { transient: false, cause: error });
    }
    throw error;
  });
  const result = { processed: 0, failed: 0 };
  try {
    if (options.after === 'flag' && !acceptsKeyword(client.mailbox)) {
      throw new MailboxError(
        'MAILBOX_KEYWORDS_UNSUPPORTED',
        `mailbox "${address.mailbox}" cannot keep the ${PROCESSED_KEYWORD} keyword; set GAZETTE_MAILBOX_AFTER=delete`,
        { transient: false },
      );
    }
    const query = options.after === 'flag' ? { deleted: false, unKeyword: PROCESSED_KEYWORD } : { deleted: false };
    const uids = await client.search(query, { uid: true });
    if (!uids) throw new MailboxError('MAILBOX_COMMAND_FAILED', `the server refused to search mailbox "${address.mailbox}"`, { transient: true });
    // Uids first, then sources a batch at a time, so a full mailbox is never held in memory at once.
    for (const chunk of chunks(uids, options.batchSize ?? 50)) {
      const sized = await client.fetchAll(chunk, { uid: true, size: true }, { uid: true });
      for (const batch of bySize(sized, options.batchBytes ?? 8 * 1024 * 1024)) {
        if (options.signal?.aborted) return result;
        const messages = await client.fetchAll(batch, { uid: true, source: true }, { uid: true });
        for (const message of messages) {
          if (options.signal?.aborted) return result;
          if (message.source) await handleOne(client, message.uid, message.source, options, result);
        }
      }
    }
    return result;
  } finally {
    lock.release();
  }
}

async function handleOne(client: ImapFlow, uid: number, raw: Buffer, options: MailboxReaderOptions, result: MailboxReadResult): Promise<void> {
  try {
    await options.handle({ raw, recipients: [], source: 'mailbox' });
  } catch (error) {
    result.failed++;
    options.log?.(`mailbox message ${uid} not processed (${error instanceof Error ? error.message : String(error)}); kept for the next read`);
    return;
  }
  const done =
    options.after === 'delete'
      ? await client.messageDelete([uid], { uid: true })
      : await client.messageFlagsAdd([uid], [PROCESSED_KEYWORD, '\\Seen'], { uid: true });
  // Handled but not marked: the next read hands it over again, which the handler counts once.
  if (!done) throw new MailboxError('MAILBOX_COMMAND_FAILED', `the server refused to ${options.after} message ${uid}`, { transient: true });
  result.processed++;
}

// A server that cannot store the keyword would hand the same messages over on every read.
function acceptsKeyword(mailbox: MailboxObject | false): boolean {
  const flags = mailbox ? mailbox.permanentFlags : undefined;
  return flags === undefined || flags.has('\\*') || flags.has(PROCESSED_KEYWORD);
}

function chunks<T>(items: T[], size: number): T[][] {
  return Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size));
}

function bySize(messages: FetchMessageObject[], maxBytes: number): number[][] {
  const batches: number[][] = [];
  let current: number[] = [];
  let bytes = 0;
  for (const { uid, size = 0 } of messages) {
    if (current.length > 0 && bytes + size > maxBytes) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(uid);
    bytes += size;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

function seconds(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Math.round(ms / 100) / 10} s`;
}

function defaultSleep(ms: number, signal: AbortSignal): Promise<void> {
  return delay(ms, undefined, { signal }).catch(() => {});
}
