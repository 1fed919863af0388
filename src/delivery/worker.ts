import type { Content, MailingList } from '../content/model.ts';
import { PermanentDeliveryError, TransportRejectedError } from '../errors.ts';
import { recipientLinks } from '../links/recipient-links.ts';
import type { TokenSigner } from '../links/tokens.ts';
import type { Queue, ReservedJob } from '../queue/queue.ts';
import { recipientValues } from '../render/slots.ts';
import type { DeliveriesRepo, DeliveryToSend } from '../store/deliveries-repo.ts';
import type { EditionsRepo } from '../store/editions-repo.ts';
import type { SubscribersRepo } from '../store/subscribers-repo.ts';
import type { MessageSigner } from './dkim.ts';
import { prepareMessageTemplate, renderMessage, type MessageTemplate } from './mime-message.ts';
import { RateLimiter, type Clock } from './rate-limiter.ts';
import { retryDelayMs, type RetryPolicy } from './retry-policy.ts';
import { SentRecorder } from './sent-recorder.ts';
import type { Transport } from './transport.ts';

/** What a worker needs; all of it injected, so tests control time, randomness and the transport. */
export interface WorkerDeps {
  queue: Queue;
  deliveries: DeliveriesRepo;
  editions: EditionsRepo;
  subscribers: SubscribersRepo;
  transport: Transport;
  signMessage: MessageSigner;
  tokens: TokenSigner;
  content: () => Promise<Content>;
  clock: Clock;
  random: () => number;
  log: (event: string, details: Record<string, unknown>) => void;
}

/** Sending limits and timings. */
export interface WorkerOptions {
  /** Messages sent at once. */
  concurrency: number;
  /** Messages per second, overall. */
  rate: number;
  retry: RetryPolicy;
  /** How long a reserved job is ours; after that another worker may take it. */
  leaseMs: number;
  /** Wait between polls of an empty queue. */
  pollMs: number;
  /** Pause after the server refused us as a whole, before trying again. */
  rejectedBackoffMs: number;
}

/** Options for one run of the loop. */
export interface RunOptions {
  /** Stops taking jobs when aborted; jobs in flight finish first. */
  signal: AbortSignal;
  /** Checked when the queue is empty: true ends the run (used by `send --wait`). */
  stopWhenIdle?: () => Promise<boolean>;
}

interface Buffered {
  job: ReservedJob;
  delivery: DeliveryToSend | undefined;
}

/**
 * Takes jobs from the queue and sends them: personalize → sign → transport, then records the
 * outcome in the ledger before acking the job, so a crash repeats at most the messages in flight.
 */
export class Worker {
  private readonly templates = new Map<number, Promise<MessageTemplate>>();
  private readonly limiter: RateLimiter;
  private buffer: Buffered[] = [];
  private refilling: Promise<boolean> | undefined;
  private readonly touched = new Set<number>();
  private pausedUntil = 0;
  /** Editions paused (here or by another process): their jobs go back to the queue unsent. */
  private paused = new Set<number>();
  private readonly sent: SentRecorder;

  constructor(
    private readonly deps: WorkerDeps,
    private readonly options: WorkerOptions,
  ) {
    this.limiter = new RateLimiter(options.rate, deps.clock);
    this.sent = new SentRecorder(deps.deliveries, deps.queue, () => deps.clock.now());
  }

  /** Runs `concurrency` senders until the signal aborts (or stopWhenIdle says so), then releases unstarted jobs. */
  async run(run: RunOptions): Promise<void> {
    const senders = Array.from({ length: this.options.concurrency }, () => this.sender(run));
    await Promise.all(senders);
    const left = this.buffer.splice(0);
    for (const { job } of left) await this.deps.queue.retry(job, this.deps.clock.now());
    await this.completeTouched();
  }

