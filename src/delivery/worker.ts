import { randomBytes } from 'node:crypto';
import { DatabaseGoneError, DeliveryFault, GazetteError } from '../errors.ts';
import type { DeliveryLedger } from './delivery-ledger.ts';
import type { EditionStore } from './edition-store.ts';
import type { NoticeSender } from './notice-sender.ts';
import type { OutcomeRecorder, Taken, WorkerLog } from './outcome-recorder.ts';
import type { Clock } from './rate-limiter.ts';
import type { SendQueue } from './send-queue.ts';
import type { SendStep } from './send-step.ts';
import type { Transport } from './transport.ts';

/** What the reserve loop works with; all of it injected, so tests control time and the transport. */
export interface WorkerDeps {
  queue: SendQueue;
  ledger: DeliveryLedger;
  editions: EditionStore;
  step: SendStep;
  recorder: OutcomeRecorder;
  transport: Transport;
  /** Confirmations and welcomes, sent beside the editions; optional. */
  notices?: NoticeSender;
  clock: Clock;
  log: WorkerLog;
}

/** Sending limits and timings. */
export interface WorkerOptions {
  /** Messages sent at once. */
  concurrency: number;
  /** Messages per second, overall (the step's rate limiter enforces it; the loop sizes its batches by it). */
  rate: number;
  /** How long a taken job is ours unless renewed; a dead worker's jobs come back after this. */
  leaseMs: number;
  /** Wait between polls of an empty queue. */
  pollMs: number;
  /** Try editions paused by an outage again once their backoff is over (a long-running worker does; `send --wait` does not). */
  resumeOutages: boolean;
}

/** Options for one run of the loop. */
export interface RunOptions {
  /** Stops taking jobs when aborted; jobs in flight finish first. */
  signal: AbortSignal;
  /** Checked when the queue is empty: true ends the run (used by `send --wait`). */
  stopWhenIdle?: () => Promise<boolean>;
}

/**
 * The reserve loop: takes jobs from the queue, claims their deliveries in the ledger, and has
 * `concurrency` senders run each through the send step and the outcome recorder. A heartbeat
 * renews the leases and claims of everything held, so leases can be short and a dead worker's
 * jobs come back quickly. A DatabaseGoneError ends the run: nothing more would be recorded.
 */
export class Worker {
  private buffer: Taken[] = [];
  private readonly inFlight = new Map<number, Taken>();
  /** The last refill found nothing: no look-ahead until the buffer is empty again. */
  private drained = false;
  private readonly perEdition = new Map<number, number>();
  private refilling: Promise<boolean> | undefined;
  private readonly touched = new Set<number>();
  private paused = new Set<number>();
  private fatal: Error | undefined;

  constructor(
    private readonly deps: WorkerDeps,
    private readonly options: WorkerOptions,
  ) {}

  /** Where its messages go (`outbox`, `smtp`), for the operator. */
  get transportName(): string {
    return this.deps.transport.name;
  }

  /** Runs the senders until the signal aborts (or stopWhenIdle says so), then gives back what it still holds. */
  async run(run: RunOptions): Promise<void> {
    const stopHeartbeat = new AbortController();
    const stopAll = AbortSignal.any([run.signal, stopHeartbeat.signal]);
    const heartbeat = this.heartbeat(stopAll);
    const outages = this.options.resumeOutages ? this.watchOutages(stopAll) : Promise.resolve();
    const notices = this.deps.notices?.run(stopAll, (error) => this.fail(error));
    try {
      await Promise.all(Array.from({ length: this.options.concurrency }, () => this.sender(run)));
    } finally {
      stopHeartbeat.abort();
      await heartbeat;
      await outages;
      await notices;
      await this.deps.recorder.release(this.buffer.splice(0)).catch(() => {});
      await this.deps.recorder.stop().catch(() => {});
      if (!this.fatal) await this.completeTouched();
    }
    if (this.fatal) throw this.fatal;
  }

  private async sender(run: RunOptions): Promise<void> {
    while (!run.signal.aborted && !this.fatal) {
      try {
        const next = await this.next();
        if (next) {
          await this.process(next);
          continue;
        }
        // Nothing more to send now, so no more evidence will come: held failures are each their recipient's.
        if (this.inFlight.size === 0) await this.deps.recorder.settleAll();
        await this.completeTouched();
        if (run.stopWhenIdle && (await run.stopWhenIdle())) return;
      } catch (error) {
        if (this.fail(error)) return;
        // The database or the queue failed for a moment (a restart, a lock held too long): the job
        // keeps its lease and comes back; this sender waits and carries on.
        this.deps.log('error', { error: (error as Error).message });
      }
      if (!run.signal.aborted && !this.fatal) await this.deps.clock.sleep(this.options.pollMs, run.signal);
    }
  }

