import type { Kysely, Transaction } from 'kysely';
import type { DeliveryTarget, EventPlan, NewSubscriberEvent, SubscriberEventRecords, SubscriberTarget } from '../inbound/report-handler.ts';
import type { EditionEventCounts, EventAction, SubscriberEvent } from '../model/subscriber-event.ts';
import type { Database } from './schema.ts';

/** Subscriber ids per IN list, far below SQLite's bound-value limit. */
const IDS_PER_QUERY = 1000;

/** What came back about subscribers' mail (bounces, complaints, unsubscribes by mail), and its effects. */
export class EventsRepo implements SubscriberEventRecords {
  constructor(private readonly db: Kysely<Database>) {}

  async deliveryTarget(deliveryId: number): Promise<DeliveryTarget | undefined> {
    const row = await this.db
      .selectFrom('deliveries as d')
      .innerJoin('editions as e', 'e.id', 'd.edition_id')
      .innerJoin('subscribers as s', 's.id', 'd.subscriber_id')
      .select(['d.id as deliveryId', 'd.edition_id as editionId', 'e.list_slug as listSlug', 'd.subscriber_id as subscriberId', 's.email_key as emailKey'])
      .where('d.id', '=', deliveryId)
      .executeTakeFirst();
    return row && { ...row, deliveryId: Number(row.deliveryId), editionId: Number(row.editionId), subscriberId: Number(row.subscriberId) };
  }

  async subscriberTarget(which: { id: number } | { emailKey: string }): Promise<SubscriberTarget | undefined> {
    let query = this.db.selectFrom('subscribers').select(['id', 'email_key']);
    query = 'id' in which ? query.where('id', '=', which.id) : query.where('email_key', '=', which.emailKey);
    const row = await query.executeTakeFirst();
    return row && { subscriberId: Number(row.id), emailKey: row.email_key };
  }

  async apply(event: NewSubscriberEvent, plan: EventPlan, now: Date): Promise<EventAction | 'duplicate'> {
    const at = now.toISOString();
    return this.db.transaction().execute(async (trx) => {
      const inserted = await trx
        .insertInto('subscriber_events')
        .values({
          subscriber_id: event.subscriberId,
          type: event.type,
          source: event.source,
          action: 'none',
          delivery_id: event.deliveryId,
          edition_id: event.editionId,
          list_slug: event.listSlug,
          status: event.status,
          diagnostic: event.diagnostic,
          report_id: event.reportId,
          dedupe_key: event.dedupeKey,
          occurred_at: event.occurredAt.toISOString(),
          created_at: at,
        })
        .onConflict((oc) => oc.column('dedupe_key').doNothing())
        .returning('id')
        .executeTakeFirst();
      if (!inserted) return 'duplicate';
      const action = await carryOut(trx, event, plan, at);
      await trx.updateTable('subscriber_events').set({ action }).where('id', '=', inserted.id).execute();
      return action;
    });
  }

  /** Each subscriber's events, newest first. */
  async ofSubscribers(subscriberIds: number[]): Promise<Map<number, SubscriberEvent[]>> {
    const events = new Map<number, SubscriberEvent[]>(subscriberIds.map((id) => [id, []]));
    for (let i = 0; i < subscriberIds.length; i += IDS_PER_QUERY) {
      const rows = await this.db
        .selectFrom('subscriber_events')
        .selectAll()
        .where('subscriber_id', 'in', subscriberIds.slice(i, i + IDS_PER_QUERY))
        .orderBy('id', 'desc')
        .execute();
      for (const row of rows) {
        events.get(Number(row.subscriber_id))?.push({
          id: Number(row.id),
          subscriberId: Number(row.subscriber_id),
          type: row.type,
          source: row.source,
          action: row.action,
          deliveryId: row.delivery_id === null ? null : Number(row.delivery_id),
          editionId: row.edition_id === null ? null : Number(row.edition_id),
          listSlug: row.list_slug,
          status: row.status,
          diagnostic: row.diagnostic,
          at: row.occurred_at,
        });
      }
    }
    return events;
  }

  /** An edition's events by type (a late bounce, a complaint, an unsubscribe by mail). */
  async editionCounts(editionId: number): Promise<EditionEventCounts> {
    const rows = await this.db
      .selectFrom('subscriber_events')
      .select(['type', (eb) => eb.fn.countAll<number>().as('count')])
      .where('edition_id', '=', editionId)
      .groupBy('type')
      .execute();
    const counts: EditionEventCounts = { 'hard-bounce': 0, 'soft-bounce': 0, complaint: 0, unsubscribe: 0 };
    for (const row of rows) counts[row.type] = Number(row.count);
    return counts;
  }
}

