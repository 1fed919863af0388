import { sql, type Kysely } from 'kysely';
import type { Audience, Database, DeliveryStatus, SubscriberStatus } from './schema.ts';

/** What a worker needs to send one delivery. */
export interface DeliveryToSend {
  id: number;
  editionId: number;
  status: DeliveryStatus;
  subscriberId: number;
  email: string | null;
  name: string | null;
  subscriberStatus: SubscriberStatus | null;
  suppressed: boolean;
}

/** Counts of an edition's deliveries by status. */
export type DeliveryCounts = Record<DeliveryStatus, number>;

/** The delivery ledger: one row per (edition, subscriber), the truth about who was sent what. */
export class DeliveriesRepo {
  constructor(private readonly db: Kysely<Database>) {}

  /**
   * Adds a delivery for each eligible subscriber after `afterId` (at most `limit`), skipping those
   * that already have one. Returns the new delivery ids and the last subscriber id looked at.
   */
  async addBatch(
    edition: { id: number; listSlug: string; audience: Audience },
    afterId: number,
    limit: number,
    now: Date,
  ): Promise<{ newIds: number[]; lastSubscriberId: number | undefined }> {
    let eligible = this.db
      .selectFrom('subscribers as s')
      .innerJoin('subscriptions as sub', 'sub.subscriber_id', 's.id')
      .select('s.id')
      .where('sub.list_slug', '=', edition.listSlug)
      .where('s.status', '=', 'active')
      .where('s.id', '>', afterId)
      .where(({ not, exists, selectFrom }) =>
        not(exists(selectFrom('suppressions as x').select('x.email_key').whereRef('x.email_key', '=', 's.email_key'))),
      );
    if (edition.audience !== 'all') eligible = eligible.where('sub.frequency', '=', edition.audience);
    const ids = (await eligible.orderBy('s.id').limit(limit).execute()).map((r) => r.id);
    if (ids.length === 0) return { newIds: [], lastSubscriberId: undefined };
    const at = now.toISOString();
    const inserted = await this.db
      .insertInto('deliveries')
      .values(ids.map((subscriberId) => ({ edition_id: edition.id, subscriber_id: subscriberId, status: 'queued' as const, attempts: 0, last_error: null, created_at: at, updated_at: at, sent_at: null })))
      .onConflict((oc) => oc.columns(['edition_id', 'subscriber_id']).doNothing())
      .returning('id')
      .execute();
    return { newIds: inserted.map((r) => r.id), lastSubscriberId: ids[ids.length - 1] };
  }

  /** How many subscribers an edition would go to now (for progress bars). */
  async countEligible(listSlug: string, audience: Audience): Promise<number> {
    let query = this.db
      .selectFrom('subscribers as s')
      .innerJoin('subscriptions as sub', 'sub.subscriber_id', 's.id')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('sub.list_slug', '=', listSlug)
      .where('s.status', '=', 'active')
      .where(({ not, exists, selectFrom }) =>
        not(exists(selectFrom('suppressions as x').select('x.email_key').whereRef('x.email_key', '=', 's.email_key'))),
      );
    if (audience !== 'all') query = query.where('sub.frequency', '=', audience);
    return Number((await query.executeTakeFirstOrThrow()).n);
  }

  /** Queued delivery ids of an edition after `afterId`: to re-enqueue after a crash. */
  async queuedIds(editionId: number, afterId: number, limit: number): Promise<number[]> {
    const rows = await this.db
      .selectFrom('deliveries')
      .select('id')
      .where('edition_id', '=', editionId)
      .where('status', '=', 'queued')
      .where('id', '>', afterId)
      .orderBy('id')
      .limit(limit)
      .execute();
    return rows.map((r) => r.id);
  }

  /** The deliveries with their subscriber's address and standing, in one query. */
  async forSending(ids: number[]): Promise<Map<number, DeliveryToSend>> {
    if (ids.length === 0) return new Map();
    const rows = await this.db
      .selectFrom('deliveries as d')
      .leftJoin('subscribers as s', 's.id', 'd.subscriber_id')
      .leftJoin('suppressions as x', 'x.email_key', 's.email_key')
      .select(['d.id', 'd.edition_id', 'd.status', 'd.subscriber_id', 's.email', 's.name', 's.status as subscriber_status', 'x.email_key as suppressed_key'])
      .where('d.id', 'in', ids)
      .execute();
    return new Map(
      rows.map((r) => [
        r.id,
        {
          id: r.id,
          editionId: r.edition_id,
          status: r.status,
          subscriberId: r.subscriber_id,
          email: r.email,
          name: r.name,
          subscriberStatus: r.subscriber_status,
          suppressed: r.suppressed_key !== null,
        },
      ]),
    );
  }

  /** Records the outcome of one attempt; `status` queued keeps it for a retry. */
  async record(id: number, status: DeliveryStatus, now: Date, error: string | null = null): Promise<void> {
    await this.db
      .updateTable('deliveries')
      .set({
        status,
        attempts: sql`attempts + 1`,
        last_error: error,
        updated_at: now.toISOString(),
        ...(status === 'sent' ? { sent_at: now.toISOString() } : {}),
      })
      .where('id', '=', id)
      .execute();
  }

  /** Marks several deliveries sent in one statement (the worker's group commit). */
  async recordSent(ids: readonly number[], now: Date): Promise<void> {
    if (ids.length === 0) return;
    const at = now.toISOString();
    await this.db
      .updateTable('deliveries')
      .set({ status: 'sent', attempts: sql`attempts + 1`, last_error: null, updated_at: at, sent_at: at })
      .where('id', 'in', ids)
      .execute();
  }

  /** Counts by status of one edition. */
  async counts(editionId: number): Promise<DeliveryCounts> {
    const rows = await this.db
      .selectFrom('deliveries')
      .select(['status', (eb) => eb.fn.countAll<number>().as('count')])
      .where('edition_id', '=', editionId)
      .groupBy('status')
      .execute();
    const counts: DeliveryCounts = { queued: 0, sent: 0, failed: 0, bounced: 0, skipped: 0 };
    for (const row of rows) counts[row.status] = Number(row.count);
    return counts;
  }

  /** How many of an edition's messages went out since `since`, and the latest change and error. */
  async progress(editionId: number, since: Date): Promise<{ sentSince: number; lastUpdate: string | null; lastError: string | null }> {
    const row = await this.db
      .selectFrom('deliveries')
      .select([
        sql<number>`sum(case when status = 'sent' and sent_at >= ${since.toISOString()} then 1 else 0 end)`.as('sent_since'),
        (eb) => eb.fn.max('updated_at').as('last_update'),
      ])
      .where('edition_id', '=', editionId)
      .executeTakeFirstOrThrow();
    const error = await this.db
      .selectFrom('deliveries')
      .select('last_error')
      .where('edition_id', '=', editionId)
      .where('last_error', 'is not', null)
      .orderBy('updated_at', 'desc')
      .limit(1)
      .executeTakeFirst();
    return { sentSince: Number(row.sent_since ?? 0), lastUpdate: (row.last_update as string | null) ?? null, lastError: error?.last_error ?? null };
  }
}
