import { PostgresAdapter, sql, type Kysely } from 'kysely';
import type { ClaimResult, DeliveryLedger, DeliveryOutcome, DeliveryToSend, OutcomeRecord } from '../delivery/delivery-ledger.ts';
import type { DeliveryRecords } from '../edition/edition-records.ts';
import { hotStatement, type HotStatement } from './hot-statements.ts';
import { retryOnDeadlock } from './retry-on-deadlock.ts';
import type { Database } from './schema.ts';
import type { DeliveryCounts, DeliveryStatus, SubscriberDelivery } from '../model/delivery.ts';
import type { Audience } from '../model/edition.ts';

/** Rows per statement: keeps IN lists far below SQLite's limits. */
const CHUNK = 500;

/** The delivery ledger: one row per (edition, subscriber), the truth about who was sent what. */
export class DeliveriesRepo implements DeliveryLedger, DeliveryRecords {
  private readonly recordSent: HotStatement;
  private readonly insertDeliveries: HotStatement;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.recordSent = hotStatement(
      db,
      `update deliveries set status = 'sent', attempts = attempts + 1, last_error = null, updated_at = ?, sent_at = ?, claim_token = null, claim_until = null
       where claim_token = ? and status = 'queued' and id in (select value from {ids}) returning id`,
    );
    // One parameter for a batch's subscribers, not eight per row (a 2,000-row insert binding 16,000 values).
    // `where true` keeps SQLite from reading the upsert's `on` as a join's.
    this.insertDeliveries = hotStatement(
      db,
      `insert into deliveries (edition_id, subscriber_id, status, attempts, last_error, created_at, updated_at, sent_at)
       select ?, value, 'queued', 0, null, ?, ?, null from {ids} where true
       on conflict (edition_id, subscriber_id) do nothing returning id`,
    );
  }

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
    // Postgres plans from statistics that autovacuum gathers only now and then: fresh ones before a
    // send reads the list batch by batch (without them a list just imported looks empty, and each
    // batch becomes a scan of every row left: seconds instead of milliseconds for 100,000).
    if (afterId === 0 && this.db.getExecutor().adapter instanceof PostgresAdapter) await sql`analyze subscribers, subscriptions, suppressions`.execute(this.db);
    // Driven from the list's subscriptions, in the order of their (list_slug, subscriber_id) index:
    // each batch is a range scan that stops at `limit`, whatever the planner knows of the tables.
    let eligible = this.db
      .selectFrom('subscriptions as sub')
      .innerJoin('subscribers as s', 's.id', 'sub.subscriber_id')
      .select('sub.subscriber_id as id')
      .where('sub.list_slug', '=', edition.listSlug)
      .where('sub.subscriber_id', '>', afterId)
      .where('s.status', '=', 'active')
      .where(({ not, exists, selectFrom }) =>
        not(exists(selectFrom('suppressions as x').select('x.email_key').whereRef('x.email_key', '=', 's.email_key'))),
      );
    if (edition.audience !== 'all') eligible = eligible.where('sub.frequency', '=', edition.audience);
    const ids = (await eligible.orderBy('sub.subscriber_id').limit(limit).execute()).map((r) => r.id);
    if (ids.length === 0) return { newIds: [], lastSubscriberId: undefined };
    const at = now.toISOString();
    const newIds = await this.insertDeliveries.run({ ids, values: [edition.id, at, at] });
    return { newIds, lastSubscriberId: ids[ids.length - 1] };
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

  /**
   * Puts an edition's failed deliveries back in the queue with a fresh retry budget, and its
   * bounced ones whose suppression an operator has since lifted (a relay that refused everyone
   * before Gazette knew better); returns their ids.
   */
  async requeueRetryable(editionId: number): Promise<number[]> {
    const rows = await this.db
      .updateTable('deliveries')
      .set({ status: 'queued', attempts: 0, updated_at: this.now().toISOString() })
      .where('edition_id', '=', editionId)
      .where((eb) =>
        eb.or([
          eb('status', '=', 'failed'),
          eb.and([
            eb('status', '=', 'bounced'),
            eb.exists(
              eb
                .selectFrom('subscribers as s')
                .select('s.id')
                .whereRef('s.id', '=', 'deliveries.subscriber_id')
                .where('s.status', '=', 'active')
                .where(({ not, exists, selectFrom }) => not(exists(selectFrom('suppressions as x').select('x.email_key').whereRef('x.email_key', '=', 's.email_key')))),
            ),
          ]),
        ]),
      )
      .returning('id')
      .execute();
    return rows.map((r) => r.id).sort((x, y) => x - y);
  }

  async claim(deliveryIds: readonly number[], claim: string, leaseMs: number): Promise<ClaimResult> {
    const claimed: DeliveryToSend[] = [];
    const finished: number[] = [];
    const now = this.now().getTime();
    for (let i = 0; i < deliveryIds.length; i += CHUNK) {
      const ids = deliveryIds.slice(i, i + CHUNK);
      const taken = await this.db
        .updateTable('deliveries')
        .set({ claim_token: claim, claim_until: now + leaseMs })
        .where('id', 'in', ids)
        .where('status', '=', 'queued')
        .where((eb) => eb.or([eb('claim_token', 'is', null), eb('claim_until', '<', now), eb('claim_token', '=', claim)]))
        .returning('id')
        .execute();
      const takenIds = new Set(taken.map((r) => r.id));
      if (takenIds.size > 0) claimed.push(...(await this.toSend([...takenIds])));
      const rest = ids.filter((id) => !takenIds.has(id));
      if (rest.length > 0) {
        const queued = new Set(
          (await this.db.selectFrom('deliveries').select('id').where('id', 'in', rest).where('status', '=', 'queued').execute()).map((r) => r.id),
        );
        finished.push(...rest.filter((id) => !queued.has(id)));
      }
    }
    return { claimed, finished };
  }

  async extend(claims: readonly string[], leaseMs: number): Promise<number[]> {
    const until = this.now().getTime() + leaseMs;
    const held: number[] = [];
    for (let i = 0; i < claims.length; i += CHUNK) {
      const rows = await this.db
        .updateTable('deliveries')
        .set({ claim_until: until })
        .where('claim_token', 'in', claims.slice(i, i + CHUNK))
        .where('status', '=', 'queued')
        .returning('id')
        .execute();
      held.push(...rows.map((r) => r.id));
    }
    return held;
  }

  async record(records: readonly OutcomeRecord[]): Promise<number[]> {
    if (records.length === 0) return [];
    const at = this.now().toISOString();
    // The usual group: messages sent under one claim. One statement, atomic alone: no transaction to open.
    const claim = records[0]!.claim;
    if (records.length <= CHUNK && records.every((r) => r.outcome.status === 'sent' && r.claim === claim)) {
      const ids = records.map((r) => r.deliveryId);
      const written = new Set(await this.recordSent.run({ ids, values: [at, at, claim] }));
      return ids.filter((id) => !written.has(id));
    }
    const written = new Set<number>();
    const sent = new Map<string, number[]>();
    const others: { deliveryId: number; claim: string; outcome: Exclude<DeliveryOutcome, { status: 'sent' }> }[] = [];
    for (const { deliveryId, claim, outcome } of records) {
      if (outcome.status !== 'sent') others.push({ deliveryId, claim, outcome });
      else sent.set(claim, [...(sent.get(claim) ?? []), deliveryId]);
    }
    // In id order, as every writer of deliveries goes: fewer lock-order deadlocks between workers.
    others.sort((a, b) => a.deliveryId - b.deliveryId);
    for (const ids of sent.values()) ids.sort((a, b) => a - b);
    await retryOnDeadlock(() => this.db.transaction().execute(async (trx) => {
      written.clear();
      // The group commit: one statement per claim for every message sent.
      for (const [claim, ids] of sent) {
        for (let i = 0; i < ids.length; i += CHUNK) {
          const rows = await fenced(trx, claim, ids.slice(i, i + CHUNK))
            .set({ status: 'sent', attempts: sql`attempts + 1`, last_error: null, updated_at: at, sent_at: at, claim_token: null, claim_until: null })
            .returning('id')
            .execute();
          for (const row of rows) written.add(row.id);
        }
      }
      for (const { deliveryId, claim, outcome } of others) {
        const row = await fenced(trx, claim, [deliveryId]).set(outcomeUpdate(outcome, at)).returning(['id', 'subscriber_id']).executeTakeFirst();
        if (!row) continue;
        written.add(row.id);
        if (outcome.status === 'bounced') await suppressBounced(trx, row.subscriber_id, deliveryId, outcome.error, at);
      }
    }));
    return records.map((r) => r.deliveryId).filter((id) => !written.has(id));
  }

  private async toSend(ids: number[]): Promise<DeliveryToSend[]> {
    const rows = await this.db
      .selectFrom('deliveries as d')
      .leftJoin('subscribers as s', 's.id', 'd.subscriber_id')
      .leftJoin('suppressions as x', 'x.email_key', 's.email_key')
      .select(['d.id', 'd.edition_id', 'd.subscriber_id', 'd.attempts', 's.email', 's.name', 's.status as subscriber_status', 'x.email_key as suppressed_key'])
      .where('d.id', 'in', ids)
      .orderBy('d.id')
      .execute();
    return rows.map((r) => ({
      id: r.id,
      editionId: r.edition_id,
      subscriberId: r.subscriber_id,
      attempts: r.attempts,
      email: r.email,
      name: r.name,
      subscriberStatus: r.subscriber_status,
      suppressed: r.suppressed_key !== null,
    }));
  }

  async ofSubscriber(subscriberId: number, limit: number): Promise<SubscriberDelivery[]> {
    const rows = await this.db
      .selectFrom('deliveries as d')
      .innerJoin('editions as e', 'e.id', 'd.edition_id')
      .select(['d.id', 'd.edition_id', 'e.subject', 'e.list_slug', 'd.status', 'd.attempts', 'd.last_error', 'd.sent_at', 'd.updated_at'])
      .where('d.subscriber_id', '=', subscriberId)
      .orderBy('d.id', 'desc')
      .limit(limit)
      .execute();
    return rows.map((r) => ({
      id: Number(r.id),
      editionId: Number(r.edition_id),
      subject: r.subject,
      listSlug: r.list_slug,
      status: r.status,
      attempts: Number(r.attempts),
      lastError: r.last_error,
      sentAt: r.sent_at,
      updatedAt: r.updated_at,
    }));
  }

  /** Counts by status of one edition. */
  async counts(editionId: number): Promise<DeliveryCounts> {
    const now = this.now().getTime();
    const rows = await this.db
      .selectFrom('deliveries')
      .select([
        'status',
        (eb) => eb.fn.countAll<number>().as('count'),
        sql<number>`sum(case when claim_until > ${now} then 1 else 0 end)`.as('claimed'),
      ])
      .where('edition_id', '=', editionId)
      .groupBy('status')
      .execute();
    const counts: DeliveryCounts = { queued: 0, sent: 0, failed: 0, bounced: 0, skipped: 0, sending: 0 };
    for (const row of rows) {
      counts[row.status] = Number(row.count);
      if (row.status === 'queued') counts.sending = Number(row.claimed ?? 0);
    }
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

const RETRY_STATUS = sql<DeliveryStatus>`case when exists (select 1 from editions where editions.id = deliveries.edition_id and editions.status = 'cancelled') then 'skipped' else 'queued' end`;

/** The columns an outcome other than `sent` writes; the claim is given up in every case. */
function outcomeUpdate(outcome: Exclude<DeliveryOutcome, { status: 'sent' }>, at: string) {
  const base = { updated_at: at, claim_token: null, claim_until: null };
  const attempted = { attempts: sql<number>`attempts + 1` };
  switch (outcome.status) {
    case 'retry':
      // Given back while its edition was being cancelled: it is skipped like the rest, not queued again.
      return { ...base, status: RETRY_STATUS, ...(outcome.error !== undefined ? { last_error: outcome.error } : {}), ...(outcome.counts ? attempted : {}) };
    case 'skipped':
      return { ...base, status: 'skipped' as const, last_error: outcome.reason };
    case 'failed':
    case 'bounced':
      return { ...base, status: outcome.status, last_error: outcome.error, ...attempted };
  }
}

/** An update of one claim's queued deliveries: the fence every outcome write goes through. */
function fenced(trx: Kysely<Database>, claim: string, ids: number[]) {
  return trx.updateTable('deliveries').where('id', 'in', ids).where('claim_token', '=', claim).where('status', '=', 'queued');
}

/** A hard bounce: the address goes on the suppression list (tied to the delivery) and the subscriber is bounced. */
async function suppressBounced(trx: Kysely<Database>, subscriberId: number, deliveryId: number, detail: string, at: string): Promise<void> {
  await trx
    .insertInto('suppressions')
    .columns(['email_key', 'reason', 'detail', 'created_at', 'delivery_id'])
    .expression((eb) =>
      eb
        .selectFrom('subscribers')
        .select((s) => ['email_key', s.val('bounced').as('reason'), s.val(detail).as('detail'), s.val(at).as('created_at'), s.val(deliveryId).as('delivery_id')])
        .where('id', '=', subscriberId),
    )
    .onConflict((oc) => oc.column('email_key').doNothing())
    .execute();
  await trx.updateTable('subscribers').set({ status: 'bounced', updated_at: at }).where('id', '=', subscriberId).where('status', '=', 'active').execute();
}
