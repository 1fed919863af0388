import type { Kysely } from 'kysely';
import type { NewSchedule, ScheduleRecords } from '../schedule/schedule-records.ts';
import type { Database, ScheduleFireRow, ScheduleRow } from './schema.ts';
import type { FireStatus, Schedule, ScheduleFire, ScheduleStatus } from '../model/schedule.ts';

/** Schedules, their fires and the stories on-publish schedules have seen. */
export class SchedulesRepo implements ScheduleRecords {
  constructor(private readonly db: Kysely<Database>) {}

  /** Stores a new active schedule, and for on-publish the stories already published (they are not sent). */
  async insert(schedule: NewSchedule, now: Date, alreadyPublished: string[] = []): Promise<Schedule> {
    const at = now.toISOString();
    return this.db.transaction().execute(async (trx) => {
      const row = await trx
        .insertInto('schedules')
        .values({
          kind: schedule.kind,
          list_slug: schedule.listSlug,
          edition_id: schedule.editionId ?? null,
          at: schedule.at?.toISOString() ?? null,
          cron: schedule.cron ?? null,
          timezone: schedule.timezone ?? null,
          audience: schedule.audience,
          status: 'active',
          created_at: at,
          updated_at: at,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      for (let i = 0; i < alreadyPublished.length; i += 500) {
        await trx
          .insertInto('schedule_published')
          .values(alreadyPublished.slice(i, i + 500).map((slug) => ({ schedule_id: row.id, story_slug: slug, edition_id: null, created_at: at })))
          .onConflict((oc) => oc.columns(['schedule_id', 'story_slug']).doNothing())
          .execute();
      }
      return scheduleOf(row);
    });
  }

  /** The schedule with this id. */
  async find(id: number): Promise<Schedule | undefined> {
    const row = await this.db.selectFrom('schedules').selectAll().where('id', '=', id).executeTakeFirst();
    return row && scheduleOf(row);
  }

  /** Schedules, oldest first; only those with the given status when asked. */
  async list(status?: ScheduleStatus): Promise<Schedule[]> {
    let query = this.db.selectFrom('schedules').selectAll();
    if (status) query = query.where('status', '=', status);
    return (await query.orderBy('id').execute()).map(scheduleOf);
  }

  /** Sets the status (cancelled, done) and moves updated_at, so other schedulers notice. Returns false when unchanged. */
  async setStatus(id: number, status: ScheduleStatus, now: Date, onlyIf: ScheduleStatus = 'active'): Promise<boolean> {
    const result = await this.db
      .updateTable('schedules')
      .set({ status, updated_at: now.toISOString() })
      .where('id', '=', id)
      .where('status', '=', onlyIf)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  /**
   * Claims a fire: inserts it as running unless (schedule, fire time) is already recorded.
   * Returns the fire's id, or undefined when another run (or process) has it.
   */
  async claimFire(scheduleId: number, fireAt: Date, now: Date, leaseMs: number): Promise<number | undefined> {
    const row = await this.db
      .insertInto('schedule_fires')
      .values({
        schedule_id: scheduleId,
        fire_at: fireAt.toISOString(),
        status: 'running',
        edition_id: null,
        detail: null,
        created_at: now.toISOString(),
        updated_at: now.toISOString(),
        lease_until: new Date(now.getTime() + leaseMs).toISOString(),
        attempts: 1,
        next_attempt_at: null,
      })
      .onConflict((oc) => oc.columns(['schedule_id', 'fire_at']).doNothing())
      .returning('id')
      .executeTakeFirst();
    return row?.id;
  }

  /** Records fires that will not run (missed), leaving alone any already recorded. */
  async recordMissed(scheduleId: number, fires: { at: Date; detail: string }[], now: Date): Promise<void> {
    if (fires.length === 0) return;
    const stamp = now.toISOString();
    await this.db
      .insertInto('schedule_fires')
      .values(fires.map((f) => ({ schedule_id: scheduleId, fire_at: f.at.toISOString(), status: 'missed' as const, edition_id: null, detail: f.detail, created_at: stamp, updated_at: stamp })))
      .onConflict((oc) => oc.columns(['schedule_id', 'fire_at']).doNothing())
      .execute();
  }

  /** Updates a claimed fire: its outcome, the edition it made, what happened. */
  async updateFire(fireId: number, fields: { status?: FireStatus; editionId?: number | null; detail?: string | null; nextAttemptAt?: Date | null }, now: Date): Promise<void> {
    await this.db
      .updateTable('schedule_fires')
      .set({
        updated_at: now.toISOString(),
        ...(fields.status !== undefined ? { status: fields.status } : {}),
        ...(fields.nextAttemptAt !== undefined ? { next_attempt_at: fields.nextAttemptAt?.toISOString() ?? null } : {}),
        ...(fields.editionId !== undefined ? { edition_id: fields.editionId } : {}),
        ...(fields.detail !== undefined ? { detail: fields.detail } : {}),
      })
      .where('id', '=', fireId)
      .execute();
  }

  /** Fires waiting to be tried again whose time has come. */
  async retryingDue(now: Date): Promise<ScheduleFire[]> {
    const rows = await this.db.selectFrom('schedule_fires').selectAll().where('status', '=', 'retrying').where('next_attempt_at', '<=', now.toISOString()).orderBy('id').execute();
    return rows.map(fireOf);
  }

  /** Claims a retrying fire for another try (running, leased, one more attempt); false when another process took it. */
  async claimRetry(fireId: number, now: Date, leaseMs: number): Promise<boolean> {
    const result = await this.db
      .updateTable('schedule_fires')
      .set((eb) => ({
        status: 'running',
        lease_until: new Date(now.getTime() + leaseMs).toISOString(),
        attempts: eb(eb.fn.coalesce('attempts', eb.val(1)), '+', 1),
        next_attempt_at: null,
        updated_at: now.toISOString(),
      }))
      .where('id', '=', fireId)
      .where('status', '=', 'retrying')
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  /** Renews a running fire's lease: its owner is alive and still working on it. */
  async renewFire(fireId: number, until: Date): Promise<void> {
    await this.db.updateTable('schedule_fires').set({ lease_until: until.toISOString() }).where('id', '=', fireId).where('status', '=', 'running').execute();
  }

  /** The newest recorded fire time of a schedule: catch-up starts after it. */
  async lastFireAt(scheduleId: number): Promise<Date | undefined> {
    const row = await this.db.selectFrom('schedule_fires').select('fire_at').where('schedule_id', '=', scheduleId).orderBy('fire_at', 'desc').limit(1).executeTakeFirst();
    return row ? new Date(row.fire_at) : undefined;
  }

  /** A schedule's fires, newest first. */
  async fires(scheduleId: number, limit = 20): Promise<ScheduleFire[]> {
    const rows = await this.db.selectFrom('schedule_fires').selectAll().where('schedule_id', '=', scheduleId).orderBy('fire_at', 'desc').orderBy('id', 'desc').limit(limit).execute();
    return rows.map(fireOf);
  }

  /** Fires still marked running whose lease ran out: their process died (or stalled) half-way. */
  async runningFires(now: Date): Promise<ScheduleFire[]> {
    const rows = await this.db
      .selectFrom('schedule_fires')
      .selectAll()
      .where('status', '=', 'running')
      .where((eb) => eb.or([eb('lease_until', '<', now.toISOString()), eb('lease_until', 'is', null)]))
      .orderBy('id')
      .execute();
    return rows.map(fireOf);
  }

  /** Claims a story for an on-publish schedule; false when it was claimed (sent, or present at creation) before. */
  async claimStory(scheduleId: number, slug: string, now: Date): Promise<boolean> {
    const row = await this.db
      .insertInto('schedule_published')
      .values({ schedule_id: scheduleId, story_slug: slug, edition_id: null, created_at: now.toISOString() })
      .onConflict((oc) => oc.columns(['schedule_id', 'story_slug']).doNothing())
      .returning('story_slug')
      .executeTakeFirst();
    return row !== undefined;
  }

  /** Notes the edition made for a claimed story. */
  async setStoryEdition(scheduleId: number, slug: string, editionId: number): Promise<void> {
    await this.db.updateTable('schedule_published').set({ edition_id: editionId }).where('schedule_id', '=', scheduleId).where('story_slug', '=', slug).execute();
  }

  /** Gives a claim back when no edition could be made, so the next check tries again. */
  async releaseStory(scheduleId: number, slug: string): Promise<void> {
    await this.db.deleteFrom('schedule_published').where('schedule_id', '=', scheduleId).where('story_slug', '=', slug).where('edition_id', 'is', null).execute();
  }

  /** Slugs an on-publish schedule has claimed. */
  async claimedStories(scheduleId: number): Promise<Set<string>> {
    const rows = await this.db.selectFrom('schedule_published').select('story_slug').where('schedule_id', '=', scheduleId).execute();
    return new Set(rows.map((r) => r.story_slug));
  }

  /** Editions an on-publish schedule made that are still drafts (enqueueing was interrupted). */
  async unsentStoryEditions(scheduleId: number): Promise<number[]> {
    const rows = await this.db
      .selectFrom('schedule_published as p')
      .innerJoin('editions as e', 'e.id', 'p.edition_id')
      .select('e.id')
      .where('p.schedule_id', '=', scheduleId)
      .where('e.status', '=', 'draft')
      .execute();
    return rows.map((r) => r.id);
  }

  /** The stories an on-publish schedule sent, newest first, each with its edition. */
  async sentStories(scheduleId: number, limit = 50): Promise<{ slug: string; editionId: number; at: string }[]> {
    const rows = await this.db
      .selectFrom('schedule_published')
      .select(['story_slug', 'edition_id', 'created_at'])
      .where('schedule_id', '=', scheduleId)
      .where('edition_id', 'is not', null)
      .orderBy('created_at', 'desc')
      .limit(limit)
      .execute();
    return rows.map((r) => ({ slug: r.story_slug, editionId: r.edition_id!, at: r.created_at }));
  }

  /** How many stories an on-publish schedule has sent. */
  async sentStoryCount(scheduleId: number): Promise<number> {
    const row = await this.db
      .selectFrom('schedule_published')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('schedule_id', '=', scheduleId)
      .where('edition_id', 'is not', null)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }
}

function scheduleOf(row: ScheduleRow): Schedule {
  return {
    id: row.id,
    kind: row.kind,
    listSlug: row.list_slug,
    editionId: row.edition_id,
    at: row.at,
    cron: row.cron,
    timezone: row.timezone,
    audience: row.audience,
    status: row.status,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function fireOf(row: ScheduleFireRow): ScheduleFire {
  return {
    id: row.id,
    scheduleId: row.schedule_id,
    fireAt: row.fire_at,
    status: row.status,
    editionId: row.edition_id,
    detail: row.detail,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    leaseUntil: row.lease_until,
    attempts: row.attempts ?? 1,
    nextAttemptAt: row.next_attempt_at,
  };
}
