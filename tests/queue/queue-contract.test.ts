import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createSqlQueue } from '../../src/queue/queue-sql.ts';
import type { Queue, ReservedJob } from '../../src/queue/queue.ts';
import { openStore, type Store } from '../../src/store/database.ts';
import { BACKENDS, freshDatabase, privateDatabases, type TestDatabase } from '../helpers/databases.ts';

const T0 = new Date('2026-01-01T00:00:00Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const LEASE = 30_000;


const jobs = (ids: number[], groupId = 1) => ids.map((id) => ({ id, groupId }));
const ids = (reserved: ReservedJob[]) => reserved.map((j) => j.id).sort((a, b) => a - b);

const databases = privateDatabases();
afterAll(() => databases.close());

describe.each(BACKENDS)('Queue contract on %s (SQL queue)', (backend) => {
  let database: TestDatabase;
  let store: Store;
  let queue: Queue;

  // One database per backend; each test starts from an empty queue table.
  beforeAll(async () => {
    database = await databases.fresh(backend);
    store = await openStore({ databaseUrl: database.url, dataDir: database.dataDir });
    queue = createSqlQueue(store);
  });
  beforeEach(async () => {
    await store.db.deleteFrom('queue_jobs').execute();
  });
  afterAll(async () => {
    await queue.close();
    await store.close();
    await database.drop();
  });

  it('enqueue returns how many were new and ignores ids already queued', async () => {
    expect(await queue.enqueue([], T0)).toBe(0);
    expect(await queue.enqueue(jobs([1, 2, 3]), T0)).toBe(3);
    expect(await queue.enqueue(jobs([2, 3, 4]), T0)).toBe(1);
    // A duplicate inside one batch counts once.
    expect(await queue.enqueue(jobs([5, 5]), T0)).toBe(1);
    expect(await queue.counts(T0)).toEqual({ waiting: 5, leased: 0, delayed: 0 });
  });

  it('enqueueing a job that is leased leaves the lease alone', async () => {
    await queue.enqueue(jobs([1]), T0);
    const [job] = await queue.reserve(1, LEASE, T0);
    expect(await queue.enqueue(jobs([1]), at(1))).toBe(0);
    // Still invisible: the enqueue did not make it available again.
    expect(await queue.reserve(10, LEASE, at(2))).toEqual([]);
    await queue.ack(job!);
    expect(await queue.counts(at(3))).toEqual({ waiting: 0, leased: 0, delayed: 0 });
  });

  it('reserve respects the limit and takes jobs in (available_at, id) order', async () => {
    await queue.enqueue(jobs([1]), at(50));
    await queue.enqueue(jobs([9, 3]), at(10));
    await queue.enqueue(jobs([2]), at(20));
    await queue.enqueue(jobs([7]), at(1_000)); // not available yet at at(100)
    const first = await queue.reserve(2, LEASE, at(100));
    expect(ids(first)).toEqual([3, 9]);
    const second = await queue.reserve(2, LEASE, at(100));
    expect(ids(second)).toEqual([1, 2]);
    expect(await queue.reserve(2, LEASE, at(100))).toEqual([]);
    expect(ids(await queue.reserve(5, LEASE, at(1_000)))).toEqual([7]);
  });

  it('reserve returns the group, attempts incremented and a lease', async () => {
    await queue.enqueue([{ id: 11, groupId: 4 }], T0);
    const [first] = await queue.reserve(1, LEASE, T0);
    expect(first).toMatchObject({ id: 11, groupId: 4, attempts: 1 });
    expect(typeof first!.lease).toBe('number');
    await queue.retry(first!, at(5));
    const [second] = await queue.reserve(1, LEASE, at(5));
    expect(second).toMatchObject({ id: 11, groupId: 4, attempts: 2 });
    expect(second!.lease).not.toBe(first!.lease);
  });

  it('reserve skips the groups given', async () => {
    await queue.enqueue(jobs([1, 2], 10), T0);
    await queue.enqueue(jobs([3, 4], 20), T0);
    await queue.enqueue(jobs([5], 30), T0);
    expect(ids(await queue.reserve(10, LEASE, T0, [10, 30]))).toEqual([3, 4]);
    expect(await queue.reserve(10, LEASE, T0, [10, 30])).toEqual([]);
    expect(ids(await queue.reserve(10, LEASE, T0, []))).toEqual([1, 2, 5]);
  });

  it('a reserved job is invisible until its lease ends, then available again', async () => {
    await queue.enqueue(jobs([1, 2]), T0);
    const [a] = await queue.reserve(1, 1_000, T0);
    expect(a!.id).toBe(1);
    // Only job 2 is visible while 1 is leased.
    const [b] = await queue.reserve(5, 1_000, at(999));
    expect(b!.id).toBe(2);
    expect(await queue.reserve(5, 1_000, at(999))).toEqual([]);
    // Lease of job 1 ends at at(1000): a crashed worker's job is taken again.
    const again = await queue.reserve(5, 1_000, at(1_000));
    expect(again.map((j) => [j.id, j.attempts])).toEqual([[1, 2]]);
  });

  it('ack removes the job; an ack with a stale lease does not remove another holder’s job', async () => {
    await queue.enqueue(jobs([1]), T0);
    const stale = (await queue.reserve(1, 1_000, T0))[0]!;
    // The first worker stalls; its lease ends and someone else takes the job.
    const current = (await queue.reserve(1, 1_000, at(1_500)))[0]!;
    expect(current.id).toBe(1);
    expect(current.lease).not.toBe(stale.lease);

    await queue.ack(stale);
    await queue.fail(stale);
    await queue.retry(stale, at(1_600));
    expect(await queue.counts(at(1_700))).toEqual({ waiting: 0, leased: 1, delayed: 0 });
    expect(await queue.reserve(1, 1_000, at(1_700))).toEqual([]);

    await queue.ack(current);
    expect(await queue.counts(at(1_700))).toEqual({ waiting: 0, leased: 0, delayed: 0 });
    expect(await queue.reserve(1, 1_000, at(100_000))).toEqual([]);
  });

  it('ackMany removes the jobs it holds and leaves jobs re-reserved by someone else', async () => {
    await queue.enqueue(jobs([1, 2, 3, 4]), T0);
    const mine = await queue.reserve(4, 1_000, T0);
    // Job 4's lease ends and another worker takes it before the group is acked.
    await queue.retry(mine[3]!, T0);
    const theirs = (await queue.reserve(1, 1_000, at(10)))[0]!;
    expect(theirs.id).toBe(4);

    await queue.ackMany([]);
    await queue.ackMany(mine);
    expect(await queue.counts(at(20))).toEqual({ waiting: 0, leased: 1, delayed: 0 });
    await queue.ackMany([theirs]);
    expect(await queue.counts(at(20))).toEqual({ waiting: 0, leased: 0, delayed: 0 });
  });

  it('ackMany handles a large group in one call', async () => {
    const many = 2_500;
    await queue.enqueue(jobs(Array.from({ length: many }, (_, i) => i + 1)), T0);
    const held = await queue.reserve(many, LEASE, T0);
    expect(held).toHaveLength(many);
    // BUG (src/queue/queue-sql.ts, ackMany): one OR term per job makes SQLite fail past ~1000 jobs
    // with "Expression tree is too large (maximum depth 1000)"; it should chunk or use `id in (…)`.
    await expect(queue.ackMany(held), 'ackMany must accept any number of jobs').resolves.toBeUndefined();
    expect(await queue.counts(at(1))).toEqual({ waiting: 0, leased: 0, delayed: 0 });
  });

  it('retry(at) makes the job available at `at` and not before', async () => {
    await queue.enqueue(jobs([1]), T0);
    const job = (await queue.reserve(1, LEASE, T0))[0]!;
    await queue.retry(job, at(60_000));
    expect(await queue.counts(at(10))).toEqual({ waiting: 0, leased: 0, delayed: 1 });
    expect(await queue.reserve(1, LEASE, at(59_999))).toEqual([]);
    const again = await queue.reserve(1, LEASE, at(60_000));
    expect(again.map((j) => [j.id, j.attempts])).toEqual([[1, 2]]);
  });

  it('retry(at) with `at` in the past (a release) makes the job available at once', async () => {
    await queue.enqueue(jobs([1]), T0);
    const job = (await queue.reserve(1, LEASE, T0))[0]!;
    await queue.retry(job, at(1));
    expect(await queue.counts(at(2))).toEqual({ waiting: 1, leased: 0, delayed: 0 });
    expect(ids(await queue.reserve(1, LEASE, at(2)))).toEqual([1]);
  });

  it('fail removes the job for good', async () => {
    await queue.enqueue(jobs([1, 2]), T0);
    const [one, two] = await queue.reserve(2, 1_000, T0);
    await queue.fail(one!);
    await queue.ack(two!);
    expect(await queue.counts(at(10))).toEqual({ waiting: 0, leased: 0, delayed: 0 });
    expect(await queue.reserve(10, 1_000, at(100_000))).toEqual([]);
  });

  it('counts waiting, leased and delayed per group and overall', async () => {
    await queue.enqueue(jobs([1, 2, 3, 4], 1), T0);
    await queue.enqueue(jobs([5, 6], 2), T0);
    await queue.enqueue(jobs([7], 2), at(5_000)); // enqueued for later: delayed
    // Group 1: lease 1 and 2, retry 2 later → 1 leased, 1 delayed, 2 waiting.
    const leased = await queue.reserve(2, 10_000, T0, [2]);
    expect(ids(leased)).toEqual([1, 2]);
    await queue.retry(leased[1]!, at(20_000));
    // Group 2: lease 5.
    const [five] = await queue.reserve(1, 10_000, T0, [1]);
    expect(five!.id).toBe(5);

    const now = at(100);
    expect(await queue.counts(now, 1)).toEqual({ waiting: 2, leased: 1, delayed: 1 });
    expect(await queue.counts(now, 2)).toEqual({ waiting: 1, leased: 1, delayed: 1 });
    expect(await queue.counts(now, 99)).toEqual({ waiting: 0, leased: 0, delayed: 0 });
    expect(await queue.counts(now)).toEqual({ waiting: 3, leased: 2, delayed: 2 });
    // When leases have ended the jobs count as waiting again; the retry is still delayed.
    expect(await queue.counts(at(10_000))).toEqual({ waiting: 6, leased: 0, delayed: 1 });
    expect(await queue.counts(at(20_000))).toEqual({ waiting: 7, leased: 0, delayed: 0 });
  });

  it('opens a fresh database while another one on the same server is already migrated', async () => {
    // BUG (src/store/database.ts, migrate): on Postgres, Kysely's Migrator looks for its
    // kysely_migration tables in *every* schema (no migrationTableSchema is given), finds those of the
    // store this suite opened in beforeAll (another schema of the same database), skips creating its
    // own and fails with MIGRATION_FAILED ("relation \"kysely_migration_lock\" does not exist").
    // A Gazette in its own schema next to another Kysely app hits it, and so do test files running
    // side by side on tests/helpers/databases.ts schemas. Fix: pass migrationTableSchema (the
    // connection's current_schema()) to the Migrator on Postgres.
    const other = await databases.fresh(backend);
    try {
      const opened = await openStore({ databaseUrl: other.url, dataDir: other.dataDir }).then(
        (s) => s,
        (e: unknown) => e as Error,
      );
      const message = opened instanceof Error ? opened.message : 'opened';
      if (!(opened instanceof Error)) await opened.close();
      expect(message, 'a fresh schema must migrate whatever other schemas hold').toBe('opened');
    } finally {
      await other.drop();
    }
  });

  it('two connections opened at once to a fresh database both come up (workers starting together)', async () => {
    // BUG (src/store/database.ts, migrate): Kysely's SQLite adapter takes no migration lock, so two
    // openStore() racing on a fresh file both run 0001 and one fails with MIGRATION_FAILED
    // ("UNIQUE constraint failed: kysely_migration.name"). Tried several times: it does not fail every time.
    // On Postgres each try uses a database of its own, away from the schema bug above.
    const tries = backend === 'sqlite' ? 15 : 1;
    const failures: string[] = [];
    for (let i = 0; i < tries; i++) {
      const fresh = backend === 'sqlite' ? await freshDatabase('sqlite') : await databases.newPostgresDatabase();
      const opened = await Promise.allSettled([0, 1].map(() => openStore({ databaseUrl: fresh.url, dataDir: fresh.dataDir })));
      for (const result of opened) {
        if (result.status === 'fulfilled') await result.value.close();
        else failures.push((result.reason as Error).message);
      }
      await fresh.drop();
    }
    expect(failures, 'concurrent openStore on a fresh database must not fail its migrations').toEqual([]);
  });

  it('two reservers on separate connections never get the same job', async () => {
    const second = await openStore({ databaseUrl: database.url, dataDir: database.dataDir });
    const otherQueue = createSqlQueue(second);
    try {
      const total = 500;
      const all = Array.from({ length: total }, (_, i) => ({ id: i + 1, groupId: 1 + (i % 3) }));
      expect(await queue.enqueue(all, T0)).toBe(total);
      const drain = async (q: Queue): Promise<number[]> => {
        const got: number[] = [];
        for (;;) {
          const batch = await q.reserve(50, 60_000, at(1));
          if (batch.length === 0) return got;
          got.push(...batch.map((j) => j.id));
        }
      };
      const [a, b] = await Promise.all([drain(queue), drain(otherQueue)]);
      const union = [...a, ...b];
      const duplicates = union.filter((id, i) => union.indexOf(id) !== i);
      expect(duplicates).toEqual([]);
      expect(new Set(union).size).toBe(total);
      expect([...new Set(union)].sort((x, y) => x - y)).toEqual(all.map((j) => j.id));
      expect(await queue.counts(at(2))).toEqual({ waiting: 0, leased: total, delayed: 0 });
    } finally {
      await otherQueue.close();
      await second.close();
    }
  });
});