  /** Remembers an error that must end the run (the database gone or damaged); true when it is one. */
  private fail(error: unknown): boolean {
    if (!(error instanceof DatabaseGoneError)) return false;
    this.fatal ??= error;
    return true;
  }

  private async next(): Promise<Taken | undefined> {
    for (;;) {
      const taken = this.buffer.shift();
      // The next batch is reserved while this one still has work for every sender: on a networked
      // store, a refill takes several round trips that no sender should wait for.
      if (this.buffer.length < this.options.concurrency && !this.refilling && !this.drained) this.startRefill();
      if (taken) return taken;
      if (!this.refilling) this.startRefill();
      if (!(await this.refilling)) return undefined;
    }
  }

  private startRefill(): void {
    this.refilling = this.refill()
      .then((found) => {
        // Nothing due: stop looking ahead until a sender finds the buffer empty (the poll waits).
        this.drained = !found;
        return found;
      })
      .finally(() => (this.refilling = undefined));
    // A look-ahead nobody awaits yet must not fail unobserved; the sender that awaits it sees the error.
    this.refilling.catch(() => {});
  }

  // Reserves a batch, claims it in the ledger and buffers what this worker may send; false when there was nothing.
  private async refill(): Promise<boolean> {
    this.paused = new Set(await this.deps.editions.pausedIds());
    // No more than the rate can send within half a lease, so nothing waits in the buffer long.
    const sendable = Math.floor((this.options.rate * this.options.leaseMs) / 2000);
    const limit = Math.max(this.options.concurrency, Math.min(Math.max(100, this.options.concurrency * 4), sendable));
    const start = this.deps.clock.monotonic();
    const jobs = await this.deps.queue.reserve(limit, this.options.leaseMs);
    if (jobs.length === 0) return false;
    const claim = randomBytes(9).toString('base64url');
    const { claimed, finished } = await this.deps.ledger.claim(
      jobs.map((j) => j.deliveryId),
      claim,
      this.options.leaseMs,
    );
    const byId = new Map(claimed.map((d) => [d.id, d]));
    const done = new Set(finished);
    await this.deps.queue.ack(jobs.filter((j) => done.has(j.deliveryId)));
    // Claimed by another live worker (the queue handed the job out twice): it is theirs; look again later.
    const theirs = jobs.filter((j) => !byId.has(j.deliveryId) && !done.has(j.deliveryId));
    if (theirs.length > 0) await this.deps.queue.retry(theirs, new Date(this.deps.clock.now().getTime() + this.options.leaseMs));
    for (const job of jobs) {
      const delivery = byId.get(job.deliveryId);
      if (!delivery) continue;
      this.buffer.push({ job, claim, delivery, expires: start + this.options.leaseMs, abort: new AbortController() });
      this.perEdition.set(delivery.editionId, (this.perEdition.get(delivery.editionId) ?? 0) + 1);
    }
    return true;
  }

  private async process(taken: Taken): Promise<void> {
    const { delivery } = taken;
    this.inFlight.set(delivery.id, taken);
    this.touched.add(delivery.editionId);
    try {
      // A send starts only with time enough left on its lease for a whole capped transaction, so it
      // ends before anyone else may take the job, even if this process stalls from now on (a stopped
      // process, a full event loop: its buffer's leases may already belong to another worker).
      if (this.paused.has(delivery.editionId) || !this.timeLeft(taken)) return await this.deps.recorder.release([taken]);
      if (!delivery.email || delivery.subscriberStatus !== 'active' || delivery.suppressed) {
        return await this.deps.recorder.skipped(taken, `subscriber is ${delivery.suppressed ? 'suppressed' : (delivery.subscriberStatus ?? 'erased')}`);
      }
      const startedAt = this.deps.clock.monotonic();
      try {
        await this.deps.step.send({ ...delivery, email: delivery.email }, taken.abort.signal);
      } catch (error) {
        const fault = asFault(error);
        // Paused while in flight (the verdict is in), or the lease ran out (another worker's now):
        // give it back unharmed, and let it count for nothing in the judging.
        if (this.paused.has(delivery.editionId) || this.deps.clock.monotonic() > taken.expires) return await this.deps.recorder.release([taken]);
        return await this.deps.recorder.failed(taken, fault, startedAt);
      }
      await this.deps.recorder.sent(taken);
    } finally {
      this.inFlight.delete(delivery.id);
      const left = (this.perEdition.get(delivery.editionId) ?? 1) - 1;
      if (left > 0) this.perEdition.set(delivery.editionId, left);
      else this.perEdition.delete(delivery.editionId);
    }
  }

