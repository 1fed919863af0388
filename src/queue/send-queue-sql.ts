import { randomBytes } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { Lease, QueuedJob, SendQueue } from '../delivery/send-queue.ts';
import type { Store } from '../store/database.ts';
import { hotStatement } from '../store/hot-statements.ts';
import type { Database } from '../store/schema.ts';

/** Acks gathered before they are written, and the longest one waits. */
const ACK_BATCH = 500;
const ACK_DELAY_MS = 50;

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
  // A job whose delivery is queued in the ledger again (`gazette send` retrying a failure while
  // this ack waited in a batch) stays: it is due again once its lease ends, never lost.
  const ackJobs = hotStatement(
    db,
    `delete from queue_jobs where lease_token = ? and id in (select value from {ids})
     and not exists (select 1 from deliveries d where d.id = queue_jobs.id and d.status = 'queued') returning id`,
  );
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
  // Acks are written in batches. A finished job's row only has to go before its lease ends: the
  // ledger already says the delivery is done, and a job taken again is found finished and acked
  // then. On SQLite this halves the statements per message.
  let acks: QueuedJob[] = [];
  let ackTimer: ReturnType<typeof setTimeout> | undefined;
  let acking: Promise<void> = Promise.resolve();
  let ackError: unknown;
  // Jobs an ack left in place because their delivery was queued again meanwhile, by lease token.
  const kept = new Map<number, string>();
  const insertJobs = hotStatement(
    db,
    'insert into queue_jobs (id, group_id, available_at, lease_until, lease_token, attempts) select value, ?, ?, null, null, 0 from {ids} where true on conflict (id) do nothing returning id',
  );
  const requeueKept = hotStatement(db, 'update queue_jobs set available_at = ?, lease_until = null, lease_token = null where lease_token = ? and id in (select value from {ids}) returning id');
  const flushAcks = (): Promise<void> => {
    if (ackTimer) clearTimeout(ackTimer);
    ackTimer = undefined;
    const batch = acks;
    acks = [];
    if (batch.length > 0) {
      acking = acking.then(async () => {
        for (const { token, ids } of byToken(batch)) {
          const deleted = new Set(await ackJobs.run({ ids, values: [token] }));
          for (const id of ids) if (!deleted.has(id)) kept.set(id, token);
        }
      });
    }
    return acking;
  };
  // A failure of a batch written in the background is thrown by the next call that waits for it.
  const surface = () => {
    if (ackError === undefined) return;
    const error = ackError;
    ackError = undefined;
    throw error;
  };
  return {
    async enqueue(jobs) {
      // This process's acks first. A job it acked whose delivery is queued again meanwhile (the
      // ack kept it: see ackJobs) is this process's to give back now, not at the end of its lease.
      await flushAcks();
      let added = 0;
      const at = now().getTime();
      const ours = jobs.filter((job) => kept.has(job.deliveryId));
      for (const { token, ids } of byToken(ours.map((job) => ({ ...job, lease: { opaque: kept.get(job.deliveryId)! } })))) {
        added += (await requeueKept.run({ ids, values: [at, token] })).length;
        for (const id of ids) kept.delete(id);
      }
      // One statement per edition's ids, each a single array parameter.
      const byEdition = new Map<number, number[]>();
      for (const job of jobs) {
        const ids = byEdition.get(job.editionId);
        if (ids) ids.push(job.deliveryId);
        else byEdition.set(job.editionId, [job.deliveryId]);
      }
      for (const [editionId, ids] of byEdition) {
        for (const chunk of chunks(ids, 5000)) added += (await insertJobs.run({ ids: chunk, values: [editionId, at] })).length;
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
      surface();
      acks.push(...jobs);
      if (acks.length >= ACK_BATCH) return flushAcks();
      if (acks.length > 0 && !ackTimer) {
        ackTimer = setTimeout(() => void flushAcks().catch((error: unknown) => (ackError = error)), ACK_DELAY_MS);
        ackTimer.unref();
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
      await flushAcks();
      surface();
      const row = await db
        .selectFrom('queue_jobs')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('group_id', 'not in', (eb) => eb.selectFrom('queue_holds').select('group_id'))
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },

    async close() {
      await flushAcks().catch(() => {});
    },
  };
}

function chunks<T>(items: readonly T[], size = CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
