import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { QueuedJob, SendQueue } from '../../src/delivery/send-queue.ts';
import { createBullmqSendQueue } from '../../src/queue/send-queue-bullmq.ts';
import { createSqlSendQueue } from '../../src/queue/send-queue-sql.ts';
import { openStore, type Store } from '../../src/store/database.ts';
import { BACKENDS as ENGINES, privateDatabases, REDIS_URL, redisAvailable, type TestDatabase } from '../helpers/databases.ts';
import { deleteKeys, testPrefix } from '../helpers/redis-keys.ts';

const T0 = new Date('2026-01-01T00:00:00Z').getTime();
const LEASE = 30_000;

/**
 * How time passes for one backend. The SQL queues read a clock the test sets, to the
 * millisecond and back and forth. BullMQ's locks expire in Redis, on real time: its tests
 * wait for real, with short leases, and allow for the stalled check that hands out a job
 * whose lease ended. Offsets count from the start of each test.
 */
interface SuiteClock {
  /** What the queues are given as their clock. */
  now(): Date;
  /** Starts a test: offsets count from here. */
  start(): void;
  /** Goes to `offset` ms into the test: sets the fake clock, or sleeps until then (never back). */
  at(offset: number): Promise<void>;
  /** The latest offset at which what is due at `offset` (a lease ending, a retry) is surely not due yet. */
  before(offset: number): number;
  /** The earliest offset at which what is due at `offset` is surely due. */
  after(offset: number): number;
  /** A lease short enough to wait out. */
  lease: number;
  /** True when the clock can be set anywhere, back too (a fake clock). */
  settable: boolean;
}

/** One backend of the send queue: its clock, a factory of queues (each as another worker would have it), a way to empty it. */
interface QueueBackend {
  name: string;
  clock: SuiteClock;
  setUp(): Promise<{ make(): Promise<SendQueue>; reset(): Promise<void>; tearDown(): Promise<void> }>;
}

const databases = privateDatabases();
afterAll(() => databases.close());

/** The fake clock of the SQL queues: exact to the millisecond. */
function fakeClock(): SuiteClock {
  let clock = T0;
  return {
    now: () => new Date(clock),
    start: () => {
      clock = T0;
    },
    at: async (offset) => {
      clock = T0 + offset;
    },
    before: (offset) => offset - 1,
    after: (offset) => offset,
    lease: 1_000,
    settable: true,
  };
}

/**
 * Real time, for BullMQ: a lease of `lease` ms, handed out again once it ended and the stalled
 * check (every `stalledIntervalMs`) has run; `margin` covers timers that fire late.
 */
function realClock(lease: number, stalledIntervalMs: number, margin = 150): SuiteClock {
  let start = Date.now();
  return {
    now: () => new Date(),
    start: () => {
      start = Date.now();
    },
    at: async (offset) => {
      const wait = start + offset - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    },
    before: (offset) => offset - margin,
    after: (offset) => offset + stalledIntervalMs + margin,
    lease,
    settable: false,
  };
}

/** The SQL queue on one database engine. */
function sqlBackend(engine: 'sqlite' | 'postgres'): QueueBackend {
  const clock = fakeClock();
  return {
    name: `sql queue on ${engine}`,
    clock,
    async setUp() {
      const database: TestDatabase = await databases.fresh(engine);
      const stores: Store[] = [];
      const open = async () => {
        const store = await openStore({ databaseUrl: database.url, dataDir: database.dataDir });
        stores.push(store);
        return store;
      };
      const first = await open();
      // A second connection, as a second worker process would have.
      const second = await open();
      let turn = 0;
      return {
        make: async () => createSqlSendQueue(turn++ % 2 === 0 ? first : second, clock.now),
        async reset() {
          await first.db.deleteFrom('queue_jobs').execute();
          await first.db.deleteFrom('queue_holds').execute();
        },
        async tearDown() {
          for (const store of stores) await store.close();
          await database.drop();
        },
      };
    },
  };
}

/** How often the BullMQ queues of the suite look for leases that ended. */
const STALLED_INTERVAL_MS = 100;

/**
 * The BullMQ queue on Redis: a key prefix of this run's own (every key of it deleted at the end)
 * and a queue of each test's own; each queue its own connection, as another worker's.
 */
