import type { Audience } from '../model/edition.ts';
import type { FireStatus, Schedule, ScheduleFire, ScheduleKind, ScheduleStatus } from '../model/schedule.ts';

/** A schedule to store; which fields are set depends on the kind. */
export interface NewSchedule {
  kind: ScheduleKind;
  listSlug: string;
  editionId?: number | null;
  at?: Date | null;
  cron?: string | null;
  timezone?: string | null;
  audience: Audience;
}

/** The schedules, their fires and the stories on-publish schedules saw: what the scheduler and schedule management need of the store. */
export interface ScheduleRecords {
  /** Stores a new active schedule, and for on-publish the stories already published (they are not sent). */
  insert(schedule: NewSchedule, now: Date, alreadyPublished?: string[]): Promise<Schedule>;
  /** The schedule with this id. */
  find(id: number): Promise<Schedule | undefined>;
  /** Schedules, oldest first; only those with the given status when asked. */
  list(status?: ScheduleStatus): Promise<Schedule[]>;
  /** Sets the status (cancelled, done) and moves updated_at, so other schedulers notice. Returns false when unchanged. */
  setStatus(id: number, status: ScheduleStatus, now: Date, onlyIf?: ScheduleStatus): Promise<boolean>;
  /**
   * Claims a fire: inserts it as running unless (schedule, fire time) is already recorded.
   * Returns the fire's id, or undefined when another run (or process) has it.
   */
  claimFire(scheduleId: number, fireAt: Date, now: Date, leaseMs: number): Promise<number | undefined>;
  /** Records fires that will not run (missed), leaving alone any already recorded. */
  recordMissed(scheduleId: number, fires: { at: Date; detail: string }[], now: Date): Promise<void>;
  /** Updates a claimed fire: its outcome, the edition it made, what happened. */
  updateFire(fireId: number, fields: { status?: FireStatus; editionId?: number | null; detail?: string | null; nextAttemptAt?: Date | null }, now: Date): Promise<void>;
  /** Fires waiting to be tried again whose time has come. */
  retryingDue(now: Date): Promise<ScheduleFire[]>;
  /** Claims a retrying fire for another try (running, leased, one more attempt); false when another process took it. */
  claimRetry(fireId: number, now: Date, leaseMs: number): Promise<boolean>;
  /** Renews a running fire's lease: its owner is alive and still working on it. */
  renewFire(fireId: number, until: Date): Promise<void>;
  /** The newest recorded fire time of a schedule: catch-up starts after it. */
  lastFireAt(scheduleId: number): Promise<Date | undefined>;
  /** A schedule's fires, newest first. */
  fires(scheduleId: number, limit?: number): Promise<ScheduleFire[]>;
  /** Fires still marked running whose lease ran out: their process died (or stalled) half-way. */
  runningFires(now: Date): Promise<ScheduleFire[]>;
  /** Claims a story for an on-publish schedule; false when it was claimed (sent, or present at creation) before. */
  claimStory(scheduleId: number, slug: string, now: Date): Promise<boolean>;
  /** Notes the edition made for a claimed story. */
  setStoryEdition(scheduleId: number, slug: string, editionId: number): Promise<void>;
  /** Gives a claim back when no edition could be made, so the next check tries again. */
  releaseStory(scheduleId: number, slug: string): Promise<void>;
  /** Slugs an on-publish schedule has claimed. */
  claimedStories(scheduleId: number): Promise<Set<string>>;
  /** Editions an on-publish schedule made that are still drafts (enqueueing was interrupted). */
  unsentStoryEditions(scheduleId: number): Promise<number[]>;
  /** The stories an on-publish schedule sent, newest first, each with its edition. */
  sentStories(scheduleId: number, limit?: number): Promise<{ slug: string; editionId: number; at: string }[]>;
  /** How many stories an on-publish schedule has sent. */
  sentStoryCount(scheduleId: number): Promise<number>;
}
