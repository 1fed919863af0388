import { sql, type Kysely } from 'kysely';
import type { EditionOrigin } from '../model/content.ts';
import type { EditionStore } from '../delivery/edition-store.ts';
import type { EditionRecords, NewEdition } from '../edition/edition-records.ts';
import type { CompiledEdition } from '../render/compile-edition.ts';
import type { Database, EditionRow } from './schema.ts';
import { FINISHED_STATUSES, type Audience, type Edition, type EditionStatus, type EditionSummary, type PauseKind } from '../model/edition.ts';


/** The first wait after an outage pause; each further one doubles it, up to OUTAGE_BACKOFF_MAX_MS. */
export const OUTAGE_BACKOFF_MS = 30_000;
export const OUTAGE_BACKOFF_MAX_MS = 15 * 60_000;

/** Editions, their compiled renders and the state of their sends. */
export class EditionsRepo implements EditionRecords {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /**
   * Stores a new edition (status draft); returns its id. `withId`, when given, makes the final
   * compiled edition from its id (a digest's "view in browser" link is its own page), in the same
   * transaction, so no edition is ever stored without it.
   */
  async insert(edition: NewEdition, now: Date, withId?: (id: number) => CompiledEdition): Promise<number> {
    return this.db.transaction().execute(async (trx) => {
      const { id } = await trx
        .insertInto('editions')
        .values({
          list_slug: edition.listSlug,
          kind: edition.kind,
          audience: edition.audience,
          subject: edition.compiled.subject,
          preheader: edition.compiled.preheader,
          story_slugs: JSON.stringify(edition.storySlugs),
          compiled: JSON.stringify(edition.compiled),
          origin: JSON.stringify(edition.origin),
          html_bytes: edition.htmlBytes,
          covers_until: edition.coversUntil.toISOString(),
          status: 'draft',
          last_error: null,
          created_at: now.toISOString(),
          enqueued_at: null,
          completed_at: null,
          schedule_id: edition.scheduleId ?? null,
          pause_kind: null,
          resume_at: null,
          outage_pauses: 0,
          audience_closed_at: null,
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      if (withId) {
        const compiled = withId(id);
        await trx
          .updateTable('editions')
          .set({ compiled: JSON.stringify(compiled), html_bytes: Buffer.byteLength(compiled.html.parts.join('')) })
          .where('id', '=', id)
          .execute();
      }
      return id;
    });
  }

  /** The edition with this id. */
  async find(id: number): Promise<Edition | undefined> {
    const row = await this.db.selectFrom('editions').selectAll().where('id', '=', id).executeTakeFirst();
    return row && decode(row);
  }

  /** All editions, newest first, without their compiled render (for listings). */
  async list(limit = 100): Promise<EditionSummary[]> {
    const rows = await this.db
      .selectFrom('editions')
      .select(['id', 'list_slug', 'kind', 'audience', 'subject', 'preheader', 'story_slugs', 'html_bytes', 'covers_until', 'status', 'last_error', 'created_at', 'enqueued_at', 'completed_at', 'schedule_id', 'pause_kind', 'resume_at', 'outage_pauses', 'audience_closed_at'])
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
    return rows.map(summaryOf);
  }

  /** The newest edition of a list that was sent (or is being sent): where --since-last starts. */
  async lastSent(listSlug: string, audience?: Audience): Promise<Edition | undefined> {
    let query = this.db.selectFrom('editions').selectAll().where('list_slug', '=', listSlug).where('status', 'in', ['sending', 'paused', ...FINISHED_STATUSES]);
    if (audience) query = query.where('audience', 'in', ['all', audience]);
    const row = await query.orderBy('covers_until', 'desc').orderBy('id', 'desc').executeTakeFirst();
    return row && decode(row);
  }

  async startSending(id: number, now: Date): Promise<boolean> {
    const result = await this.db
      .updateTable('editions')
      .set({ status: 'sending', enqueued_at: now.toISOString(), completed_at: null, last_error: null })
      .where('id', '=', id)
      .where('status', '=', 'draft')
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  async replaceDraft(id: number, compiled: CompiledEdition): Promise<boolean> {
    const result = await this.db
      .updateTable('editions')
      .set({ compiled: JSON.stringify(compiled), subject: compiled.subject, preheader: compiled.preheader, html_bytes: Buffer.byteLength(compiled.html.parts.join('')) })
      .where('id', '=', id)
      .where('status', '=', 'draft')
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  async cancel(id: number, reason: string, now: Date): Promise<boolean> {
    const at = now.toISOString();
    return this.db.transaction().execute(async (trx) => {
      const result = await trx
        .updateTable('editions')
        .set({ status: 'cancelled', last_error: reason, completed_at: at, pause_kind: null, resume_at: null })
        .where('id', '=', id)
        .where('status', 'in', ['draft', 'sending', 'paused'])
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) === 0) return false;
      // A delivery a worker holds right now is left to it: its outcome (sent, most likely) is the truth.
      await trx
        .updateTable('deliveries')
        .set({ status: 'skipped', last_error: reason, updated_at: at })
        .where('edition_id', '=', id)
        .where('status', '=', 'queued')
        .where((eb) => eb.or([eb('claim_until', 'is', null), eb('claim_until', '<=', now.getTime())]))
        .execute();
      return true;
    });
  }

  /** Sets the status (and its timestamp) and the error shown by `gazette status`; a status other than paused clears the pause. */
  async setStatus(id: number, status: EditionStatus, now: Date, lastError: string | null = null): Promise<void> {
    await this.db
      .updateTable('editions')
      .set({
        status,
        last_error: lastError,
        ...(status === 'sending' ? { enqueued_at: now.toISOString(), completed_at: null } : {}),
        ...(FINISHED_STATUSES.includes(status) ? { completed_at: now.toISOString() } : {}),
        ...(status !== 'paused' ? { pause_kind: null, resume_at: null } : {}),
      })
      .where('id', '=', id)
      .execute();
  }

  /**
   * Pauses a send in progress, with the reason; an outage pause also says when a worker may try
   * again (a backoff that grows with each outage pause in a row). False when it was not sending.
   */
  async pause(id: number, kind: PauseKind, reason: string): Promise<boolean> {
    const now = this.now();
    const row = await this.db.selectFrom('editions').select('outage_pauses').where('id', '=', id).executeTakeFirst();
    const outages = (row?.outage_pauses ?? 0) + (kind === 'outage' ? 1 : 0);
    const wait = Math.min(OUTAGE_BACKOFF_MAX_MS, OUTAGE_BACKOFF_MS * 2 ** Math.max(0, outages - 1));
    const result = await this.db
      .updateTable('editions')
      .set({
        status: 'paused',
        pause_kind: kind,
        last_error: reason,
        outage_pauses: outages,
        resume_at: kind === 'outage' ? new Date(now.getTime() + wait).toISOString() : null,
      })
      .where('id', '=', id)
      // A sending edition pauses; one already paused by an outage (a failed retry) waits longer.
      .where((eb) => (kind === 'outage' ? eb.or([eb('status', '=', 'sending'), eb.and([eb('status', '=', 'paused'), eb('pause_kind', '=', 'outage')])]) : eb('status', '=', 'sending')))
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  /** Whether any message of the edition went out. */
  async anySent(id: number): Promise<boolean> {
    const row = await this.db.selectFrom('deliveries').select('id').where('edition_id', '=', id).where('status', '=', 'sent').limit(1).executeTakeFirst();
    return row !== undefined;
  }

  /** Editions paused by an outage whose wait is over: a worker tries them again. */
  async outagesDue(): Promise<number[]> {
    const rows = await this.db
      .selectFrom('editions')
      .select('id')
      .where('status', '=', 'paused')
      .where('pause_kind', '=', 'outage')
      .where('resume_at', '<=', this.now().toISOString())
      .orderBy('id')
      .execute();
    return rows.map((r) => r.id);
  }

  /** Resumes a paused edition (false when it was not paused); `operator` also forgets earlier outages. */
  async resume(id: number, by: 'operator' | 'worker'): Promise<boolean> {
    const result = await this.db
      .updateTable('editions')
      .set({ status: 'sending', pause_kind: null, resume_at: null, last_error: null, enqueued_at: this.now().toISOString(), ...(by === 'operator' ? { outage_pauses: 0 } : {}) })
      .where('id', '=', id)
      .where('status', '=', 'paused')
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  /**
   * Closes a send whose deliveries are all done: sent when none failed, failed when all did,
   * incomplete otherwise. Returns the new status, or undefined while deliveries are still queued
   * (or the edition is not sending).
   */
  async finish(id: number): Promise<EditionStatus | undefined> {
    const counts = await this.db
      .selectFrom('deliveries')
      .select([
        sql<number>`sum(case when status = 'queued' then 1 else 0 end)`.as('queued'),
        sql<number>`sum(case when status = 'sent' then 1 else 0 end)`.as('sent'),
        sql<number>`sum(case when status = 'failed' then 1 else 0 end)`.as('failed'),
        sql<number>`sum(case when status = 'bounced' then 1 else 0 end)`.as('bounced'),
      ])
      .where('edition_id', '=', id)
      .executeTakeFirstOrThrow();
    if (Number(counts.queued ?? 0) > 0) return undefined;
    const failed = Number(counts.failed ?? 0);
    const sent = Number(counts.sent ?? 0);
    // Nothing went out although there were people to send to: that is a failure, not a send.
    const status: EditionStatus = sent === 0 && failed + Number(counts.bounced ?? 0) > 0 ? 'failed' : failed === 0 ? 'sent' : 'incomplete';
    const lastError =
      failed > 0
        ? `${failed} ${failed === 1 ? 'delivery' : 'deliveries'} failed after every retry: run \`gazette send ${id}\` to try them again`
        : status === 'failed'
          ? 'every delivery bounced: check the addresses, and the relay (gazette subscribers unsuppress --edition ' + id + ' lifts them)'
          : null;
    const result = await this.db
      .updateTable('editions')
      .set({ status, last_error: lastError, completed_at: this.now().toISOString(), outage_pauses: 0 })
      .where('id', '=', id)
      .where('status', '=', 'sending')
      // Checked in the same statement: a delivery queued again meanwhile keeps the send open.
      .where(({ not, exists, selectFrom }) => not(exists(selectFrom('deliveries').select('id').where('edition_id', '=', id).where('status', '=', 'queued'))))
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0 ? status : undefined;
  }

  /** Notes that the send has added every subscriber there was: a later send adds nobody new unless asked to. */
  async closeAudience(id: number): Promise<void> {
    await this.db.updateTable('editions').set({ audience_closed_at: this.now().toISOString() }).where('id', '=', id).where('audience_closed_at', 'is', null).execute();
  }

  /** Ids of editions currently paused: workers hold their jobs back. */
  async pausedIds(): Promise<number[]> {
    // A cancelled edition's jobs are given back like a paused one's (the ledger says skip them).
    return (await this.db.selectFrom('editions').select('id').where('status', 'in', ['paused', 'cancelled']).execute()).map((r) => r.id);
  }
}

function summaryOf(row: Omit<EditionRow, 'compiled' | 'origin'>): EditionSummary {
  return {
    id: row.id,
    listSlug: row.list_slug,
    kind: row.kind,
    audience: row.audience,
    subject: row.subject,
    preheader: row.preheader,
    storySlugs: JSON.parse(row.story_slugs) as string[],
    htmlBytes: row.html_bytes,
    coversUntil: row.covers_until,
    status: row.status,
    lastError: row.last_error,
    pauseKind: row.pause_kind,
    resumeAt: row.resume_at,
    outagePauses: row.outage_pauses ?? 0,
    createdAt: row.created_at,
    enqueuedAt: row.enqueued_at,
    completedAt: row.completed_at,
    scheduleId: row.schedule_id,
    audienceClosedAt: row.audience_closed_at,
  };
}

function decode(row: EditionRow): Edition {
  return {
    ...summaryOf(row),
    compiled: JSON.parse(row.compiled) as CompiledEdition,
    origin: row.origin ? (JSON.parse(row.origin) as EditionOrigin) : undefined,
  };
}

/** The worker's view of the editions (its EditionStore port), over this repository. */
export function editionStoreOf(repo: EditionsRepo): EditionStore {
  return {
    async find(id) {
      const edition = await repo.find(id);
      return edition && { id: edition.id, listSlug: edition.listSlug, compiled: edition.compiled, origin: edition.origin };
    },
    pausedIds: () => repo.pausedIds(),
    pause: (id, kind, reason) => repo.pause(id, kind, reason),
    anySent: (id) => repo.anySent(id),
    outagesDue: () => repo.outagesDue(),
    resume: (id, by) => repo.resume(id, by),
    finish: (id) => repo.finish(id),
  };
}
