import { sql, type Kysely } from 'kysely';
import type { NoticeOutbox, NoticeOutcome, NoticeToSend } from '../delivery/notice-sender.ts';
import type { Database } from './schema.ts';
import type { NewNotice, NoticeKind } from '../model/notice.ts';

/** Transactional messages waiting for a worker, and how many went to a mailbox or IP lately. */
export class NoticesRepo implements NoticeOutbox {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Queues a notice, due at once; returns its id. */
  async add(notice: NewNotice): Promise<number> {
    const now = this.now();
    const { id } = await this.db
      .insertInto('notices')
      .values({
        kind: notice.kind,
        subscriber_id: notice.subscriberId,
        email: notice.email,
        mailbox_key: notice.mailboxKey,
        ip: notice.ip,
        envelope_from: notice.envelopeFrom,
        message_key: notice.messageKey,
        raw: notice.raw,
        status: 'queued',
        attempts: 0,
        last_error: null,
        available_at: now.getTime(),
        claim_token: null,
        claim_until: null,
        created_at: now.toISOString(),
        sent_at: null,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    return id;
  }

  /** Notices of these kinds asked for since `since`, to one mailbox or from one IP: what the throttles count. */
  async countSince(by: { mailboxKey: string } | { ip: string }, kinds: readonly NoticeKind[], since: Date): Promise<number> {
    let query = this.db
      .selectFrom('notices')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('kind', 'in', kinds)
      .where('created_at', '>=', since.toISOString());
    query = 'ip' in by ? query.where('ip', '=', by.ip) : query.where('mailbox_key', '=', by.mailboxKey);
    return Number((await query.executeTakeFirstOrThrow()).n);
  }

  async claim(limit: number, claim: string, leaseMs: number): Promise<NoticeToSend[]> {
    const now = this.now().getTime();
    const rows = await sql<{ id: number; email: string; envelope_from: string; message_key: string; raw: string; attempts: number }>`
      update notices set claim_token = ${claim}, claim_until = ${now + leaseMs}
      where id in (
        select id from notices
        where status = 'queued' and available_at <= ${now} and (claim_token is null or claim_until < ${now})
        order by available_at, id limit ${limit}
      )
      returning id, email, envelope_from, message_key, raw, attempts`.execute(this.db);
    return rows.rows
      .map((r) => ({ id: Number(r.id), email: r.email, envelopeFrom: r.envelope_from, messageKey: r.message_key, raw: r.raw, attempts: Number(r.attempts), claim }))
      .sort((a, b) => a.id - b.id);
  }

  async record(notice: NoticeToSend, outcome: NoticeOutcome): Promise<boolean> {
    const now = this.now();
    const at = now.toISOString();
    const free = { claim_token: null, claim_until: null };
    const update =
      outcome.status === 'sent'
        ? { ...free, status: 'sent' as const, sent_at: at, attempts: sql<number>`attempts + 1`, last_error: null }
        : outcome.status === 'retry'
          ? { ...free, available_at: outcome.at.getTime(), ...(outcome.error !== undefined ? { last_error: outcome.error } : {}), ...(outcome.counts ? { attempts: sql<number>`attempts + 1` } : {}) }
          : { ...free, status: outcome.status, last_error: outcome.error, attempts: sql<number>`attempts + 1` };
    return this.db.transaction().execute(async (trx) => {
      const row = await trx
        .updateTable('notices')
        .set(update)
        .where('id', '=', notice.id)
        .where('claim_token', '=', notice.claim)
        .where('status', '=', 'queued')
        .returning(['id', 'email', 'subscriber_id'])
        .executeTakeFirst();
      if (!row) return false;
      // An address that does not exist never will: it is suppressed like any hard bounce.
      if (outcome.status === 'bounced') {
        await trx
          .insertInto('suppressions')
          .values({ email_key: row.email.toLowerCase(), reason: 'bounced', detail: outcome.error, created_at: at, delivery_id: null })
          .onConflict((oc) => oc.column('email_key').doNothing())
          .execute();
        if (row.subscriber_id !== null) {
          await trx.updateTable('subscribers').set({ status: 'bounced', updated_at: at }).where('id', '=', row.subscriber_id).where('status', 'in', ['pending', 'active']).execute();
        }
      }
      return true;
    });
  }

  /** Notices queued and due now: what a draining worker still has to send. */
  async due(): Promise<number> {
    const row = await this.db
      .selectFrom('notices')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('status', '=', 'queued')
      .where('available_at', '<=', this.now().getTime())
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** Deletes notices finished more than `olderThanMs` ago: they hold tokens and personal data no longer needed. */
  async prune(olderThanMs: number): Promise<number> {
    const cutoff = new Date(this.now().getTime() - olderThanMs).toISOString();
    const result = await this.db.deleteFrom('notices').where('status', '!=', 'queued').where('created_at', '<', cutoff).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
