import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { QueuedJob, SendQueue } from '../../src/delivery/send-queue.ts';
import { createSqlSendQueue } from '../../src/queue/send-queue-sql.ts';
import { openStore, type Store } from '../../src/store/database.ts';
import { BACKENDS as ENGINES, privateDatabases, type TestDatabase } from '../helpers/databases.ts';

const T0 = new Date('2026-01-01T00:00:00Z').getTime();
const LEASE = 30_000;

/** One backend of the send queue: a factory over a clock the test moves, and a way to empty it. */
interface QueueBackend {
  name: string;
  setUp(): Promise<{ make(now: () => Date): SendQueue; reset(): Promise<void>; tearDown(): Promise<void> }>;
}

const databases = privateDatabases();
afterAll(() => databases.close());

/** The SQL queue on one database engine. */
function sqlBackend(engine: 'sqlite' | 'postgres'): QueueBackend {
  return {
    name: `sql queue on ${engine}`,
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
        make: (now) => createSqlSendQueue(turn++ % 2 === 0 ? first : second, now),
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

// Postgres only when it answers (tests/helpers/databases.ts says why when it does not).
const BACKENDS: QueueBackend[] = ENGINES.map(sqlBackend);

const jobs = (ids: number[], editionId = 1) => ids.map((deliveryId) => ({ deliveryId, editionId }));
const ids = (taken: QueuedJob[]) => taken.map((j) => j.deliveryId).sort((a, b) => a - b);

describe.each(BACKENDS)('SendQueue contract: $name', (backend) => {
  let clock = T0;
  const now = () => new Date(clock);
  let env: Awaited<ReturnType<QueueBackend['setUp']>>;
  let queue: SendQueue;
  let other: SendQueue;

  beforeAll(async () => {
    env = await backend.setUp();
  });
  beforeEach(async () => {
    await env.reset();
    clock = T0;
    queue = env.make(now);
    other = env.make(now);
  });
  afterAll(async () => {
    await queue.close();
    await other.close();
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
    clock += 1;
    expect(await queue.enqueue(jobs([1]))).toBe(0);
    expect(await other.reserve(10, LEASE)).toEqual([]);
    await queue.ack([job!]);
    expect(await queue.size()).toBe(0);
  });

  it('reserve respects the limit and takes due jobs oldest first, then by delivery', async () => {
    clock = T0 + 50;
    await queue.enqueue(jobs([1]));
    clock = T0 + 10;
    await queue.enqueue(jobs([9, 3]));
    clock = T0 + 20;
    await queue.enqueue(jobs([2]));
    clock = T0 + 1_000;
    await queue.enqueue(jobs([7]));
    clock = T0 + 100;
    expect(ids(await queue.reserve(2, LEASE))).toEqual([3, 9]);
    expect(ids(await other.reserve(2, LEASE))).toEqual([1, 2]);
    expect(await queue.reserve(2, LEASE)).toEqual([]);
    clock = T0 + 1_000;
    expect(ids(await queue.reserve(5, LEASE))).toEqual([7]);
  });

  it('a job carries its delivery and edition, and every reserve a lease of its own', async () => {
    await queue.enqueue([{ deliveryId: 11, editionId: 4 }]);
    const [first] = await queue.reserve(1, LEASE);
    expect(first).toMatchObject({ deliveryId: 11, editionId: 4 });
    await queue.retry([first!], now());
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
    expect(ids(await queue.reserve(10, LEASE))).toEqual([1, 2]);
  });

  it('a reserved job is invisible until its lease ends, then due again (a dead worker)', async () => {
    await queue.enqueue(jobs([1, 2]));
    expect(ids(await queue.reserve(1, 1_000))).toEqual([1]);
    clock = T0 + 999;
    expect(ids(await other.reserve(5, 1_000))).toEqual([2]);
    expect(await other.reserve(5, 1_000)).toEqual([]);
    clock = T0 + 1_000;
    expect(ids(await other.reserve(5, 1_000))).toEqual([1]);
  });

  it('extend keeps a job invisible past its first lease (the heartbeat)', async () => {
    await queue.enqueue(jobs([1]));
    const held = await queue.reserve(1, 1_000);
    clock = T0 + 800;
    await queue.extend(held, 1_000);
    clock = T0 + 1_500;
    expect(await other.reserve(5, 1_000)).toEqual([]);
    clock = T0 + 1_800;
    expect(ids(await other.reserve(5, 1_000))).toEqual([1]);
  });

  it('ack, retry and extend with a lease another worker has since taken over change nothing', async () => {
    await queue.enqueue(jobs([1]));
    const stale = await queue.reserve(1, 1_000);
    clock = T0 + 1_500;
    const current = await other.reserve(1, 1_000);
    expect(ids(current)).toEqual([1]);
    await queue.ack(stale);
    await queue.retry(stale, now());
    await queue.extend(stale, 60_000);
    expect(await queue.size()).toBe(1);
    expect(await queue.reserve(1, 1_000)).toEqual([]);
    clock = T0 + 2_500;
    // The current holder's lease was not extended by the stale one: it ends on time.
    expect(ids(await queue.reserve(1, 1_000))).toEqual([1]);
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
    await queue.enqueue(jobs([1, 2]));
    const [one, two] = await queue.reserve(2, LEASE);
    await queue.retry([one!], new Date(T0 + 60_000));
    await queue.retry([two!], now());
    expect(await queue.size()).toBe(2);
    expect(ids(await other.reserve(5, 600_000))).toEqual([2]);
    clock = T0 + 59_999;
    expect(await other.reserve(5, 600_000)).toEqual([]);
    clock = T0 + 60_000;
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
