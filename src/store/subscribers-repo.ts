import { sql, type Kysely } from 'kysely';
import type { SubscriberRecords } from '../subscribers/subscription-service.ts';
import type { Database, SubscriberRow } from './schema.ts';
import type { LiftedSuppression, ListChoice, NewSubscriber, Subscriber, SubscriberPage, SubscriberStatus, Suppression, WithSuppression } from '../model/subscriber.ts';

/** Statuses a suppression caused, so lifting it undoes them; others (pending, unsubscribed) are the person's own choice. */
const SUPPRESSED_STATUSES: readonly SubscriberStatus[] = ['bounced', 'complained'];

/** Addresses per IN list: a CLI batch (1000) or an API page (500) is one query, far below SQLite's 32,766 bound values. */
const KEYS_PER_QUERY = 1000;

/** Subscribers, their list subscriptions and the suppression list. */
export class SubscribersRepo implements SubscriberRecords {
  constructor(private readonly db: Kysely<Database>) {}

  /** The subscriber with this address (any case), with lists. */
  async findByEmail(emailKey: string): Promise<Subscriber | undefined> {
    const row = await this.db.selectFrom('subscribers').selectAll().where('email_key', '=', emailKey).executeTakeFirst();
    return row && this.withLists(row);
  }

  /** The subscriber with this id, with lists. */
  async findById(id: number): Promise<Subscriber | undefined> {
    const row = await this.db.selectFrom('subscribers').selectAll().where('id', '=', id).executeTakeFirst();
    return row && this.withLists(row);
  }

