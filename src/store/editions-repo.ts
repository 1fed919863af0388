import type { Kysely } from 'kysely';
import type { CompiledEdition } from '../render/compile-edition.ts';
import type { Audience, Database, EditionRow, EditionStatus } from './schema.ts';

/** An edition as stored, with its compiled render decoded. */
export interface StoredEdition extends Omit<EditionRow, 'story_slugs' | 'compiled'> {
  storySlugs: string[];
  compiled: CompiledEdition;
}

/** A new edition to store. */
export interface NewEdition {
  listSlug: string;
  kind: 'story' | 'digest';
  audience: Audience;
  storySlugs: string[];
  compiled: CompiledEdition;
  htmlBytes: number;
  coversUntil: Date;
  scheduleId?: number | null;
}

/** Editions and their compiled renders. */
export class EditionsRepo {
  constructor(private readonly db: Kysely<Database>) {}

  /** Stores a new edition (status draft); returns its id. */
  async insert(edition: NewEdition, now: Date): Promise<number> {
    const { id } = await this.db
      .insertInto('editions')
      .values({
        list_slug: edition.listSlug,
        kind: edition.kind,
        audience: edition.audience,
        subject: edition.compiled.subject,
        preheader: edition.compiled.preheader,
        story_slugs: JSON.stringify(edition.storySlugs),
        compiled: JSON.stringify(edition.compiled),
        html_bytes: edition.htmlBytes,
        covers_until: edition.coversUntil.toISOString(),
        status: 'draft',
        last_error: null,
        created_at: now.toISOString(),
        enqueued_at: null,
        completed_at: null,
        schedule_id: edition.scheduleId ?? null,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    return id;
  }

  /** The edition with this id. */
  async find(id: number): Promise<StoredEdition | undefined> {
    const row = await this.db.selectFrom('editions').selectAll().where('id', '=', id).executeTakeFirst();
    return row && decode(row);
  }

  /** All editions, newest first, without their compiled render (for listings). */
  async list(limit = 100): Promise<Omit<EditionRow, 'compiled'>[]> {
    return this.db
      .selectFrom('editions')
      .select(['id', 'list_slug', 'kind', 'audience', 'subject', 'preheader', 'story_slugs', 'html_bytes', 'covers_until', 'status', 'last_error', 'created_at', 'enqueued_at', 'completed_at', 'schedule_id'])
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
  }

  /** The newest edition of a list that was sent (or is being sent): where --since-last starts. */
  async lastSent(listSlug: string, audience?: Audience): Promise<StoredEdition | undefined> {
    let query = this.db.selectFrom('editions').selectAll().where('list_slug', '=', listSlug).where('status', 'in', ['sending', 'paused', 'sent']);
    if (audience) query = query.where('audience', 'in', ['all', audience]);
    const row = await query.orderBy('covers_until', 'desc').orderBy('id', 'desc').executeTakeFirst();
    return row && decode(row);
  }

  /** Sets the status (and its timestamp) and the error shown by `gazette status`. */
  async setStatus(id: number, status: EditionStatus, now: Date, lastError: string | null = null): Promise<void> {
    await this.db
      .updateTable('editions')
      .set({
        status,
        last_error: lastError,
        ...(status === 'sending' ? { enqueued_at: now.toISOString() } : {}),
        ...(status === 'sent' ? { completed_at: now.toISOString() } : {}),
      })
      .where('id', '=', id)
      .execute();
  }

  /** Ids of editions currently paused: workers hold their jobs back. */
  async pausedIds(): Promise<number[]> {
    return (await this.db.selectFrom('editions').select('id').where('status', '=', 'paused').execute()).map((r) => r.id);
  }
}

function decode(row: EditionRow): StoredEdition {
  const { story_slugs, compiled, ...rest } = row;
  return { ...rest, storySlugs: JSON.parse(story_slugs) as string[], compiled: JSON.parse(compiled) as CompiledEdition };
}