  // The lease outlasts a whole transaction (capped at half the lease) from now.
  private timeLeft(taken: Taken): boolean {
    return taken.expires - this.deps.clock.monotonic() > this.options.leaseMs / 2;
  }

  /** Gives back, unsent, what the buffer holds of an edition that was just paused, and cuts its messages in flight short. */
  async dropEdition(editionId: number): Promise<void> {
    this.paused.add(editionId);
    this.deps.step.forget(editionId);
    for (const taken of this.inFlight.values()) if (taken.delivery.editionId === editionId) taken.abort.abort();
    const held = this.buffer.filter((t) => t.delivery.editionId === editionId);
    if (held.length === 0) return;
    this.buffer = this.buffer.filter((t) => t.delivery.editionId !== editionId);
    const left = (this.perEdition.get(editionId) ?? 0) - held.length;
    if (left > 0) this.perEdition.set(editionId, left);
    else this.perEdition.delete(editionId);
    await this.deps.recorder.release(held);
  }

  // Every quarter lease: renew what is held (learning which claims another worker took over), and
  // decide failures held too long.
  private async heartbeat(signal: AbortSignal): Promise<void> {
    const every = Math.max(10, Math.floor(this.options.leaseMs / 4));
    while (!signal.aborted) {
      await this.deps.clock.sleep(every, signal);
      if (signal.aborted) return;
      try {
        const held = [...this.buffer, ...this.inFlight.values(), ...this.deps.recorder.held()];
        if (held.length > 0) {
          const start = this.deps.clock.monotonic();
          await this.deps.queue.extend(held.map((t) => t.job), this.options.leaseMs);
          const still = new Set(await this.deps.ledger.extend([...new Set(held.map((t) => t.claim))], this.options.leaseMs));
          for (const taken of held) taken.expires = still.has(taken.delivery.id) ? start + this.options.leaseMs : 0;
        }
        await this.deps.recorder.expire();
      } catch (error) {
        if (this.fail(error)) return;
        this.deps.log('error', { error: (error as Error).message });
      }
    }
  }

  // Apart from the heartbeat, so a slow probe never delays the renewal of leases.
  private async watchOutages(signal: AbortSignal): Promise<void> {
    const every = Math.max(10, Math.floor(this.options.leaseMs / 4));
    while (!signal.aborted) {
      await this.deps.clock.sleep(every, signal);
      if (signal.aborted) return;
      try {
        await this.resumeOutages();
      } catch (error) {
        if (this.fail(error)) return;
        this.deps.log('error', { error: (error as Error).message });
      }
    }
  }

  // An edition paused by an outage is tried again once its wait is over and the transport answers.
  private async resumeOutages(): Promise<void> {
    const due = await this.deps.editions.outagesDue();
    if (due.length === 0) return;
    try {
      await this.deps.transport.probe();
    } catch (error) {
      // Still down: wait longer before the next try (the backoff grows with each one).
      for (const id of due) await this.deps.editions.pause(id, 'outage', `still unreachable: ${asFault(error).message}`);
      return;
    }
    for (const id of due) {
      if (!(await this.deps.editions.resume(id, 'worker'))) continue;
      await this.deps.queue.hold(id, false);
      this.paused.delete(id);
      this.deps.log('resumed', { edition: id });
    }
  }

  private async completeTouched(): Promise<void> {
    for (const editionId of [...this.touched]) {
      if (this.perEdition.has(editionId)) continue;
      const status = await this.deps.editions.finish(editionId);
      // Still queued (in flight elsewhere, or retrying later) or paused: look again when next idle.
      if (status === undefined) continue;
      this.touched.delete(editionId);
      this.deps.log('finished', { edition: editionId, status });
    }
  }
}

// Anything that is not already a verdict on the send (a broken edition, a signing failure) is
// the same for every message of the edition: the server is not at fault, but sending must stop.
function asFault(error: unknown): DeliveryFault {
  if (error instanceof DeliveryFault) return error;
  if (error instanceof DatabaseGoneError) throw error;
  const message = error instanceof GazetteError || error instanceof Error ? error.message : String(error);
  return new DeliveryFault('refused', `cannot build the message: ${message}`, { cause: error });
}
