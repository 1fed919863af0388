import { sql, type Kysely } from 'kysely';
import type { Store } from '../store/database.ts';
import type { Database } from '../store/schema.ts';
import type { Queue, QueueCounts } from './queue.ts';

/**
 * The embedded queue: the queue_jobs table in the same database as the ledger.
 * A job's `available_at` is when it may next be taken: reserving moves it to the end of the
 * lease, so an expired lease needs no sweeper — the job is simply available again.
 */
export function createSqlQueue(store: Store): Queue {
  const db: Kysely<Database> = store.db;
  // Postgres workers on several machines must not take the same rows; SQLite has one writer anyway.
  const lockClause = store.dialect === 'postgres' ? sql` for update skip locked` : sql``;
  return {
    async enqueue(jobs, now) {
      if (jobs.length === 0) return 0;
      let added = 0;
      for (let i = 0; i < jobs.length; i += 5000) {
        const chunk = jobs.slice(i, i + 5000);
        const result = await db
          .insertInto('queue_jobs')
          .values(chunk.map((job) => ({ id: job.id, group_id: job.groupId, available_at: now.getTime(), lease_until: null, attempts: 0 })))
          .onConflict((oc) => oc.column('id').doNothing())
          .executeTakeFirst();
        added += Number(result.numInsertedOrUpdatedRows ?? 0);
      }
      return added;
    },

    async reserve(limit, leaseMs, now, skipGroups = []) {
      const until = now.getTime() + leaseMs;
      const skip = skipGroups.length > 0 ? sql` and group_id not in (${sql.join(skipGroups)})` : sql``;
      const result = await sql<{ id: number | string; group_id: number; attempts: number; lease_until: number | string }>`
        update queue_jobs set lease_until = ${until}, available_at = ${until}, attempts = attempts + 1
        where id in (
          select id from queue_jobs where available_at <= ${now.getTime()}${skip}
          order by available_at, id limit ${limit}${lockClause}
        )
        returning id, group_id, attempts, lease_until`.execute(db);
      return result.rows
        .map((row) => ({ id: Number(row.id), groupId: row.group_id, attempts: row.attempts, lease: Number(row.lease_until) }))
        .sort((a, b) => a.id - b.id);
    },

    async ack(job) {
      await db.deleteFrom('queue_jobs').where('id', '=', job.id).where('lease_until', '=', job.lease).execute();
    },

    async ackMany(jobs) {
      // Chunks keep the OR list under SQLite's expression depth limit (1,000).
      for (let i = 0; i < jobs.length; i += 200) {
        const chunk = jobs.slice(i, i + 200);
        await db
          .deleteFrom('queue_jobs')
          .where((eb) => eb.or(chunk.map((job) => eb.and([eb('id', '=', job.id), eb('lease_until', '=', job.lease)]))))
          .execute();
      }
    },

    async retry(job, at) {
      await db
        .updateTable('queue_jobs')
        .set({ available_at: at.getTime(), lease_until: null })
        .where('id', '=', job.id)
        .where('lease_until', '=', job.lease)
        .execute();
    },

    async fail(job) {
      await db.deleteFrom('queue_jobs').where('id', '=', job.id).where('lease_until', '=', job.lease).execute();
    },

    async counts(now, groupId) {
      let query = db
        .selectFrom('queue_jobs')
        .select([
          sql<number>`sum(case when available_at <= ${now.getTime()} then 1 else 0 end)`.as('waiting'),
          sql<number>`sum(case when available_at > ${now.getTime()} and lease_until is not null then 1 else 0 end)`.as('leased'),
          sql<number>`sum(case when available_at > ${now.getTime()} and lease_until is null then 1 else 0 end)`.as('delayed'),
        ]);
      if (groupId !== undefined) query = query.where('group_id', '=', groupId);
      const row = await query.executeTakeFirstOrThrow();
      const counts: QueueCounts = { waiting: Number(row.waiting ?? 0), leased: Number(row.leased ?? 0), delayed: Number(row.delayed ?? 0) };
      return counts;
    },

    async close() {},
  };
}
