import type { DeliveryFault } from '../errors.ts';
import type { DeliveryLedger, DeliveryOutcome, DeliveryToSend, OutcomeRecord } from './delivery-ledger.ts';
import type { EditionStore } from './edition-store.ts';
import type { FaultJudge, Verdict } from './fault-judge.ts';
import { retryDelayMs, type RetryPolicy } from './retry-policy.ts';
import type { QueuedJob, SendQueue } from './send-queue.ts';

/** A delivery a worker holds: its queue job, its ledger claim, and what sending it needs. */
export interface Taken {
  job: QueuedJob;
  claim: string;
  delivery: DeliveryToSend;
  /** When its lease ends, on the worker's monotonic clock (0: taken over by another worker). */
  expires: number;
  /** Cuts its send short (the edition was paused). */
  abort: AbortController;
}

/** Groups of sent messages being committed at once, at most. */
const MAX_GROUPS_IN_FLIGHT = 4;

/** Where the worker reports what it does: retries, bounces, pauses, lost leases, errors. */
export type WorkerLog = (event: string, details: Record<string, unknown>) => void;

/** What the recorder writes to and decides with. */
export interface OutcomeRecorderDeps {
  ledger: DeliveryLedger;
  queue: SendQueue;
  editions: Pick<EditionStore, 'pause' | 'anySent'>;
  judge: FaultJudge<Taken>;
  retry: RetryPolicy;
  random: () => number;
  now: () => Date;
  log: WorkerLog;
  /** Told when an edition was paused, so the loop gives back what it still holds of it. */
  onPause: (editionId: number) => Promise<void>;
  /** Resolves when the server takes a session now (the transport's probe): checks an outage judged on few failures. */
  probe?: () => Promise<void>;
}

interface PendingSent {
  taken: Taken;
  resolve: () => void;
  reject: (error: Error) => void;
}

/**
 * Writes what became of each delivery: to the ledger first (fenced by the claim), then the queue.
 * Sent messages are committed in groups; every sender waits for its own, so at most the messages
 * in flight are ever sent but unrecorded (what a crash can repeat). Failures go through the
 * FaultJudge, which says whether they are each recipient's own or the server's (a pause).
 */
export class OutcomeRecorder {
  private pending: PendingSent[] = [];
  private readonly flushing = new Set<Promise<void>>();
  private scheduled = false;
  /** Settling the jobs of outcomes already in the ledger, one write after another. */
  private settling: Promise<void> = Promise.resolve();
  private settleError: unknown;

  constructor(private readonly deps: OutcomeRecorderDeps) {}

  /** Resolves once the delivery is recorded as sent and its job acked. */
  async sent(taken: Taken): Promise<void> {
    const recorded = new Promise<void>((resolve, reject) => {
      this.pending.push({ taken, resolve, reject });
      this.schedule();
    });
    // Observed at once: the commit may fail while the judging below still waits on a slow write,
    // and a rejection nobody handles yet would end the process. It is still awaited below.
    recorded.catch(() => {});
    let judging: unknown;
    await this.apply(this.deps.judge.success(group(taken))).catch((error: unknown) => (judging = error ?? new Error('judging failed')));
    await recorded;
    if (judging) throw judging;
  }

  /** A send begun at `startedAt` (the judge's clock) failed: held by the judge, or acted on now with whatever it decides. */
  async failed(taken: Taken, fault: DeliveryFault, startedAt?: number): Promise<void> {
    await this.apply(this.deps.judge.failure(group(taken), taken, fault, startedAt));
  }

  /** The delivery is not to be sent (the subscriber left or is suppressed). */
  async skipped(taken: Taken, reason: string): Promise<void> {
    await this.write([[taken, { status: 'skipped', reason }]]);
  }

  /** Gives deliveries back unsent, at no cost to their attempts (a pause, a stop). */
  async release(items: readonly Taken[]): Promise<void> {
    await this.write(items.map((taken) => [taken, { status: 'retry', error: undefined, counts: false }]));
  }

  /** The worker has nothing more to send now: decide every held failure one by one. */
  async settleAll(): Promise<void> {
    for (const group of this.deps.judge.heldGroups()) await this.apply(this.deps.judge.settle(group));
  }

  /** Decides failures held too long. */
  async expire(): Promise<void> {
    await this.apply(this.deps.judge.expire());
  }

  /** Commits what is pending and gives back whatever the judge still holds. */
  async stop(): Promise<void> {
    await this.flushed();
    await this.apply(this.deps.judge.releaseAll());
    await this.settled();
  }

  /** Everything held undecided by the judge: its leases must be renewed too. */
  held(): Taken[] {
    return this.deps.judge.heldItems();
  }

  private async apply(verdicts: Verdict<Taken>[]): Promise<void> {
    for (const verdict of verdicts) {
      if (verdict.kind === 'individual') await this.write(verdict.failures.map(({ item, fault }) => [item, this.ownFault(item, fault)]));
      else if (verdict.kind === 'release') await this.release(verdict.items);
      // A session or two that died while the server otherwise answers (a recipient whose RCPT makes
      // it drop the connection) is those recipients' trouble: retried with their attempts counted,
      // rather than an outage that would pause the edition again after every backoff, for ever.
      else if (verdict.fewer && (await answers(this.deps.probe))) await this.write(verdict.failures.map(({ item, fault }) => [item, this.ownFault(item, fault)]));
      // A run of recipient bounces in an edition the server has already taken mail for is a block of
      // dead addresses (an old import), not a relay refusing us: each bounces.
      else if (verdict.cause === 'recipient-permanent' && (await this.deps.editions.anySent(Number(verdict.group)))) {
        await this.write(verdict.failures.map(({ item, fault }) => [item, { status: 'bounced', error: fault.message }]));
      } else await this.pause(Number(verdict.group), verdict.pause, verdict.reason, verdict.items);
    }
  }