  private async sender(run: RunOptions): Promise<void> {
    while (!run.signal.aborted) {
      try {
        const next = await this.next();
        if (next) {
          await this.process(next);
          continue;
        }
        await this.completeTouched();
        if (run.stopWhenIdle && (await run.stopWhenIdle())) return;
      } catch (error) {
        // The database or the queue failed (a restart, a lock held too long): the job keeps its
        // lease and comes back; this sender waits and carries on instead of taking the process down.
        this.deps.log('error', { error: (error as Error).message });
      }
      if (!run.signal.aborted) await this.deps.clock.sleep(this.options.pollMs);
    }
  }

  private async next(): Promise<Buffered | undefined> {
    for (;;) {
      const item = this.buffer.shift();
      if (item) return item;
      if (!this.refilling) {
        this.refilling = this.refill().finally(() => (this.refilling = undefined));
      }
      if (!(await this.refilling)) return undefined;
    }
  }

  // Reserves a batch and loads its deliveries in one query; false when there was nothing to take.
  private async refill(): Promise<boolean> {
    const now = this.deps.clock.now();
    if (now.getTime() < this.pausedUntil) return false;
    this.paused = new Set(await this.deps.editions.pausedIds());
    // No more than the rate can send within half a lease, so buffered jobs do not outlive their lease.
    const sendable = Math.floor((this.options.rate * this.options.leaseMs) / 2000);
    const limit = Math.max(this.options.concurrency, Math.min(Math.max(100, this.options.concurrency * 4), sendable));
    const jobs = await this.deps.queue.reserve(limit, this.options.leaseMs, now, [...this.paused]);
    if (jobs.length === 0) return false;
    const deliveries = await this.deps.deliveries.forSending(jobs.map((j) => j.id));
    this.buffer.push(...jobs.map((job) => ({ job, delivery: deliveries.get(job.id) })));
    return true;
  }

  private async process({ job, delivery }: Buffered): Promise<void> {
    const { deps } = this;
    if (!delivery || delivery.status !== 'queued') {
      await deps.queue.ack(job); // already done, or its edition was deleted
      return;
    }
    this.touched.add(delivery.editionId);
    // A paused edition's jobs, and jobs whose lease is nearly over (another worker may take them
    // any moment), go back unsent.
    if (this.paused.has(delivery.editionId) || job.lease - deps.clock.now().getTime() < this.options.leaseMs / 10) {
      await deps.queue.retry(job, deps.clock.now());
      return;
    }
    if (!delivery.email || delivery.subscriberStatus !== 'active' || delivery.suppressed) {
      await deps.deliveries.record(delivery.id, 'skipped', deps.clock.now(), `subscriber is ${delivery.suppressed ? 'suppressed' : (delivery.subscriberStatus ?? 'erased')}`);
      await deps.queue.ack(job);
      return;
    }
    try {
      const raw = await this.message(delivery);
      await this.limiter.take();
      await deps.transport.send({ key: messageKey(delivery), envelopeFrom: (await this.template(delivery.editionId)).envelopeFrom, to: delivery.email, raw });
    } catch (error) {
      await this.handleFailure(job, delivery, error as Error);
      return;
    }
    await this.sent.record(job);
  }

