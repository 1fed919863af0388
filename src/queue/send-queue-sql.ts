import { randomBytes } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { Lease, QueuedJob, SendQueue } from '../delivery/send-queue.ts';
import type { Store } from '../store/database.ts';
import type { Database } from '../store/schema.ts';

/** Rows per statement: keeps IN lists far below SQLite's limits. */
const CHUNK = 500;

interface SqlLease extends Lease {
  readonly opaque: string;
}

/**
 * The embedded send queue: the queue_jobs table beside the ledger. A job's `available_at` is when
 * it may next be taken; reserving moves it to the end of the lease, so an expired lease needs no
 * sweeper: the job is simply due again. Each reserve stamps its jobs with a fresh token, and every
 * later change names that token, so a worker whose lease was taken over changes nothing.
 */
export function createSqlSendQueue(store: Store, now: () => Date = () => new Date()): SendQueue {
  const db: Kysely<Database> = store.db;
  // Postgres workers on several machines must not take the same rows; SQLite has one writer anyway.
  const lockClause = store.dialect === 'postgres' ? sql` for update skip locked` : sql``;
  const byToken = (jobs: readonly QueuedJob[]) => {
    const groups = new Map<string, number[]>();
    for (const job of jobs) {
      const token = (job.lease as SqlLease).opaque;
      const ids = groups.get(token) ?? [];
      ids.push(job.deliveryId);
      groups.set(token, ids);
    }
    return [...groups].flatMap(([token, ids]) => chunks(ids).map((chunk) => ({ token, ids: chunk })));
  };
  return {
    async enqueue(jobs) {
      let added = 0;
      const at = now().getTime();
      for (const chunk of chunks(jobs, 5000)) {
        const result = await db
          .insertInto('queue_jobs')
          .values(chunk.map((job) => ({ id: job.deliveryId, group_id: job.editionId, available_at: at, lease_until: null, lease_token: null, attempts: 0 })))
          .onConflict((oc) => oc.column('id').doNothing())
          .executeTakeFirst();
        added += Number(result.numInsertedOrUpdatedRows ?? 0);
      }
      return added;
    },

    async reserve(limit, leaseMs) {
      const at = now().getTime();
      const until = at + leaseMs;
      const token = randomBytes(9).toString('base64url');
      const result = await sql<{ id: number | string; group_id: number }>`
        update queue_jobs set lease_until = ${until}, available_at = ${until}, lease_token = ${token}, attempts = attempts + 1
        where id in (
          select id from queue_jobs
          where available_at <= ${at} and group_id not in (select group_id from queue_holds)
          order by available_at, id limit ${limit}${lockClause}
        )
        returning id, group_id`.execute(db);
      const lease: SqlLease = { opaque: token };
      return result.rows
        .map((row) => ({ deliveryId: Number(row.id), editionId: row.group_id, lease }))
        .sort((a, b) => a.deliveryId - b.deliveryId);
    },

    async extend(jobs, leaseMs) {
      const until = now().getTime() + leaseMs;
      for (const { token, ids } of byToken(jobs)) {
        await db.updateTable('queue_jobs').set({ lease_until: until, available_at: until }).where('lease_token', '=', token).where('id', 'in', ids).execute();
      }
    },

    async ack(jobs) {
      for (const { token, ids } of byToken(jobs)) {
        await db.deleteFrom('queue_jobs').where('lease_token', '=', token).where('id', 'in', ids).execute();
      }
    },

    async retry(jobs, at) {
      for (const { token, ids } of byToken(jobs)) {
        await db
          .updateTable('queue_jobs')
          .set({ available_at: at.getTime(), lease_until: null, lease_token: null })
          .where('lease_token', '=', token)
          .where('id', 'in', ids)
          .execute();
      }
    },

    async hold(editionId, held) {
      if (held) {
        await db
          .insertInto('queue_holds')
          .values({ group_id: editionId, created_at: now().toISOString() })
          .onConflict((oc) => oc.column('group_id').doNothing())
          .execute();
      } else {
        await db.deleteFrom('queue_holds').where('group_id', '=', editionId).execute();
      }
    },

    async size() {
      const row = await db
        .selectFrom('queue_jobs')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('group_id', 'not in', (eb) => eb.selectFrom('queue_holds').select('group_id'))
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },

    async close() {},
  };
}

function chunks<T>(items: readonly T[], size = CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