  /**
   * What a failure that is the recipient's own means: a bounce (only when the reply names the
   * recipient), a failure that suppresses nobody (a refusal of unclear scope), another try later,
   * or the end of its tries.
   */
  private ownFault(taken: Taken, fault: DeliveryFault): DeliveryOutcome {
    if (fault.kind === 'recipient-permanent') return { status: 'bounced', error: fault.message };
    if (fault.kind === 'unclear-permanent') return { status: 'failed', error: fault.message };
    const attempts = taken.delivery.attempts + 1;
    if (attempts >= this.deps.retry.maxAttempts) return { status: 'failed', error: `${fault.message} (after ${attempts} attempts)` };
    return { status: 'retry', error: fault.message, counts: true };
  }

  private async pause(editionId: number, kind: 'refused' | 'outage', reason: string, items: Taken[]): Promise<void> {
    const paused = await this.deps.editions.pause(editionId, kind, reason);
    // Held in the queue only when this pause took: an operator's resume a moment earlier must not be undone.
    if (paused) await this.deps.queue.hold(editionId, true);
    await this.release(items);
    if (paused) this.deps.log('paused', { edition: editionId, kind, reason });
    await this.deps.onPause(editionId);
  }


  /**
   * Writes outcomes (fenced), then settles their jobs: acked when done, due again when retried.
   * Resolves once the ledger has them; the jobs are settled after, in order, without holding the
   * caller: the ledger is the truth, and a job left unsettled by a crash comes back, is found
   * finished and is acked then. A failure to settle is thrown by the next write (or by stop).
   */
  private async write(items: [Taken, DeliveryOutcome][]): Promise<void> {
    if (items.length === 0) return;
    this.surfaceSettleError();
    const records: OutcomeRecord[] = items.map(([taken, outcome]) => ({ deliveryId: taken.delivery.id, claim: taken.claim, outcome }));
    const lost = new Set(await this.deps.ledger.record(records));
    const kept = items.filter(([taken, outcome]) => {
      if (!lost.has(taken.delivery.id)) return true;
      this.deps.log('lease-lost', { delivery: taken.delivery.id, outcome: outcome.status });
      return false;
    });
    this.settling = this.settling
      .then(() => this.settleJobs(kept))
      .catch((error: unknown) => {
        this.settleError ??= error;
      });
  }

  private async settleJobs(items: [Taken, DeliveryOutcome][]): Promise<void> {
    const now = this.deps.now();
    const done: QueuedJob[] = [];
    for (const [taken, outcome] of items) {
      if (outcome.status !== 'retry') done.push(taken.job);
      else if (!outcome.counts) await this.deps.queue.retry([taken.job], now);
      else {
        const delayMs = retryDelayMs(this.deps.retry, taken.delivery.attempts + 1, this.deps.random);
        await this.deps.queue.retry([taken.job], new Date(now.getTime() + delayMs));
        this.deps.log('retry', { delivery: taken.delivery.id, attempts: taken.delivery.attempts + 1, delayMs, error: outcome.error });
      }
      if (outcome.status === 'bounced' || outcome.status === 'failed') this.deps.log(outcome.status, { delivery: taken.delivery.id, error: outcome.error });
    }
    await this.deps.queue.ack(done);
  }

  /** Waits for the jobs of every outcome written so far to be settled. */
  async settled(): Promise<void> {
    await this.settling;
    this.surfaceSettleError();
  }

  private surfaceSettleError(): void {
    if (this.settleError === undefined) return;
    const error = this.settleError;
    this.settleError = undefined;
    throw error;
  }

  /**
   * Sent messages are written together: those that arrive within one turn of the event loop (the
   * replies read in one poll). Waiting longer for a fuller group costs more in senders kept idle
   * than the commits it saves (measured: a 2 ms window took a third off the rate on SQLite).
   */
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  // Groups are committed side by side, up to MAX_GROUPS_IN_FLIGHT (each its own statement, on its
  // own connection where the store has a pool): a group never waits for the one before to commit.
  private async flush(): Promise<void> {
    while (this.flushing.size >= MAX_GROUPS_IN_FLIGHT) await Promise.race(this.flushing);
    if (this.pending.length === 0) return;
    const group = this.pending.splice(0);
    const flushing = (async () => {
      try {
        await this.write(group.map((p) => [p.taken, { status: 'sent' }]));
        for (const p of group) p.resolve();
      } catch (error) {
        for (const p of group) p.reject(error as Error);
      }
    })();
    this.flushing.add(flushing);
    await flushing;
    this.flushing.delete(flushing);
    if (this.pending.length > 0) this.schedule();
  }

  /** Waits for every group being committed. */
  private async flushed(): Promise<void> {
    await this.flush();
    while (this.flushing.size > 0) await Promise.all(this.flushing);
  }
}

function group(taken: Taken): string {
  return String(taken.delivery.editionId);
}

/** Whether the server takes a session now; false without a probe or when it fails. */
export async function answers(probe: (() => Promise<void>) | undefined): Promise<boolean> {
  if (!probe) return false;
  return probe().then(
    () => true,
    () => false,
  );
}
