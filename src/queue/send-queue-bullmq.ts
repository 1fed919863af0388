import { randomBytes } from 'node:crypto';
import { ErrorCode, Job, Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { Lease, QueuedJob, SendQueue } from '../delivery/send-queue.ts';

/** How the BullMQ send queue is reached and tuned. */
export interface BullmqSendQueueOptions {
  /** redis://[user:password@]host:port[/db] (rediss:// for TLS). */
  redisUrl: string;
  /** Prefix of every Redis key, BullMQ's and this adapter's (default `gazette`). */
  prefix?: string;
  /** The BullMQ queue (default `send`); every worker of one Gazette must use the same one. */
  queueName?: string;
  /**
   * The clock `retry(jobs, at)` reads `at` against: the job is due `at - now()` from now. BullMQ
   * itself runs on real time (its locks expire in Redis), so this only matters for a fake clock.
   */
  now?: () => Date;
  /**
   * The rate jobs are handed out at, across every worker on this queue (GAZETTE_RATE as
   * `{ max: rate, durationMs: 1000 }`): at most `max` per `durationMs`, in bursts of at most
   * `burst` (default a tenth of a second's worth, at least 1). Without it, no limit.
   */
  rate?: { max: number; durationMs: number; burst?: number };
  /**
   * The lease the worker asks `reserve` for (config.leaseMs, default 60 s): the lock BullMQ puts
   * on a job as it is taken, before `reserve` sets the one asked for.
   */
  leaseMs?: number;
  /**
   * How often the jobs of workers that died are looked for (BullMQ's stalledInterval): they
   * come back within their lease plus this. Default a quarter of `leaseMs`.
   */
  stalledIntervalMs?: number;
  /** Errors of the background work (the stalled check, lost connections); default: written to stderr. */
  onError?: (error: Error) => void;
  /** How long the first connection may take before the factory gives up (default 10 s). */
  connectTimeoutMs?: number;
}

/** What a job carries: the rest (the message, the recipient) is in the ledger. */
interface JobData {
  deliveryId: number;
  editionId: number;
}

type SendJob = Job<JobData, null, 'send'>;

interface BullmqLease extends Lease {
  /** The BullMQ lock token of the reserve that took the job. */
  readonly opaque: string;
}

const JOB_NAME = 'send';
/** Retries are the project's own (retry-policy.ts): BullMQ makes one attempt and never backs off. */
const JOB_OPTIONS = { attempts: 1, removeOnComplete: true } as const;
/** Jobs moved to active at once by one reserve (each is one script call, pipelined on the connection). */
const WAVE = 100;
/** Jobs per acknowledgement batch, per extendLocks call and per addBulk. */
const CHUNK = 1000;
/** How long a parked job sleeps if no resume wakes it: then reserve sees it again and parks it again if still held. */
const PARK_MS = 24 * 60 * 60 * 1000;
/** The longest a reserve spends parking jobs of held editions before it answers with what it has. */
const PARK_FOR_MS = 2_000;
/** The longest a reserve waits for the rate limit before answering with nothing (the worker polls again). */
const RATE_WAIT_MS = 1000;
/** The ledger is the truth: a job stalled any number of times goes back to wait, never to failed. */
const NEVER_FAIL_STALLED = Number.MAX_SAFE_INTEGER;
/** What BullMQ answers when a lease another holder took over (or that ran out) is used: the only errors ignored. */
const LEASE_LOST: ReadonlySet<number> = new Set([ErrorCode.JobNotExist, ErrorCode.JobLockNotExist, ErrorCode.JobLockMismatch]);
/** What promote/changeDelay answer for a parked job already gone or already woken. */
const NOT_PARKED: ReadonlySet<number> = new Set([ErrorCode.JobNotExist, ErrorCode.JobNotInState]);

/**
 * A token bucket in Redis shared by every worker on the queue (Redis's clock, so the workers'
 * clocks do not matter). ARGV: tokens per ms, burst, n. n > 0 takes up to n tokens and returns
 * {granted, ms to wait for min(n, burst) tokens when none was granted}; n < 0 gives -n back.
 */
const TOKEN_BUCKET = `
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local perMs = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
if now > at then tokens = math.min(burst, tokens + (now - at) * perMs) end
local granted = 0
local wait = 0
if n < 0 then
  tokens = math.min(burst, tokens - n)
else
  granted = math.min(n, math.floor(tokens))
  tokens = tokens - granted
  if granted == 0 then wait = math.ceil((math.min(n, burst) - tokens) / perMs) end
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / perMs) + 1000)
return {granted, wait}
`;

/**
 * The send queue on BullMQ (Redis), for several workers on several machines. One BullMQ job per
 * delivery, id `d<deliveryId>`, so a delivery is never queued twice while it is queued; acked
 * jobs are removed, so a resend queues it again.
 *
 * - reserve: BullMQ's manual processing. A Worker without a processor moves jobs to active with
 *   `getNextJob(token)`, one lock token per reserve (the opaque lease), and the locks are set to
 *   the lease asked for. extend renews them (extendLocks), ack completes (moveToCompleted),
 *   retry delays (moveToDelayed) or releases (moveToWait): all of them check the token, and the
 *   answers that mean the lease was lost (lock missing, lock of another holder, job gone) are
 *   ignored, nothing else. The stalled checker (`startStalledCheckTimer`, every
 *   `stalledIntervalMs`) puts jobs whose lock ran out back in wait: a dead worker's jobs come
 *   back within lease + interval. `maxStalledCount` is unbounded, as the ledger decides whether a
 *   delivery was sent; a redelivered job of a sent delivery is simply acked by the worker.
 * - hold: BullMQ has no per-group pause, so a Redis set holds the paused editions. reserve
 *   parks a job of a held edition it comes across (recorded in a per-edition sorted set with the
 *   time it is due, then delayed for a day) and takes the next, for at most PARK_FOR_MS a call;
 *   retry parks one at once. hold(false) wakes the parked jobs, each due at its time. A park
 *   checks the set again after parking, and a resume clears the set before waking, so a job
 *   parked during a resume is never left asleep (and one a crash left asleep wakes in a day, or
 *   at the next hold(false) of its edition, as every `gazette send` makes).
 * - rate: a token bucket in Redis, shared by all workers on the queue, taken before the jobs and
 *   refunded for what was not handed out. Not BullMQ's limiter, though it does work with
 *   getNextJob (it answers nothing while limited, the wait is in queue.getRateLimitTtl), because it
 *   counts every job moved to active: the jobs reserve parks would spend the rate of the others.
 * - size: BullMQ's counts of jobs not finished, less those of held editions, from a per-edition
 *   set of queued job ids (added on enqueue, where SADD also counts the new jobs honestly across
 *   concurrent enqueues; removed on ack).
 *
 * Timing is BullMQ's: real time. The port's `now` only interprets retry times (see the option).
 * Unlike the SQL queue, a lease that ran out cannot be used even while nobody has taken the
 * job over yet: BullMQ's lock is gone, so such an ack, retry or extend changes nothing and the
 * job comes back (the ledger's claim keeps the delivery from being sent twice).
 */
export async function createBullmqSendQueue(options: BullmqSendQueueOptions): Promise<SendQueue> {
  const prefix = options.prefix ?? 'gazette';
  const queueName = options.queueName ?? 'send';
  const now = options.now ?? (() => new Date());
  const lockDuration = positive(options.leaseMs ?? 60_000, 'leaseMs');
  const stalledInterval = positive(options.stalledIntervalMs ?? Math.max(100, Math.floor(lockDuration / 4)), 'stalledIntervalMs');
  const onError = options.onError ?? ((error: Error) => process.stderr.write(`send queue (bullmq): ${error.message}\n`));
  const rate = options.rate && {
    perMs: positive(options.rate.max, 'rate.max') / positive(options.rate.durationMs, 'rate.durationMs'),
    burst: positive(options.rate.burst ?? Math.max(1, Math.floor(options.rate.max / (options.rate.durationMs / 100))), 'rate.burst'),
  };
  if (queueName.includes(':')) throw new Error(`queue name ${queueName} must not contain ':'`);

  // One connection for the Queue, the Worker and this adapter (BullMQ adds the Worker's blocking
  // connection, unused by manual fetching). maxRetriesPerRequest null: BullMQ's rule for workers.
  const redis = new Redis(options.redisUrl, { maxRetriesPerRequest: null, lazyConnect: true });
  redis.on('error', onError);
  const base = `${prefix}:${queueName}:gazette`;
  const keys = {
    held: `${base}:held`,
    jobs: (editionId: number) => `${base}:jobs:${editionId}`,
    parked: (editionId: number) => `${base}:parked:${editionId}`,
    rate: `${base}:rate`,
  };

  let queue: Queue<JobData, null, 'send'> | undefined;
  let worker: Worker<JobData, null, 'send'> | undefined;
  const stop = new AbortController();
  try {
    let refused: Error | undefined;
    redis.once('error', (error: Error) => (refused ??= error));
    await withTimeout(redis.connect(), options.connectTimeoutMs ?? 10_000, 'no answer').catch((error: unknown) => {
      const reason = refused ?? (error as Error);
      throw new Error(`cannot reach Redis at ${maskPassword(options.redisUrl)}: ${reason.message}`, { cause: reason });
    });
    queue = new Queue<JobData, null, 'send'>(queueName, { connection: redis, prefix });
    worker = new Worker<JobData, null, 'send'>(queueName, null, {
      connection: redis,
      prefix,
      autorun: false,
      lockDuration,
      stalledInterval,
      maxStalledCount: NEVER_FAIL_STALLED,
      removeOnComplete: { count: 0 },
      // Leases are renewed by the worker's heartbeat (extend), never by BullMQ on its own.
      skipLockRenewal: true,
    });
    queue.on('error', onError);
    worker.on('error', onError);
    await Promise.all([queue.waitUntilReady(), worker.waitUntilReady()]);
    // Manual processing must start the stalled checker itself: it runs now, then every interval.
    await worker.startStalledCheckTimer();
  } catch (error) {
    await worker?.close(true).catch(() => {});
    await queue?.close().catch(() => {});
    redis.disconnect();
    throw error;
  }
  const q = queue;
  const w = worker;

  const jobId = (deliveryId: number) => `d${deliveryId}`;
  // A handle on a job by id, for the calls that need only its id and options (no round trip).
  const handle = (deliveryId: number, editionId: number): SendJob => new Job(w, JOB_NAME, { deliveryId, editionId }, { ...JOB_OPTIONS }, jobId(deliveryId));
  const tokenOf = (job: QueuedJob) => (job.lease as BullmqLease).opaque;
  const heldEditions = async () => new Set((await redis.smembers(keys.held)).map(Number));

  const limiter = rate && {
    async call(n: number): Promise<[granted: number, waitMs: number]> {
      const answer = await redis.eval(TOKEN_BUCKET, 1, keys.rate, rate.perMs, rate.burst, n);
      if (!Array.isArray(answer)) throw new Error(`unexpected answer of the rate limiter: ${String(answer)}`);
      return [Number(answer[0]), Number(answer[1])];
    },
    /** Up to n tokens; waits (without polling) while there are none, at most RATE_WAIT_MS. */
    async take(n: number): Promise<number> {
      const giveUp = Date.now() + RATE_WAIT_MS;
      for (;;) {
        const [granted, waitMs] = await this.call(n);
        const left = giveUp - Date.now();
        if (granted > 0 || left <= 0 || stop.signal.aborted) return granted;
        await sleep(Math.min(Math.max(1, waitMs), left), stop.signal);
      }
    },
    async giveBack(n: number): Promise<void> {
      if (n > 0) await this.call(-n);
    },
  };

  // Wakes parked jobs: due now, or at the time their retry asked for.
  const unpark = async (editionId: number, parked: readonly { id: string; due: number }[]) => {
    for (const chunk of chunks(parked, CHUNK)) {
      const at = Date.now();
      await Promise.all(
        chunk.map(({ id, due }) => {
          const job: SendJob = new Job(w, JOB_NAME, { deliveryId: 0, editionId }, { ...JOB_OPTIONS }, id);
          return ignoring(NOT_PARKED, due > at ? job.changeDelay(due - at) : job.promote());
        }),
      );
      await redis.zrem(keys.parked(editionId), ...chunk.map((p) => p.id));
    }
  };

  // Puts leased jobs of held editions to sleep until their edition is resumed.
  const park = async (entries: readonly { job: SendJob; token: string; due: number }[]) => {
    if (entries.length === 0) return;
    // Recorded before it sleeps, so that no crash leaves a job asleep that no resume knows of. NX:
    // a record already there (another holder's, had this lease been lost) is left as it is.
    const record = redis.pipeline();
    for (const { job, due } of entries) record.zadd(keys.parked(job.data.editionId), 'NX', due, job.id!);
    const recorded = (await exec(record)).map((added) => added === 1);
    const until = Date.now() + PARK_MS;
    const moved = await Promise.all(entries.map(({ job, token }) => ignoring(LEASE_LOST, job.moveToDelayed(until, token))));
    const asleep = entries.filter((_, i) => moved[i]);
    // A lease lost meanwhile: the job is not ours to park; forget the records made for it.
    const forget = redis.pipeline();
    for (const [i, { job }] of entries.entries()) if (!moved[i] && recorded[i]) forget.zrem(keys.parked(job.data.editionId), job.id!);
    if (forget.length > 0) await exec(forget);
    // A resume may have run since the edition was read as held: wake what it could not see.
    const editions = [...new Set(asleep.map((e) => e.job.data.editionId))];
    if (editions.length === 0) return;
    const check = redis.pipeline();
    for (const editionId of editions) check.sismember(keys.held, String(editionId));
    const stillHeld = (await exec(check)).map((answer) => answer === 1);
    for (const [i, editionId] of editions.entries()) {
      if (stillHeld[i]) continue;
      await unpark(
        editionId,
        asleep.filter((e) => e.job.data.editionId === editionId).map((e) => ({ id: e.job.id!, due: e.due })),
      );
    }
  };

  // Deletes the acked jobs from their editions' sets of queued jobs.
  const forgetQueued = async (jobs: readonly QueuedJob[]) => {
    if (jobs.length === 0) return;
    const pipeline = redis.pipeline();
    for (const [editionId, ids] of groupBy(jobs, (j) => j.editionId)) {
      for (const chunk of chunks(ids, CHUNK)) pipeline.srem(keys.jobs(editionId), ...chunk.map((j) => jobId(j.deliveryId)));
    }
    await exec(pipeline);
  };

  let closing: Promise<void> | undefined;

  return {
    async enqueue(jobs) {
      const unique = [...new Map(jobs.map((j) => [j.deliveryId, j] as const)).values()].sort((a, b) => a.deliveryId - b.deliveryId);
      let added = 0;
      for (const chunk of chunks(unique, CHUNK)) {
        // Membership first: SADD says which were not queued, atomically across concurrent enqueues.
        const index = redis.pipeline();
        for (const [editionId, members] of groupBy(chunk, (j) => j.editionId)) index.sadd(keys.jobs(editionId), ...members.map((j) => jobId(j.deliveryId)));
        added += (await exec(index)).reduce<number>((sum, n) => sum + Number(n), 0);
        // Then every job, new or not: a job id BullMQ already has is left as it is (leased,
        // delayed, parked), and one lost since (a crash between the two steps) is added again.
        await q.addBulk(
          chunk.map(({ deliveryId, editionId }) => ({
            name: JOB_NAME,
            data: { deliveryId, editionId },
            opts: { ...JOB_OPTIONS, jobId: jobId(deliveryId) },
          })),
        );
      }
      return added;
    },

    async reserve(limit, leaseMs) {
      if (limit <= 0 || closing) return [];
      const permits = limiter ? await limiter.take(limit) : limit;
      if (permits === 0) return [];
      const token = randomBytes(9).toString('base64url');
      const taken: SendJob[] = [];
      // Parking through a long run of held jobs must neither outlast the locks of the jobs already
      // taken nor keep the worker waiting: the rest is parked by the next reserves.
      const deadline = Date.now() + Math.max(50, Math.min(PARK_FOR_MS, leaseMs / 4, lockDuration / 4));
      try {
        const held = await heldEditions();
        for (;;) {
          const want = Math.min(permits - taken.length, WAVE);
          const wave = (await Promise.all(Array.from({ length: want }, () => w.getNextJob(token, { block: false }) as Promise<SendJob | undefined>))).filter(
            (job): job is SendJob => job !== undefined,
          );
          const toPark: { job: SendJob; token: string; due: number }[] = [];
          for (const job of wave) {
            if (!isJobData(job.data)) await job.moveToFailed(new Error('not a Gazette send job'), token, false);
            else if (held.has(job.data.editionId)) toPark.push({ job, token, due: Date.now() });
            else taken.push(job);
          }
          await park(toPark);
          if (wave.length < want || taken.length >= permits || Date.now() >= deadline) break;
        }
      } finally {
        if (limiter) await limiter.giveBack(permits - taken.length);
      }
      let kept = taken;
      if (taken.length > 0 && leaseMs !== lockDuration) {
        const lost = new Set<string>();
        for (const chunk of chunks(taken, CHUNK)) {
          for (const id of await w.extendJobLocks(chunk.map((j) => j.id!), chunk.map(() => token), leaseMs)) lost.add(id);
        }
        kept = taken.filter((j) => !lost.has(j.id!));
      }
      const lease: BullmqLease = { opaque: token };
      return kept.map((j) => ({ deliveryId: j.data.deliveryId, editionId: j.data.editionId, lease })).sort((a, b) => a.deliveryId - b.deliveryId);
    },

    async extend(jobs, leaseMs) {
      for (const chunk of chunks(jobs, CHUNK)) {
        // Locks of another holder, or gone, are left alone (the answer lists them; nothing to do).
        await w.extendJobLocks(chunk.map((j) => jobId(j.deliveryId)), chunk.map(tokenOf), leaseMs);
      }
    },

    async ack(jobs) {
      for (const chunk of chunks(jobs, CHUNK)) {
        const completed = await Promise.all(chunk.map((j) => ignoring(LEASE_LOST, handle(j.deliveryId, j.editionId).moveToCompleted(null, tokenOf(j), false))));
        await forgetQueued(chunk.filter((_, i) => completed[i]));
      }
    },

    async retry(jobs, at) {
      if (jobs.length === 0) return;
      const delayMs = Math.max(0, at.getTime() - now().getTime());
      const held = await heldEditions();
      const due = Date.now() + delayMs;
      await park(jobs.filter((j) => held.has(j.editionId)).map((j) => ({ job: handle(j.deliveryId, j.editionId), token: tokenOf(j), due })));
      for (const chunk of chunks(
        jobs.filter((j) => !held.has(j.editionId)),
        CHUNK,
      )) {
        await Promise.all(
          chunk.map((j) => {
            const job = handle(j.deliveryId, j.editionId);
            return ignoring(LEASE_LOST, delayMs === 0 ? job.moveToWait(tokenOf(j)) : job.moveToDelayed(due, tokenOf(j)));
          }),
        );
      }
    },

    async hold(editionId, held) {
      if (held) {
        await redis.sadd(keys.held, String(editionId));
        return;
      }
      // Let go first, then wake: a park that runs meanwhile sees the edition let go and wakes itself.
      await redis.srem(keys.held, String(editionId));
      for (;;) {
        const flat = await redis.zrange(keys.parked(editionId), '0', String(CHUNK - 1), 'WITHSCORES');
        if (flat.length === 0) return;
        const parked: { id: string; due: number }[] = [];
        for (let i = 0; i + 1 < flat.length; i += 2) parked.push({ id: flat[i]!, due: Number(flat[i + 1]) });
        await unpark(editionId, parked);
      }
    },

    async size() {
      const counts = await q.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children');
      const total = Object.values(counts).reduce((sum, n) => sum + n, 0);
      const held = [...(await heldEditions())];
      if (held.length === 0) return total;
      const pipeline = redis.pipeline();
      for (const editionId of held) pipeline.scard(keys.jobs(editionId));
      const ofHeld = (await exec(pipeline)).reduce<number>((sum, n) => sum + Number(n), 0);
      return Math.max(0, total - ofHeld);
    },

    close() {
      closing ??= (async () => {
        stop.abort();
        await w.close();
        await q.close();
        await redis.quit().catch(() => redis.disconnect());
      })();
      return closing;
    },
  };
}

function isJobData(data: unknown): data is JobData {
  if (typeof data !== 'object' || data === null) return false;
  const { deliveryId, editionId } = data as Record<string, unknown>;
  return Number.isSafeInteger(deliveryId) && Number.isSafeInteger(editionId);
}

/** Resolves true when `operation` succeeded, false when it failed with one of `codes` (a BullMQ error code); rethrows anything else. */
async function ignoring(codes: ReadonlySet<number>, operation: Promise<unknown>): Promise<boolean> {
  try {
    await operation;
    return true;
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    if (error instanceof Error && typeof code === 'number' && codes.has(code)) return false;
    throw error;
  }
}

/** The replies of a pipeline, throwing the first error. */
async function exec(pipeline: ReturnType<Redis['pipeline']>): Promise<unknown[]> {
  const results = (await pipeline.exec()) ?? [];
  return results.map(([error, reply]) => {
    if (error) throw error;
    return reply;
  });
}

function groupBy<T>(items: readonly T[], key: (item: T) => number): Map<number, T[]> {
  const groups = new Map<number, T[]>();
  for (const item of items) {
    const group = groups.get(key(item));
    if (group) group.push(item);
    else groups.set(key(item), [item]);
  }
  return groups;
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function positive(value: number, name: string): number {
  if (!(Number.isFinite(value) && value > 0)) throw new Error(`${name} must be a positive number, not ${value}`);
  return value;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${message} within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

function maskPassword(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'the configured URL';
  }
}
