import { randomBytes } from 'node:crypto';
import { DeliveryFault } from '../errors.ts';
import type { FaultJudge, Verdict } from './fault-judge.ts';
import { answers, type WorkerLog } from './outcome-recorder.ts';
import type { Clock } from './rate-limiter.ts';
import { retryDelayMs, type RetryPolicy } from './retry-policy.ts';

/** A transactional message built whole when it was asked for (a confirmation, a welcome). */
export interface NoticeToSend {
  id: number;
  email: string;
  envelopeFrom: string;
  messageKey: string;
  raw: string;
  attempts: number;
  claim: string;
}

/** What became of one notice. */
export type NoticeOutcome =
  | { status: 'sent' }
  | { status: 'bounced' | 'failed'; error: string }
  /** Due again at `at`; `counts` adds one to its attempts. */
  | { status: 'retry'; at: Date; error: string | undefined; counts: boolean };

/** The notices waiting to go, as the sender needs them; claims fence late writers as in the ledger. */
export interface NoticeOutbox {
  claim(limit: number, claim: string, leaseMs: number): Promise<NoticeToSend[]>;
  /** Writes the outcome if the claim still holds; false when it was lost. */
  record(notice: NoticeToSend, outcome: NoticeOutcome): Promise<boolean>;
}

/** What the notice sender works with. */
export interface NoticeSenderDeps {
  outbox: NoticeOutbox;
  /** Signs and sends one finished message within the rate limit. */
  deliver: (message: { key: string; envelopeFrom: string; to: string; raw: string }) => Promise<void>;
  judge: FaultJudge<NoticeToSend>;
  retry: RetryPolicy;
  random: () => number;
  clock: Clock;
  log: WorkerLog;
  pollMs: number;
  leaseMs: number;
  /** Resolves when the server takes a session now (the transport's probe): checks an outage judged on few failures. */
  probe?: () => Promise<void>;
}

/** After the server refused or an outage, notices wait this long (doubling, at most 15 minutes). */
const NOTICE_BACKOFF_MS = 30_000;
const NOTICE_BACKOFF_MAX_MS = 15 * 60_000;
const GROUP = 'notices';

/**
 * Sends confirmations and welcomes from the notices table, one at a time beside the editions.
 * A subscribe request only writes its notice, so its answer never waits on (or tells of) SMTP;
 * a relay hiccup is retried here with backoff, and the same FaultJudge keeps a misconfigured
 * relay from bouncing every new subscriber.
 */
export class NoticeSender {
  private pausedUntil = 0;
  private outages = 0;
  /** A notice went through in this run: the server takes our mail. */
  private anySent = false;
  private wakeUp: (() => void) | undefined;

  constructor(private readonly deps: NoticeSenderDeps) {}

  /** Sends notices until the signal aborts; `fatal` is told of errors that must end the worker (true: stop). */
  async run(signal: AbortSignal, fatal: (error: unknown) => boolean): Promise<void> {
    while (!signal.aborted) {
      let sent = 0;
      try {
        if (this.deps.clock.monotonic() >= this.pausedUntil) sent = await this.batch();
      } catch (error) {
        if (fatal(error)) return;
        this.deps.log('error', { error: (error as Error).message, notices: true });
      }
      if (sent === 0 && !signal.aborted) await this.idle(signal);
    }
    await this.apply(this.deps.judge.releaseAll()).catch(() => {});
  }

  /** Looks for notices now instead of at the next poll (a subscribe in this process just wrote one). */
  wake(): void {
    this.wakeUp?.();
  }

  private async batch(): Promise<number> {
    const claim = randomBytes(9).toString('base64url');
    const notices = await this.deps.outbox.claim(10, claim, this.deps.leaseMs * 2);
    for (const notice of notices) {
      if (this.deps.clock.monotonic() < this.pausedUntil) {
        await this.deps.outbox.record(notice, { status: 'retry', at: this.resumesAt(), error: undefined, counts: false });
        continue;
      }
      const startedAt = this.deps.clock.monotonic();
      try {
        await this.deps.deliver({ key: notice.messageKey, envelopeFrom: notice.envelopeFrom, to: notice.email, raw: notice.raw });
      } catch (error) {
        const fault = error instanceof DeliveryFault ? error : new DeliveryFault('refused', (error as Error).message, { cause: error });
        await this.apply(this.deps.judge.failure(GROUP, notice, fault, startedAt));
        continue;
      }
      this.outages = 0;
      this.anySent = true;
      await this.apply(this.deps.judge.success(GROUP));
      await this.deps.outbox.record(notice, { status: 'sent' });
    }
    await this.apply(this.deps.judge.settle(GROUP));
    return notices.length;
  }

  private async apply(verdicts: Verdict<NoticeToSend>[]): Promise<void> {
    const now = this.deps.clock.now();
    for (const verdict of verdicts) {
      const failures = verdict.kind === 'individual' ? verdict.failures : verdict.kind === 'server' && (await this.theirOwn(verdict)) ? verdict.failures : undefined;
      if (failures) {
        for (const { item, fault } of failures) await this.deps.outbox.record(item, this.ownFault(item, fault, now));
        continue;
      }
      if (verdict.kind === 'individual') continue;
      if (verdict.kind === 'server') {
        this.outages += 1;
        this.pausedUntil = this.deps.clock.monotonic() + Math.min(NOTICE_BACKOFF_MAX_MS, NOTICE_BACKOFF_MS * 2 ** (this.outages - 1));
        this.deps.log('notices-paused', { reason: verdict.reason, until: this.resumesAt().toISOString() });
      }
      const at = verdict.kind === 'server' ? this.resumesAt() : now;
      for (const item of verdict.items) await this.deps.outbox.record(item, { status: 'retry', at, error: undefined, counts: false });
    }
  }

  /**
   * Whether what the judge took for the server's doing is each notice's own after all: an outage
   * judged on a session or two while the server answers a probe (a poison address that drops the
   * connection: its attempts must count, or it pauses the notices again after every backoff), or a
   * run of bounces once a notice went through (sign-ups with dead addresses, a bot filling the form).
   */
  private async theirOwn(verdict: Extract<Verdict<NoticeToSend>, { kind: 'server' }>): Promise<boolean> {
    if (verdict.cause === 'recipient-permanent' && this.anySent) return true;
    return verdict.fewer === true && (await answers(this.deps.probe));
  }

  // When notices paused by the server may go again, as a time of day.
  private resumesAt(): Date {
    return new Date(this.deps.clock.now().getTime() + Math.max(0, this.pausedUntil - this.deps.clock.monotonic()));
  }

  private ownFault(notice: NoticeToSend, fault: DeliveryFault, now: Date): NoticeOutcome {
    if (fault.kind === 'recipient-permanent') return { status: 'bounced', error: fault.message };
    if (fault.kind === 'unclear-permanent') return { status: 'failed', error: fault.message };
    const attempts = notice.attempts + 1;
    if (attempts >= this.deps.retry.maxAttempts) return { status: 'failed', error: `${fault.message} (after ${attempts} attempts)` };
    const at = new Date(now.getTime() + retryDelayMs(this.deps.retry, attempts, this.deps.random));
    return { status: 'retry', at, error: fault.message, counts: true };
  }

  private async idle(signal: AbortSignal): Promise<void> {
    const woken = new AbortController();
    const wake = () => woken.abort();
    signal.addEventListener('abort', wake, { once: true });
    this.wakeUp = wake;
    await this.deps.clock.sleep(this.deps.pollMs, woken.signal);
    signal.removeEventListener('abort', wake);
    this.wakeUp = undefined;
  }
}