  private async handleFailure(job: ReservedJob, delivery: DeliveryToSend, error: Error): Promise<void> {
    const { deps } = this;
    const now = deps.clock.now();
    if (error instanceof PermanentDeliveryError) {
      await deps.deliveries.record(delivery.id, 'bounced', now, error.message);
      await deps.subscribers.suppress(delivery.email!.toLowerCase(), 'bounced', error.message, now);
      await deps.subscribers.setStatus(delivery.subscriberId, 'bounced', now);
      await deps.queue.ack(job);
      deps.log('bounced', { delivery: delivery.id, error: error.message });
    } else if (error instanceof TransportRejectedError) {
      // The server refuses us as a whole: pause the edition instead of burning through the list.
      this.paused.add(delivery.editionId);
      await deps.editions.setStatus(delivery.editionId, 'paused', now, error.message);
      await deps.queue.retry(job, now);
      // The jobs already taken for this edition go back too, unsent.
      const held = this.buffer.filter((b) => b.job.groupId === delivery.editionId);
      this.buffer = this.buffer.filter((b) => b.job.groupId !== delivery.editionId);
      for (const b of held) await deps.queue.retry(b.job, now);
      this.pausedUntil = now.getTime() + this.options.rejectedBackoffMs;
      deps.log('paused', { edition: delivery.editionId, error: error.message });
    } else if (job.attempts >= this.options.retry.maxAttempts) {
      await deps.deliveries.record(delivery.id, 'failed', now, error.message);
      await deps.queue.fail(job);
      deps.log('failed', { delivery: delivery.id, attempts: job.attempts, error: error.message });
    } else {
      const delay = retryDelayMs(this.options.retry, job.attempts, deps.random);
      await deps.deliveries.record(delivery.id, 'queued', now, error.message);
      await deps.queue.retry(job, new Date(now.getTime() + delay));
      deps.log('retry', { delivery: delivery.id, attempts: job.attempts, delayMs: delay, error: error.message });
    }
  }

  private async message(delivery: DeliveryToSend): Promise<string> {
    const template = await this.template(delivery.editionId);
    const content = await this.site();
    const links = recipientLinks(content.site, this.deps.tokens, delivery.subscriberId);
    const raw = renderMessage(template, {
      email: delivery.email!,
      name: delivery.name ?? undefined,
      values: recipientValues({
        greeting: delivery.name ? `Hello ${delivery.name},` : 'Hello,',
        email: delivery.email!,
        unsubscribe_url: links.unsubscribeUrl,
        preferences_url: links.preferencesUrl,
      }),
      unsubscribeUrl: links.unsubscribeUrl,
      unsubscribeMailto: links.unsubscribeMailto,
      messageKey: messageKey(delivery),
      date: this.deps.clock.now(),
    });
    return this.deps.signMessage(raw);
  }

  private siteCache: Promise<Content> | undefined;

  // Site details (sender, URL) are read once per worker run: a send must not change mid-way.
  private site(): Promise<Content> {
    if (!this.siteCache) {
      const loading = this.deps.content();
      // A broken content/ must not stop this worker for good: the next message asks again.
      loading.catch(() => {
        if (this.siteCache === loading) this.siteCache = undefined;
      });
      this.siteCache = loading;
    }
    return this.siteCache;
  }

  // The shared, pre-encoded parts of an edition's messages, built once per edition per worker.
  private template(editionId: number): Promise<MessageTemplate> {
    let template = this.templates.get(editionId);
    if (!template) {
      template = (async () => {
        const edition = await this.deps.editions.find(editionId);
        if (!edition) throw new Error(`edition ${editionId} is gone`);
        const { site } = await this.site();
        const list: MailingList = site.lists.find((l) => l.slug === edition.list_slug) ?? { slug: edition.list_slug, name: edition.list_slug, description: '' };
        return prepareMessageTemplate(site, list, edition.compiled);
      })();
      template.catch(() => this.templates.delete(editionId));
      this.templates.set(editionId, template);
    }
    return template;
  }

  private async completeTouched(): Promise<void> {
    for (const editionId of [...this.touched]) {
      const counts = await this.deps.deliveries.counts(editionId);
      // Still queued (in flight elsewhere, or retrying later): look again when next idle.
      if (counts.queued > 0) continue;
      this.touched.delete(editionId);
      const edition = await this.deps.editions.find(editionId);
      if (edition && edition.status === 'sending') await this.deps.editions.setStatus(editionId, 'sent', this.deps.clock.now());
    }
  }
}

/** A delivery's Message-ID left part: stable, so a retried message keeps its id. */
export function messageKey(delivery: { id: number; editionId: number }): string {
  return `d${delivery.id}.e${delivery.editionId}`;
}