  /** Inserts a subscriber and their lists; returns the id. Fails on an address that exists. */
  async insert(subscriber: NewSubscriber, now: Date): Promise<number> {
    const at = now.toISOString();
    return this.db.transaction().execute(async (trx) => {
      const { id } = await trx
        .insertInto('subscribers')
        .values({
          email: subscriber.email,
          email_key: subscriber.emailKey,
          name: subscriber.name,
          status: subscriber.status,
          source: subscriber.source,
          consent_ip: subscriber.consentIp,
          created_at: at,
          updated_at: at,
          confirmed_at: subscriber.status === 'active' ? at : null,
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      await new SubscribersRepo(trx).replaceLists(id, subscriber.lists, now);
      return id;
    });
  }

  /**
   * Inserts many subscribers in one transaction; addresses that exist are left as they are
   * (so importing a file twice changes nothing). Returns how many were new.
   */
  async insertMany(subscribers: NewSubscriber[], now: Date): Promise<number> {
    if (subscribers.length === 0) return 0;
    return this.db.transaction().execute(async (trx) => {
      let added = 0;
      // SQLite allows 32,766 bound values per statement: 1,000 rows of 9 columns stay well under.
      for (let i = 0; i < subscribers.length; i += 1000) added += await insertChunk(trx, subscribers.slice(i, i + 1000), now);
      return added;
    });
  }

  /** Changes a subscriber's status, stamping the matching timestamp. */
  async setStatus(id: number, status: SubscriberStatus, now: Date): Promise<void> {
    const at = now.toISOString();
    await this.db
      .updateTable('subscribers')
      .set({
        status,
        updated_at: at,
        ...(status === 'active' ? { confirmed_at: at, unsubscribed_at: null } : {}),
        ...(status === 'unsubscribed' ? { unsubscribed_at: at } : {}),
      })
      .where('id', '=', id)
      .execute();
  }

  /** Updates name, consent and source when an address subscribes again. */
  async refresh(id: number, fields: { name?: string | null; consentIp?: string | null; source?: string; status?: SubscriberStatus }, now: Date): Promise<void> {
    await this.db
      .updateTable('subscribers')
      .set({
        updated_at: now.toISOString(),
        ...(fields.name !== undefined ? { name: fields.name } : {}),
        ...(fields.consentIp !== undefined ? { consent_ip: fields.consentIp } : {}),
        ...(fields.source !== undefined ? { source: fields.source } : {}),
        ...(fields.status !== undefined ? { status: fields.status } : {}),
      })
      .where('id', '=', id)
      .execute();
  }

  /** Records that a confirmation email went out, for the 10-minute throttle. */
  async markConfirmationSent(id: number, now: Date): Promise<void> {
    await this.db.updateTable('subscribers').set({ confirmation_sent_at: now.toISOString() }).where('id', '=', id).execute();
  }

  /** Replaces the subscriber's lists with `lists`; safe when two requests do it at once (an upsert, not delete-then-insert). */
  async replaceLists(id: number, lists: ListChoice[], now: Date): Promise<void> {
    let gone = this.db.deleteFrom('subscriptions').where('subscriber_id', '=', id);
    if (lists.length > 0) gone = gone.where('list_slug', 'not in', lists.map((l) => l.slug));
    await gone.execute();
    if (lists.length === 0) return;
    await this.db
      .insertInto('subscriptions')
      .values(lists.map((l) => ({ subscriber_id: id, list_slug: l.slug, frequency: l.frequency, created_at: now.toISOString() })))
      .onConflict((oc) => oc.columns(['subscriber_id', 'list_slug']).doUpdateSet((eb) => ({ frequency: eb.ref('excluded.frequency') })))
      .execute();
  }

  /** Erases a subscriber and their subscriptions (personal data gone). True when one existed. */
  async remove(id: number): Promise<boolean> {
    await this.db.deleteFrom('subscriptions').where('subscriber_id', '=', id).execute();
    const result = await this.db.deleteFrom('subscribers').where('id', '=', id).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  /** A page of subscribers, newest first, optionally filtered by status, list and a search on email or name. */
  async page(options: { page: number; perPage: number; search?: string | undefined; status?: SubscriberStatus | undefined; list?: string | undefined }): Promise<SubscriberPage> {
    let query = this.db.selectFrom('subscribers');
    if (options.status) query = query.where('status', '=', options.status);
    if (options.search) {
      const pattern = `%${options.search.toLowerCase().replace(/[%_\\]/g, (c) => `\\${c}`)}%`;
      query = query.where((eb) =>
        eb.or([
          eb('email_key', 'like', sql<string>`${pattern} escape '\\'`),
          eb(sql`lower(coalesce(name, ''))`, 'like', sql<string>`${pattern} escape '\\'`),
        ]),
      );
    }
    if (options.list) {
      const slug = options.list;
      query = query.where('id', 'in', (eb) => eb.selectFrom('subscriptions').select('subscriber_id').where('list_slug', '=', slug));
    }
    const { total } = await query.select((eb) => eb.fn.countAll<number>().as('total')).executeTakeFirstOrThrow();
    const rows = await query
      .selectAll()
      .orderBy('id', 'desc')
      .limit(options.perPage)
      .offset((options.page - 1) * options.perPage)
      .execute();
    return { total: Number(total), page: options.page, perPage: options.perPage, subscribers: await this.attachLists(rows) };
  }

  /** Subscribers in id order after `afterId`, `limit` at a time, with lists: for streaming exports. */
  async batchAfter(afterId: number, limit: number, list?: string): Promise<Subscriber[]> {
    let query = this.db.selectFrom('subscribers').selectAll().where('id', '>', afterId);
    if (list) query = query.where('id', 'in', (eb) => eb.selectFrom('subscriptions').select('subscriber_id').where('list_slug', '=', list));
    return this.attachLists(await query.orderBy('id').limit(limit).execute());
  }

  /** How many subscribers have each status. */
  async countByStatus(): Promise<Record<SubscriberStatus, number>> {
    const rows = await this.db
      .selectFrom('subscribers')
      .select(['status', (eb) => eb.fn.countAll<number>().as('count')])
      .groupBy('status')
      .execute();
    const counts: Record<SubscriberStatus, number> = { pending: 0, active: 0, unsubscribed: 0, bounced: 0, complained: 0 };
    for (const row of rows) counts[row.status] = Number(row.count);
    return counts;
  }

  /** Adds an address to the suppression list (never mailed again). */
  async suppress(emailKey: string, reason: 'bounced' | 'complained' | 'manual', detail: string | null, now: Date): Promise<void> {
    await this.db
      .insertInto('suppressions')
      .values({ email_key: emailKey, reason, detail, created_at: now.toISOString() })
      .onConflict((oc) => oc.column('email_key').doNothing())
      .execute();
  }

  /** True when the address must not be mailed. */
  async isSuppressed(emailKey: string): Promise<boolean> {
    return (await this.db.selectFrom('suppressions').select('email_key').where('email_key', '=', emailKey).executeTakeFirst()) !== undefined;
  }

  /** The keys among `emailKeys` that are suppressed, in one query per 500 keys. */
  async suppressedAmong(emailKeys: string[]): Promise<Set<string>> {
    const found = new Set<string>();
    for (let i = 0; i < emailKeys.length; i += 500) {
      const rows = await this.db.selectFrom('suppressions').select('email_key').where('email_key', 'in', emailKeys.slice(i, i + 500)).execute();
      for (const row of rows) found.add(row.email_key);
    }
    return found;
  }

  /** Why the address is suppressed, or undefined when it is not. */
  async suppression(emailKey: string): Promise<Suppression | undefined> {
    return (await this.suppressionsOf([emailKey])).get(emailKey);
  }

  /** Each row with its suppression (null when none): one query per 1,000 rows, for list pages. */
  async attachSuppressions<T extends { emailKey: string }>(rows: T[]): Promise<WithSuppression<T>[]> {
    const found = await this.suppressionsOf(rows.map((r) => r.emailKey));
    return rows.map((row) => ({ ...row, suppression: found.get(row.emailKey) ?? null }));
  }

  /**
   * Takes the address off the suppression list; a subscriber it had bounced or complained is active
   * again if they still have lists, else unsubscribed, and pending if they never confirmed. Returns
   * what was lifted, or undefined when the address was not suppressed.
   */
  async unsuppress(emailKey: string, now: Date): Promise<LiftedSuppression | undefined> {
    return this.db.transaction().execute(async (trx) => (await liftWhere(trx, now, { emailKey }))[0]);
  }

  /**
   * Lifts every suppression one edition's bounces caused (a relay that refused a whole send), in one
   * transaction, with the same status rule as `unsuppress`. Returns the lifted ones in address order.
   */
  async unsuppressEdition(editionId: number, now: Date): Promise<LiftedSuppression[]> {
    return this.db.transaction().execute((trx) => liftWhere(trx, now, { editionId }));
  }

  private async suppressionsOf(emailKeys: string[]): Promise<Map<string, Suppression>> {
    const found = new Map<string, Suppression>();
    for (let i = 0; i < emailKeys.length; i += KEYS_PER_QUERY) {
      const rows = await this.db
        .selectFrom('suppressions as x')
        .leftJoin('deliveries as d', 'd.id', 'x.delivery_id')
        .select(['x.email_key', 'x.reason', 'x.detail', 'x.created_at', 'x.delivery_id', 'd.edition_id'])
        .where('x.email_key', 'in', emailKeys.slice(i, i + KEYS_PER_QUERY))
        .execute();
      for (const r of rows) found.set(r.email_key, { reason: r.reason, detail: r.detail, since: r.created_at, deliveryId: r.delivery_id, editionId: r.edition_id });
    }
    return found;
  }

  private async withLists(row: SubscriberRow): Promise<Subscriber> {
    return (await this.attachLists([row]))[0]!;
  }

  private async attachLists(rows: SubscriberRow[]): Promise<Subscriber[]> {
    if (rows.length === 0) return [];
    const subs = await this.db
      .selectFrom('subscriptions')
      .select(['subscriber_id', 'list_slug', 'frequency'])
      .where('subscriber_id', 'in', rows.map((r) => r.id))
      .orderBy('list_slug')
      .execute();
    const byId = new Map<number, ListChoice[]>();
    for (const s of subs) {
      const list = byId.get(s.subscriber_id) ?? [];
      list.push({ slug: s.list_slug, frequency: s.frequency });
      byId.set(s.subscriber_id, list);
    }
    return rows.map((row) => subscriberOf(row, byId.get(row.id) ?? []));
  }
}

function subscriberOf(row: SubscriberRow, lists: ListChoice[]): Subscriber {
  return {
    id: row.id,
    email: row.email,
    emailKey: row.email_key,
    name: row.name,
    status: row.status,
    source: row.source,
    consentIp: row.consent_ip,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    confirmedAt: row.confirmed_at,
    unsubscribedAt: row.unsubscribed_at,
    confirmationSentAt: row.confirmation_sent_at,
    lists,
  };
}

/**
 * Deletes the suppressions of one address or of one edition's bounces and restores their subscribers'
 * status. The delete's RETURNING is the truth of what was lifted, so two lifts at once never both report a row.
 */
async function liftWhere(trx: Kysely<Database>, now: Date, which: { emailKey: string } | { editionId: number }): Promise<LiftedSuppression[]> {
  const query = trx.deleteFrom('suppressions');
  const deleted = await ('emailKey' in which
    ? query.where('email_key', '=', which.emailKey)
    : query.where('delivery_id', 'in', (eb) => eb.selectFrom('deliveries').select('id').where('edition_id', '=', which.editionId))
  )
    .returning((eb) => [
      'email_key',
      'reason',
      'detail',
      'created_at',
      'delivery_id',
      eb.selectFrom('deliveries').select('edition_id').whereRef('deliveries.id', '=', 'suppressions.delivery_id').as('edition_id'),
    ])
    .execute();
  const at = now.toISOString();
  const subscribers = new Map<string, { email: string; status: SubscriberStatus }>();
  for (let i = 0; i < deleted.length; i += KEYS_PER_QUERY) {
    const keys = deleted.slice(i, i + KEYS_PER_QUERY).map((r) => r.email_key);
    await trx
      .updateTable('subscribers')
      .set((eb) => {
        const hasLists = eb.exists(eb.selectFrom('subscriptions').select('subscriptions.subscriber_id').whereRef('subscriptions.subscriber_id', '=', 'subscribers.id'));
        // Never confirmed (their confirmation bounced): pending again, so lifting the bounce cannot skip double opt-in.
        const unconfirmed = eb('confirmed_at', 'is', null);
        return {
          status: eb
            .case()
            .when(unconfirmed)
            .then(sql.lit<SubscriberStatus>('pending'))
            .when(hasLists)
            .then(sql.lit<SubscriberStatus>('active'))
            .else(sql.lit<SubscriberStatus>('unsubscribed'))
            .end(),
          unsubscribed_at: eb.case().when(eb.or([hasLists, unconfirmed])).then(sql.lit<string | null>(null)).else(eb.fn.coalesce('unsubscribed_at', eb.val(at))).end(),
          updated_at: at,
        };
      })
      .where('email_key', 'in', keys)
      .where('status', 'in', SUPPRESSED_STATUSES)
      .execute();
    const rows = await trx.selectFrom('subscribers').select(['email_key', 'email', 'status']).where('email_key', 'in', keys).execute();
    for (const r of rows) subscribers.set(r.email_key, { email: r.email, status: r.status });
  }
  return deleted
    .map((r) => ({
      emailKey: r.email_key,
      email: subscribers.get(r.email_key)?.email ?? r.email_key,
      status: subscribers.get(r.email_key)?.status ?? null,
      reason: r.reason,
      detail: r.detail,
      since: r.created_at,
      deliveryId: r.delivery_id,
      editionId: r.edition_id ?? null,
    }))
    .sort((a, b) => (a.emailKey < b.emailKey ? -1 : a.emailKey > b.emailKey ? 1 : 0));
}

async function insertChunk(trx: Kysely<Database>, subscribers: NewSubscriber[], now: Date): Promise<number> {
  const at = now.toISOString();
  const inserted = await trx
    .insertInto('subscribers')
    .values(
      subscribers.map((s) => ({
        email: s.email,
        email_key: s.emailKey,
        name: s.name,
        status: s.status,
        source: s.source,
        consent_ip: s.consentIp,
        created_at: at,
        updated_at: at,
        confirmed_at: s.status === 'active' ? at : null,
      })),
    )
    .onConflict((oc) => oc.column('email_key').doNothing())
    .returning(['id', 'email_key'])
    .execute();
  const byKey = new Map(subscribers.map((s) => [s.emailKey, s]));
  const rows = inserted.flatMap(({ id, email_key }) =>
    (byKey.get(email_key)?.lists ?? []).map((l) => ({ subscriber_id: id, list_slug: l.slug, frequency: l.frequency, created_at: at })),
  );
  for (let i = 0; i < rows.length; i += 5000) await trx.insertInto('subscriptions').values(rows.slice(i, i + 5000)).execute();
  return inserted.length;
}