async function carryOut(trx: Transaction<Database>, event: NewSubscriberEvent, plan: EventPlan, at: string): Promise<EventAction> {
  switch (plan.kind) {
    case 'suppress':
      if (plan.reason === 'complained') {
        await suppress(trx, event, 'complained', describe(event), at);
        await trx.deleteFrom('subscriptions').where('subscriber_id', '=', event.subscriberId).execute();
        await trx.updateTable('subscribers').set({ status: 'complained', updated_at: at, unsubscribed_at: at }).where('id', '=', event.subscriberId).execute();
        return 'complained';
      }
      await bounce(trx, event, describe(event), at);
      return 'suppressed';
    case 'soft': {
      if ((await softBouncesInWindow(trx, event.subscriberId, plan.sends)) < plan.limit) return 'counted';
      await bounce(trx, event, `${plan.limit} soft bounces in the last ${plan.sends} sends; the last: ${describe(event)}`, at);
      return 'suppressed';
    }
    case 'unsubscribe': {
      let leaving = trx.deleteFrom('subscriptions').where('subscriber_id', '=', event.subscriberId);
      if (plan.listSlug !== null) leaving = leaving.where('list_slug', '=', plan.listSlug);
      const left = Number((await leaving.executeTakeFirst()).numDeletedRows);
      const remaining = await trx.selectFrom('subscriptions').select('list_slug').where('subscriber_id', '=', event.subscriberId).executeTakeFirst();
      if (!remaining) {
        await trx
          .updateTable('subscribers')
          .set({ status: 'unsubscribed', updated_at: at, unsubscribed_at: at })
          .where('id', '=', event.subscriberId)
          .where('status', 'in', ['active', 'pending'])
          .execute();
      }
      return left > 0 ? 'unsubscribed' : 'none';
    }
  }
}

// A bounce suppresses the address, marks the subscriber and turns its delivery from sent to bounced,
// so the edition's counts show the bounce that came back hours later.
async function bounce(trx: Transaction<Database>, event: NewSubscriberEvent, detail: string, at: string): Promise<void> {
  await suppress(trx, event, 'bounced', detail, at);
  await trx.updateTable('subscribers').set({ status: 'bounced', updated_at: at }).where('id', '=', event.subscriberId).where('status', 'in', ['active', 'pending']).execute();
  if (event.deliveryId !== null) {
    await trx.updateTable('deliveries').set({ status: 'bounced', last_error: detail, updated_at: at }).where('id', '=', event.deliveryId).where('status', '=', 'sent').execute();
  }
}

async function suppress(trx: Transaction<Database>, event: NewSubscriberEvent, reason: 'bounced' | 'complained', detail: string, at: string): Promise<void> {
  await trx
    .insertInto('suppressions')
    .values({ email_key: event.emailKey, reason, detail, created_at: at, delivery_id: event.deliveryId })
    .onConflict((oc) =>
      // A complaint outweighs a bounce already on the list: it is the person's own word.
      reason === 'complained' ? oc.column('email_key').doUpdateSet({ reason, detail }).where('suppressions.reason', '=', 'bounced') : oc.column('email_key').doNothing(),
    )
    .execute();
}

// Soft bounces of the subscriber's last `sends` sends, and those that named no delivery since the oldest of them.
async function softBouncesInWindow(trx: Transaction<Database>, subscriberId: number, sends: number): Promise<number> {
  const recent = trx
    .selectFrom('deliveries')
    .select('id')
    .where('subscriber_id', '=', subscriberId)
    .where('status', 'in', ['sent', 'bounced'])
    .orderBy('id', 'desc')
    .limit(sends);
  const oldest = await trx
    .selectFrom('deliveries')
    .select('sent_at')
    .where('subscriber_id', '=', subscriberId)
    .where('status', 'in', ['sent', 'bounced'])
    .orderBy('id', 'desc')
    .limit(1)
    .offset(sends - 1)
    .executeTakeFirst();
  const row = await trx
    .selectFrom('subscriber_events')
    .select((eb) => eb.fn.countAll<number>().as('count'))
    .where('subscriber_id', '=', subscriberId)
    .where('type', '=', 'soft-bounce')
    .where((eb) =>
      eb.or([
        eb('delivery_id', 'in', recent),
        eb.and([eb('delivery_id', 'is', null), eb('occurred_at', '>=', oldest?.sent_at ?? '')]),
      ]),
    )
    .executeTakeFirstOrThrow();
  return Number(row.count);
}

function describe(event: NewSubscriberEvent): string {
  return [event.status, event.diagnostic].filter(Boolean).join(' ').slice(0, 500) || event.type;
}

