import type { Audience } from './edition.ts';

/** What a schedule does: send one edition at an instant, a digest on a cron rule, or each new story. */
export type ScheduleKind = 'one-off' | 'recurring' | 'on-publish';

/** Whether a schedule still fires: a one-off is done after its fire; cancelled ones never fire again. */
export type ScheduleStatus = 'active' | 'cancelled' | 'done';

/** A persisted rule that makes and sends editions. Timestamps are ISO 8601 UTC. */
export interface Schedule {
  id: number;
  kind: ScheduleKind;
  listSlug: string;
  /** The edition a one-off sends. */
  editionId: number | null;
  /** The instant a one-off fires. */
  at: string | null;
  /** The cron expression (5 or 6 fields) of a recurring digest, read in `timezone`. */
  cron: string | null;
  /** The IANA zone the cron expression's wall-clock times are in. */
  timezone: string | null;
  /** Who of the list gets the editions it makes. */
  audience: Audience;
  status: ScheduleStatus;
  createdAt: string;
  /** Changes on every edit: schedulers in other processes reload the schedule when it moves. */
  updatedAt: string;
}

/**
 * How one fire went: claimed and in progress, sent, skipped (empty digest), missed (too late),
 * retrying (it failed; tried again at nextAttemptAt, within the grace period), failed (for good).
 */
export type FireStatus = 'running' | 'sent' | 'skipped' | 'missed' | 'retrying' | 'failed';

/** One moment a schedule came due; (schedule, fire time) is unique, so a fire happens at most once. */
export interface ScheduleFire {
  id: number;
  scheduleId: number;
  /** The scheduled instant (canonical `toISOString()` form). */
  fireAt: string;
  status: FireStatus;
  editionId: number | null;
  /** Why it was skipped, missed or failed; what was queued when sent. */
  detail: string | null;
  createdAt: string;
  updatedAt: string;
  /** A running fire's owner renews this while it works; once past, the next scheduler tick resumes the fire. */
  leaseUntil: string | null;
  /** Tries so far. */
  attempts: number;
  /** When a retrying fire is tried again. */
  nextAttemptAt: string | null;
}