function bullmqBackend(): QueueBackend {
  const prefix = testPrefix();
  let test = 0;
  return {
    name: 'bullmq queue on redis',
    clock: realClock(800, STALLED_INTERVAL_MS),
    async setUp() {
      return {
        make: () => createBullmqSendQueue({ redisUrl: REDIS_URL, prefix, queueName: `contract-${test}`, leaseMs: LEASE, stalledIntervalMs: STALLED_INTERVAL_MS }),
        async reset() {
          test += 1;
        },
        async tearDown() {
          await deleteKeys(REDIS_URL, prefix);
        },
      };
    },
  };
}

// Postgres only when it answers, Redis likewise (tests/helpers/databases.ts says why when they do not).
const BACKENDS: QueueBackend[] = [...ENGINES.map(sqlBackend), ...((await redisAvailable()) ? [bullmqBackend()] : [])];

const jobs = (ids: number[], editionId = 1) => ids.map((deliveryId) => ({ deliveryId, editionId }));
const ids = (taken: QueuedJob[]) => taken.map((j) => j.deliveryId).sort((a, b) => a - b);

describe.each(BACKENDS)('SendQueue contract: $name', (backend) => {
  const { clock } = backend;
  let env: Awaited<ReturnType<QueueBackend['setUp']>>;
  let queue: SendQueue;
  let other: SendQueue;

  beforeAll(async () => {
    env = await backend.setUp();
  });
  beforeEach(async () => {
    await env.reset();
    queue = await env.make();
    other = await env.make();
    clock.start();
  });
  afterEach(async () => {
    await queue.close();
    await other.close();
  });
  afterAll(async () => {
    await env.tearDown();
  });

  it('enqueue returns how many were new and ignores deliveries already queued', async () => {
    expect(await queue.enqueue([])).toBe(0);
    expect(await queue.enqueue(jobs([1, 2, 3]))).toBe(3);
    expect(await queue.enqueue(jobs([2, 3, 4]))).toBe(1);
    expect(await queue.enqueue(jobs([5, 5]))).toBe(1);
    expect(await queue.size()).toBe(5);
  });

  it('enqueueing a job that is leased leaves the lease alone', async () => {
    await queue.enqueue(jobs([1]));
    const [job] = await queue.reserve(1, LEASE);
    await clock.at(1);
    expect(await queue.enqueue(jobs([1]))).toBe(0);
    expect(await other.reserve(10, LEASE)).toEqual([]);
    await queue.ack([job!]);
    expect(await queue.size()).toBe(0);
  });

  it('reserve respects the limit and takes due jobs oldest first, then by delivery', async () => {
    await queue.enqueue(jobs([9, 3, 5]));
    await clock.at(10);
    await queue.enqueue(jobs([2]));
    await clock.at(20);
    await queue.enqueue(jobs([1]));
    await clock.at(30);
    expect(ids(await queue.reserve(2, LEASE))).toEqual([3, 5]);
    expect(ids(await other.reserve(2, LEASE))).toEqual([2, 9]);
    expect(ids(await queue.reserve(2, LEASE))).toEqual([1]);
    expect(await other.reserve(2, LEASE)).toEqual([]);
  });

  // A clock set back and forth: jobs enqueued at a later time are due then (the SQL queues'
  // `available_at`). Real time only goes forward, and BullMQ makes every new job due at once.
  it.runIf(clock.settable)('a job enqueued at a later time of the clock is due from then on', async () => {
    await clock.at(50);
    await queue.enqueue(jobs([1]));
    await clock.at(10);
    await queue.enqueue(jobs([9, 3]));
    await clock.at(20);
    await queue.enqueue(jobs([2]));
    await clock.at(1_000);
    await queue.enqueue(jobs([7]));
    await clock.at(100);
    expect(ids(await queue.reserve(2, LEASE))).toEqual([3, 9]);
    expect(ids(await other.reserve(2, LEASE))).toEqual([1, 2]);
    expect(await queue.reserve(2, LEASE)).toEqual([]);
    await clock.at(1_000);
    expect(ids(await queue.reserve(5, LEASE))).toEqual([7]);
  });

  it('a job carries its delivery and edition, and every reserve a lease of its own', async () => {
    await queue.enqueue([{ deliveryId: 11, editionId: 4 }]);
    const [first] = await queue.reserve(1, LEASE);
    expect(first).toMatchObject({ deliveryId: 11, editionId: 4 });
    await queue.retry([first!], clock.now());
    const [second] = await other.reserve(1, LEASE);
    expect(second).toMatchObject({ deliveryId: 11, editionId: 4 });
    expect(second!.lease).not.toEqual(first!.lease);
  });

  it('a held edition is skipped by reserve and not counted by size until let go', async () => {
    await queue.enqueue(jobs([1, 2], 10));
    await queue.enqueue(jobs([3], 20));
    await queue.hold(10, true);
    await queue.hold(10, true);
    expect(await queue.size()).toBe(1);
    expect(ids(await queue.reserve(10, LEASE))).toEqual([3]);
    expect(await other.reserve(10, LEASE)).toEqual([]);
    await other.hold(10, false);
    expect(await queue.size()).toBe(3);
    expect(ids(await queue.reserve(10, LEASE))).toEqual([1, 2]);
  });

  it('a reserved job is invisible until its lease ends, then due again (a dead worker)', async () => {
    const lease = clock.lease;
    await queue.enqueue(jobs([1, 2]));
    expect(ids(await queue.reserve(1, lease))).toEqual([1]);
    await clock.at(clock.before(lease));
    expect(ids(await other.reserve(5, lease))).toEqual([2]);
    expect(await other.reserve(5, lease)).toEqual([]);
    await clock.at(clock.after(lease));
    expect(ids(await other.reserve(5, lease))).toEqual([1]);
  });

  it('extend keeps a job invisible past its first lease (the heartbeat)', async () => {
    const lease = clock.lease;
    const renewed = Math.round(lease * 0.8);
    const ends = renewed + lease;
    // Past the moment the first lease would have let the job go, before the renewed one ends.
    const meanwhile = Math.max(clock.after(lease), clock.before(ends));
    expect(meanwhile).toBeLessThanOrEqual(clock.before(ends));
    await queue.enqueue(jobs([1]));
    const held = await queue.reserve(1, lease);
    await clock.at(renewed);
    await queue.extend(held, lease);
    await clock.at(meanwhile);
    expect(await other.reserve(5, lease)).toEqual([]);
    await clock.at(clock.after(ends));
    expect(ids(await other.reserve(5, lease))).toEqual([1]);
  });

  it('ack, retry and extend with a lease another worker has since taken over change nothing', async () => {
    const lease = clock.lease;
    await queue.enqueue(jobs([1]));
    const stale = await queue.reserve(1, lease);
    const takeover = clock.after(lease);
    await clock.at(takeover);
    const current = await other.reserve(1, lease);
    expect(ids(current)).toEqual([1]);
    await queue.ack(stale);
    await queue.retry(stale, clock.now());
    await queue.extend(stale, 60_000);
    expect(await queue.size()).toBe(1);
    expect(await queue.reserve(1, lease)).toEqual([]);
    await clock.at(clock.after(takeover + lease));
    // The current holder's lease was not extended by the stale one: it ends on time.
    expect(ids(await queue.reserve(1, lease))).toEqual([1]);
  });

  it('acks thousands of jobs in one call', async () => {
    const many = 2_500;
    await queue.enqueue(jobs(Array.from({ length: many }, (_, i) => i + 1)));
    const held = await queue.reserve(many, LEASE);
    expect(held).toHaveLength(many);
    await queue.ack(held);
    expect(await queue.size()).toBe(0);
  });

  it('retry(at) makes a job due at `at` and not before; at now it is due at once', async () => {
    const delay = clock.lease;
    await queue.enqueue(jobs([1, 2]));
    const [one, two] = await queue.reserve(2, LEASE);
    await queue.retry([one!], new Date(clock.now().getTime() + delay));
    await queue.retry([two!], clock.now());
    expect(await queue.size()).toBe(2);
    expect(ids(await other.reserve(5, 600_000))).toEqual([2]);
    await clock.at(clock.before(delay));
    expect(await other.reserve(5, 600_000)).toEqual([]);
    await clock.at(clock.after(delay));
    expect(ids(await other.reserve(5, 600_000))).toEqual([1]);
  });

  it('two reservers never get the same job', async () => {
    const total = 500;
    const all = Array.from({ length: total }, (_, i) => ({ deliveryId: i + 1, editionId: 1 + (i % 3) }));
    expect(await queue.enqueue(all)).toBe(total);
    const drain = async (q: SendQueue): Promise<number[]> => {
      const got: number[] = [];
      for (;;) {
        const batch = await q.reserve(50, 60_000);
        if (batch.length === 0) return got;
        got.push(...batch.map((j) => j.deliveryId));
      }
    };
    const [a, b] = await Promise.all([drain(queue), drain(other)]);
    const union = [...a, ...b];
    expect(union.filter((id, i) => union.indexOf(id) !== i)).toEqual([]);
    expect([...new Set(union)].sort((x, y) => x - y)).toEqual(all.map((j) => j.deliveryId));
    expect(await queue.size()).toBe(total);
  });
});
