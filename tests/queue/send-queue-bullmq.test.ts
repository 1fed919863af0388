import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { QueuedJob, SendQueue } from '../../src/delivery/send-queue.ts';
import { createBullmqSendQueue, type BullmqSendQueueOptions } from '../../src/queue/send-queue-bullmq.ts';
import { REDIS_URL, redisAvailable } from '../helpers/databases.ts';
import { deleteKeys, testPrefix } from '../helpers/redis-keys.ts';

// What the contract suite (queue-contract.test.ts) cannot see from the port: the BullMQ jobs
// themselves, a worker process that dies, the parking of held editions, the shared rate.

const HOLDER = fileURLToPath(new URL('../fixtures/queue/bullmq-holder.ts', import.meta.url));
const LEASE = 30_000;
const STALLED_INTERVAL_MS = 100;

const jobs = (ids: number[], editionId = 1) => ids.map((deliveryId) => ({ deliveryId, editionId }));
const ids = (taken: QueuedJob[]) => taken.map((j) => j.deliveryId).sort((a, b) => a - b);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.runIf(await redisAvailable())('BullMQ send queue', () => {
  const prefix = testPrefix();
  let test = 0;
  let queueName = '';
  const opened: SendQueue[] = [];
  const closers: (() => Promise<unknown>)[] = [];

  /** A send queue as one worker has it (each its own connection). */
  const make = async (options: Partial<BullmqSendQueueOptions> = {}) => {
    const queue = await createBullmqSendQueue({ redisUrl: REDIS_URL, prefix, queueName, leaseMs: LEASE, stalledIntervalMs: STALLED_INTERVAL_MS, ...options });
    opened.push(queue);
    return queue;
  };
  /** BullMQ's own view of the queue, to look at the jobs themselves. */
  const inside = () => {
    const connection = new Redis(REDIS_URL);
    const queue = new Queue(queueName, { connection, prefix });
    closers.push(async () => {
      await queue.close();
      await connection.quit();
    });
    return queue;
  };

  beforeEach(() => {
    queueName = `bullmq-${test++}`;
  });
  afterEach(async () => {
    for (const queue of opened.splice(0)) await queue.close();
    for (const close of closers.splice(0)) await close();
  });
  afterAll(async () => {
    await deleteKeys(REDIS_URL, prefix);
  });

  it('a delivery is one job (id d<delivery>), even enqueued by two workers at once; an acked one can be queued again', async () => {
    const [a, b] = [await make(), await make()];
    expect(await a.enqueue(jobs([1, 2]))).toBe(2);
    expect(await b.enqueue(jobs([1, 2]))).toBe(0);
    const many = jobs(range(3, 402));
    const [x, y] = await Promise.all([a.enqueue(many), b.enqueue(many)]);
    expect(x + y).toBe(400);
    const bull = inside();
    expect(await bull.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed')).toEqual({ waiting: 402, active: 0, delayed: 0, completed: 0, failed: 0 });
    const job = await bull.getJob('d1');
    expect(job?.data).toEqual({ deliveryId: 1, editionId: 1 });
    expect(job?.opts).toMatchObject({ attempts: 1, removeOnComplete: true });
    expect(job?.opts.backoff).toBeUndefined();

    const [first] = await a.reserve(1, LEASE);
    expect(first?.deliveryId).toBe(1);
    await a.ack([first!]);
    // Removed on completion, so that a resend of the delivery queues it again.
    expect(await bull.getJob('d1')).toBeUndefined();
    expect(await bull.getJobCounts('completed')).toEqual({ completed: 0 });
    expect(await b.enqueue(jobs([1, 2]))).toBe(1);
    expect(await a.size()).toBe(402);
  });

  it("a killed worker's jobs come back once its lease has run out, not before", async () => {
    const lease = 800;
    const survivor = await make();
    await survivor.enqueue(jobs([1, 2, 3]));
    const holder = spawn(process.execPath, ['--import', 'tsx', HOLDER, REDIS_URL, prefix, queueName, '3', String(lease), String(STALLED_INTERVAL_MS)], {
      stdio: ['ignore', 'pipe', 'inherit'],
      // tsx would otherwise keep a compile cache in the system temp folder, which tests leave as they found it.
      env: { ...process.env, TSX_DISABLE_CACHE: '1' },
    });
    const exited = once(holder, 'exit');
    let line: Buffer;
    try {
      [line] = (await Promise.race([once(holder.stdout, 'data'), exited.then(() => Promise.reject(new Error('the holder exited before it took the jobs')))])) as [Buffer];
    } finally {
      holder.kill('SIGKILL');
    }
    const takenAt = Date.now();
    await exited;
    expect(JSON.parse(line.toString())).toEqual([1, 2, 3]);

    const back: number[] = [];
    let firstBack = 0;
    while (back.length < 3 && Date.now() - takenAt < lease + 3_000) {
      const got = await survivor.reserve(10, LEASE);
      if (got.length > 0 && firstBack === 0) firstBack = Date.now() - takenAt;
      back.push(...ids(got));
      await sleep(20);
    }
    expect(back.sort()).toEqual([1, 2, 3]);
    // The lease began a little before its ids were printed; the stalled check runs every 100 ms.
    expect(firstBack).toBeGreaterThanOrEqual(lease - 150);
    expect(firstBack).toBeLessThanOrEqual(lease + STALLED_INTERVAL_MS + 300);
  });

  it("reserve parks a held edition's jobs out of the way and takes the next; a resume brings them back at once", async () => {
    const [a, b] = [await make(), await make()];
    await a.enqueue(jobs([1, 2, 3], 10));
    await a.enqueue(jobs([4], 20));
    await a.hold(10, true);
    expect(ids(await b.reserve(10, LEASE))).toEqual([4]);
    const bull = inside();
    // Parked: delayed far out, so no reserve moves them again until the edition is let go.
    expect(await bull.getJobCounts('waiting', 'active', 'delayed')).toEqual({ waiting: 0, active: 1, delayed: 3 });
    expect(await bull.getJobState('d1')).toBe('delayed');
    expect(await a.size()).toBe(1);
    expect(await b.reserve(10, LEASE)).toEqual([]);

    await a.hold(10, false);
    expect(await bull.getJobCounts('waiting', 'delayed')).toEqual({ waiting: 3, delayed: 0 });
    expect(await a.size()).toBe(4);
    expect(ids(await b.reserve(10, LEASE))).toEqual([1, 2, 3]);
  });

  it('a job given back while its edition is held is parked at once, and keeps its retry time across the resume', async () => {
    const [a, b] = [await make(), await make()];
    await a.enqueue(jobs([1], 30));
    await a.enqueue(jobs([2], 40));
    const taken = await a.reserve(2, LEASE);
    expect(ids(taken)).toEqual([1, 2]);
    await a.hold(30, true);
    await a.hold(40, true);
    const [one, two] = taken;
    await a.retry([one!], new Date());
    await a.retry([two!], new Date(Date.now() + 600));
    const bull = inside();
    expect(await bull.getJobCounts('waiting', 'active', 'delayed')).toEqual({ waiting: 0, active: 0, delayed: 2 });
    expect(await a.size()).toBe(0);

    await b.hold(30, false);
    await b.hold(40, false);
    expect(ids(await b.reserve(10, LEASE))).toEqual([1]);
    expect(await bull.getJobState('d2')).toBe('delayed');
    await sleep(700);
    expect(ids(await b.reserve(10, LEASE))).toEqual([2]);
  });

  it("a stale lease given back while its edition is held leaves the current holder's parked job as it is", async () => {
    const [a, b] = [await make(), await make()];
    await a.enqueue(jobs([1], 50));
    const stale = await a.reserve(1, 300);
    await sleep(300 + STALLED_INTERVAL_MS + 150);
    const current = await b.reserve(1, LEASE);
    expect(ids(current)).toEqual([1]);
    await b.hold(50, true);
    await b.retry(current, new Date());
    await a.retry(stale, new Date());
    await a.retry(stale, new Date(Date.now() + 60_000));
    expect(await inside().getJobState('d1')).toBe('delayed');
    await a.hold(50, false);
    expect(ids(await a.reserve(1, LEASE))).toEqual([1]);
  });

  it('pauses and resumes racing with reserves leave no job asleep', async () => {
    const [a, b, operator] = [await make(), await make(), await make()];
    const total = 600;
    await a.enqueue(jobs(range(1, total / 2), 1));
    await a.enqueue(jobs(range(total / 2 + 1, total), 2));
    const sent: number[] = [];
    const givenBack = new Set<number>();
    let toggling = true;
    const toggle = async () => {
      for (let i = 0; toggling; i++) {
        await operator.hold(1 + (i % 2), i % 4 < 2);
        await sleep(1);
      }
    };
    const work = async (queue: SendQueue) => {
      for (let idle = 0; idle < 3; ) {
        const batch = await queue.reserve(20, LEASE);
        // Even ones are given back once, as a worker does with what it holds of an edition just
        // paused (parked, if it is held by then); the rest are sent.
        const back = batch.filter((j) => j.deliveryId % 2 === 0 && !givenBack.has(j.deliveryId));
        for (const j of back) givenBack.add(j.deliveryId);
        await queue.retry(back, new Date());
        const done = batch.filter((j) => !back.includes(j));
        await queue.ack(done);
        sent.push(...done.map((j) => j.deliveryId));
        idle = batch.length === 0 ? idle + 1 : 0;
        if (batch.length === 0) await sleep(5);
      }
    };
    const toggler = toggle();
    await Promise.all([work(a), work(b), sleep(800)]);
    toggling = false;
    await toggler;
    await operator.hold(1, false);
    await operator.hold(2, false);
    await Promise.all([work(a), work(b)]);
    expect(sent.sort((x, y) => x - y)).toEqual(range(1, total));
    expect(await a.size()).toBe(0);
    expect(await inside().getJobCounts('waiting', 'active', 'delayed')).toEqual({ waiting: 0, active: 0, delayed: 0 });
  });

  it('two workers sharing a rate of 50 a second take about 50 a second between them, waiting rather than polling', async () => {
    const rate = { max: 50, durationMs: 1000 };
    const [a, b] = [await make({ rate }), await make({ rate })];
    await a.enqueue(jobs(range(1, 1_000)));
    let calls = 0;
    const start = Date.now();
    const take = async (queue: SendQueue) => {
      let taken = 0;
      while (Date.now() - start < 2_000) {
        calls += 1;
        taken += (await queue.reserve(25, LEASE)).length;
      }
      return taken;
    };
    const [x, y] = await Promise.all([take(a), take(b)]);
    const perSecond = (x + y) / ((Date.now() - start) / 1000);
    expect(perSecond).toBeGreaterThanOrEqual(40);
    expect(perSecond).toBeLessThanOrEqual(60);
    expect(x).toBeGreaterThan(0);
    expect(y).toBeGreaterThan(0);
    // A reserve held back by the rate waits for it (a few batches a second), it does not spin.
    expect(calls).toBeLessThan(100);
  });

  it('polling an empty queue spends none of the rate: what a reserve does not hand out goes back', async () => {
    const rate = { max: 50, durationMs: 1000, burst: 25 };
    const queue = await make({ rate });
    for (let i = 0; i < 20; i++) expect(await queue.reserve(25, LEASE)).toEqual([]);
    await queue.enqueue(jobs(range(1, 100)));
    const start = Date.now();
    // The whole burst at once; had the polls kept their tokens, this would wait half a second for them.
    expect(await queue.reserve(25, LEASE)).toHaveLength(25);
    expect(Date.now() - start).toBeLessThan(250);
  });

  it('a lease that ran out, even with nobody holding the job since, no longer acks it: the job comes back', async () => {
    const queue = await make();
    await queue.enqueue(jobs([1]));
    const taken = await queue.reserve(1, 300);
    await sleep(300 + STALLED_INTERVAL_MS + 150);
    await queue.ack(taken);
    expect(await queue.size()).toBe(1);
    expect(ids(await queue.reserve(1, LEASE))).toEqual([1]);
  });

  it('only a lost lease is ignored: other failures (here, a closed queue) are thrown', async () => {
    const queue = await make();
    await queue.enqueue(jobs([1]));
    const taken = await queue.reserve(1, LEASE);
    await queue.close();
    await expect(queue.ack(taken)).rejects.toThrow();
    await expect(queue.retry(taken, new Date())).rejects.toThrow();
  });
});
