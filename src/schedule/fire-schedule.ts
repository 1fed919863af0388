import type { AlertEditors } from '../alerts/editor-alerts.ts';
import { describeLeftOut } from '../content/load-content.ts';
import { type Content, publishedStories } from '../model/content.ts';
import { createEdition, EditionError } from '../edition/create-edition.ts';
import { enqueueEdition } from '../edition/enqueue-edition.ts';
import type { SendQueue } from '../delivery/send-queue.ts';
import type { StoryPublications } from '../edition/story-publications.ts';
import type { EmailTemplates } from '../render/email-templates.ts';
import type { FireStatus, Schedule, ScheduleFire } from '../model/schedule.ts';
import type { EditionRecords, DeliveryRecords } from '../edition/edition-records.ts';
import type { ScheduleRecords } from './schedule-records.ts';

/** Where the scheduler reports what it does; a pino logger fits. */
export interface ScheduleLog {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** Everything a fire needs: the stores, the content and templates (read afresh), the clock. */
export interface FireDeps {
  schedules: ScheduleRecords;
  editions: EditionRecords;
  deliveries: DeliveryRecords;
  queue: SendQueue;
  publications: StoryPublications;
  content(): Promise<Content>;
  templates(): Promise<EmailTemplates>;
  now(): Date;
  log: ScheduleLog;
  /** How late a fire may still run: a failed one is retried until its fire time plus this. */
  graceMs: number;
  /** Tells the editors at once of a fire that failed or left stories out. */
  alert: AlertEditors;
}

/** The wait before the n-th retry of a failed fire: 1, 2, 4 … minutes, at most 15. */
export function fireRetryDelayMs(attempt: number): number {
  return Math.min(15 * 60_000, 60_000 * 2 ** Math.max(0, attempt - 1));
}

/**
 * How long a fire is its process's without renewal: renewed every third of it while the fire
 * works, so a fire whose process died is taken over by the next scheduler tick after this.
 */
export const FIRE_LEASE_MS = 15_000;

/** How a fire went; `taken` when another run or process had already recorded it. */
export type FireOutcome = { status: 'taken' } | { status: FireStatus; fireId: number; editionId: number | null; detail: string };

/**
 * Fires a one-off or recurring schedule for one instant. The fire is recorded under the unique
 * (schedule, fire time) before anything is sent, so it happens at most once whoever else tries.
 * A one-off enqueues its edition; a recurring digest is built from the list's stories published
 * since its last sent edition, and is recorded as skipped when there are none.
 */
export async function fireSchedule(deps: FireDeps, schedule: Schedule, fireAt: Date): Promise<FireOutcome> {
  const fireId = await deps.schedules.claimFire(schedule.id, fireAt, deps.now(), FIRE_LEASE_MS);
  if (fireId === undefined) return { status: 'taken' };
  return runLeased(deps, schedule, fireAt, { id: fireId, attempt: 1, editionId: null });
}

/**
 * Tries a fire that failed once more, if no other process took it first: a failed fire is retried
 * with backoff within the grace period, so a bad moment (a locked database, a story fixed a minute
 * later) does not lose a week's digest.
 */
export async function retryFire(deps: FireDeps, fire: ScheduleFire): Promise<FireOutcome> {
  const schedule = await deps.schedules.find(fire.scheduleId);
  if (!schedule || schedule.status === 'cancelled') {
    await deps.schedules.updateFire(fire.id, { status: 'failed', nextAttemptAt: null, detail: `${fire.detail ?? 'failed'}; not retried: the schedule was cancelled` }, deps.now());
    return { status: 'failed', fireId: fire.id, editionId: fire.editionId, detail: 'the schedule was cancelled' };
  }
  if (!(await deps.schedules.claimRetry(fire.id, deps.now(), FIRE_LEASE_MS))) return { status: 'taken' };
  return runLeased(deps, schedule, new Date(fire.fireAt), { id: fire.id, attempt: (fire.attempts ?? 1) + 1, editionId: fire.editionId });
}

interface ClaimedFire {
  id: number;
  attempt: number;
  /** The edition an earlier attempt already made, if any. */
  editionId: number | null;
}

// Runs a claimed fire, renewing its lease meanwhile so no other scheduler takes it over.
async function runLeased(deps: FireDeps, schedule: Schedule, fireAt: Date, fire: ClaimedFire): Promise<FireOutcome> {
  const renew = setInterval(() => {
    deps.schedules.renewFire(fire.id, new Date(deps.now().getTime() + FIRE_LEASE_MS)).catch(() => {});
  }, FIRE_LEASE_MS / 3);
  try {
    return await runFire(deps, schedule, fireAt, fire);
  } finally {
    clearInterval(renew);
  }
}

async function runFire(deps: FireDeps, schedule: Schedule, fireAt: Date, fire: ClaimedFire): Promise<FireOutcome> {
  const when = `fire of ${fireAt.toISOString()}`;
  const finish = async (status: FireStatus, editionId: number | null, detail: string): Promise<FireOutcome> => {
    await deps.schedules.updateFire(fire.id, { status, editionId, detail, nextAttemptAt: null }, deps.now());
    if (schedule.kind === 'one-off') await deps.schedules.setStatus(schedule.id, 'done', deps.now());
    const log = status === 'failed' ? deps.log.error : deps.log.info;
    log.call(deps.log, `schedule ${schedule.id} ${when}: ${status}: ${detail}`);
    return { status, fireId: fire.id, editionId, detail };
  };
  let editionId: number | null = fire.editionId ?? schedule.editionId;
  try {
    let leftOut = '';
    if (schedule.kind === 'recurring' && editionId === null) {
      const content = await deps.content();
      leftOut = describeLeftOut(content);
      try {
        const made = await createEdition(
          { content, templates: await deps.templates(), editions: deps.editions, now: fireAt, publications: deps.publications },
          { list: schedule.listSlug, digest: true, sinceLast: true, audience: schedule.audience, scheduleId: schedule.id },
        );
        editionId = made.id;
      } catch (error) {
        if (error instanceof EditionError && error.code === 'EDITION_EMPTY') return await finish('skipped', null, [error.message, leftOut].filter(Boolean).join('\n'));
        throw error;
      }
    }
    if (editionId === null) throw new Error(`schedule ${schedule.id} (${schedule.kind}) has no edition to send`);
    // Noted before enqueueing, so an interrupted fire can be resumed without making a second edition.
    await deps.schedules.updateFire(fire.id, { editionId }, deps.now());
    const outcome = await finish('sent', editionId, [await enqueue(deps, editionId), leftOut].filter(Boolean).join('\n'));
    if (leftOut) {
      await tell(deps, {
        subject: `Schedule ${schedule.id}: digest sent without some stories`,
        summary: `The digest of schedule ${schedule.id} (${schedule.listSlug}, ${when}) went out as edition ${editionId}, but some story files are invalid and were left out.`,
        details: leftOut.split('\n'),
      });
    }
    return outcome;
  } catch (error) {
    return failed(deps, schedule, fireAt, fire, editionId, (error as Error).message);
  }
}

// A failed attempt: retried after a backoff while the grace period lasts, else failed for good; the editors hear of both.
async function failed(deps: FireDeps, schedule: Schedule, fireAt: Date, fire: ClaimedFire, editionId: number | null, reason: string): Promise<FireOutcome> {
  const now = deps.now();
  const when = `fire of ${fireAt.toISOString()}`;
  const deadline = fireAt.getTime() + deps.graceMs;
  const next = new Date(now.getTime() + fireRetryDelayMs(fire.attempt));
  if (next.getTime() <= deadline) {
    const detail = `attempt ${fire.attempt} failed: ${reason}; trying again at ${next.toISOString()} (until ${new Date(deadline).toISOString()})`;
    await deps.schedules.updateFire(fire.id, { status: 'retrying', editionId, detail, nextAttemptAt: next }, now);
    deps.log.warn(`schedule ${schedule.id} ${when}: ${detail}`);
    if (fire.attempt === 1) {
      await tell(deps, {
        subject: `Schedule ${schedule.id}: a scheduled send failed`,
        summary: `Schedule ${schedule.id} (${schedule.listSlug}) could not send its ${when}. Gazette tries again until ${new Date(deadline).toISOString()}.`,
        details: [reason, `next try: ${next.toISOString()}`, 'see: gazette schedule show ' + schedule.id],
      });
    }
    return { status: 'retrying', fireId: fire.id, editionId, detail };
  }
  const detail = `failed after ${fire.attempt} ${fire.attempt === 1 ? 'attempt' : 'attempts'}: ${reason}`;
  await deps.schedules.updateFire(fire.id, { status: 'failed', editionId, detail, nextAttemptAt: null }, now);
  if (schedule.kind === 'one-off') await deps.schedules.setStatus(schedule.id, 'done', now);
  deps.log.error(`schedule ${schedule.id} ${when}: ${detail}`);
  await tell(deps, {
    subject: `Schedule ${schedule.id}: a scheduled send was given up`,
    summary: `Schedule ${schedule.id} (${schedule.listSlug}) did not send its ${when}: it kept failing until the grace period ran out.`,
    details: [detail, 'see: gazette schedule show ' + schedule.id],
  });
  return { status: 'failed', fireId: fire.id, editionId, detail };
}

// An alert that cannot be queued must not turn the fire's outcome into an error: it is logged instead.
async function tell(deps: FireDeps, alert: Parameters<AlertEditors>[0]): Promise<void> {
  try {
    await deps.alert(alert);
  } catch (error) {
    deps.log.error(`could not alert the editors (${alert.subject}): ${(error as Error).message}`);
  }
}

/**
 * Sends each story of the list published since the schedule was made, and not sent by it yet, as a
 * single-story edition to the list's instant subscribers. A story is claimed under the unique
 * (schedule, story) before its edition is made, so it is sent once however many checks run.
 */
export async function publishNewStories(deps: FireDeps, schedule: Schedule, content?: Content): Promise<{ slug: string; editionId: number }[]> {
  // Editions made but not enqueued (a check interrupted in between) are sent first; enqueueing is idempotent.
  for (const id of await deps.schedules.unsentStoryEditions(schedule.id)) await enqueue(deps, id);
  const loaded = content ?? (await deps.content());
  const now = deps.now();
  const claimed = await deps.schedules.claimedStories(schedule.id);
  const fresh = publishedStories(loaded, now).filter((s) => !claimed.has(s.slug)).reverse();
  const sent: { slug: string; editionId: number }[] = [];
  for (const story of fresh) {
    if (!(await deps.schedules.claimStory(schedule.id, story.slug, now))) continue;
    let editionId: number | undefined;
    try {
      const made = await createEdition(
        { content: loaded, templates: await deps.templates(), editions: deps.editions, now },
        { list: schedule.listSlug, story: story.slug, audience: 'instant', scheduleId: schedule.id },
      );
      editionId = made.id;
      await deps.schedules.setStoryEdition(schedule.id, story.slug, editionId);
      const detail = await enqueue(deps, editionId);
      deps.log.info(`schedule ${schedule.id} published "${story.slug}": ${detail}`);
      sent.push({ slug: story.slug, editionId });
    } catch (error) {
      // No edition made: give the claim back so the next check tries again.
      if (editionId === undefined) await deps.schedules.releaseStory(schedule.id, story.slug);
      deps.log.error(`schedule ${schedule.id} could not send "${story.slug}": ${(error as Error).message}`);
    }
  }
  return sent;
}

/**
 * Settles fires left running by a process that stopped mid-fire: one whose edition is known is
 * enqueued (idempotent: nobody gets it twice); one without is tried again at once.
 */
export async function recoverInterruptedFires(deps: FireDeps): Promise<ScheduleFire[]> {
  const stale = await deps.schedules.runningFires(deps.now());
  for (const fire of stale) {
    const schedule = await deps.schedules.find(fire.scheduleId);
    const editionId = fire.editionId ?? (schedule?.kind === 'one-off' ? schedule.editionId : null);
    try {
      if (editionId === null) {
        // Its process died before the digest was made: the next tick makes it (within the grace period).
        await deps.schedules.updateFire(fire.id, { status: 'retrying', nextAttemptAt: deps.now(), detail: 'interrupted before its edition was made; trying again' }, deps.now());
        deps.log.warn(`schedule ${fire.scheduleId} fire ${fire.fireAt} was interrupted before its edition was made; trying again`);
        continue;
      } else {
        const detail = await enqueue(deps, editionId);
        await deps.schedules.updateFire(fire.id, { status: 'sent', editionId, detail: `resumed after an interruption: ${detail}` }, deps.now());
      }
      if (schedule?.kind === 'one-off') await deps.schedules.setStatus(schedule.id, 'done', deps.now());
      deps.log.warn(`schedule ${fire.scheduleId} fire ${fire.fireAt} was interrupted; settled`);
    } catch (error) {
      deps.log.error(`schedule ${fire.scheduleId} fire ${fire.fireAt}: could not settle: ${(error as Error).message}`);
    }
  }
  return stale;
}

async function enqueue(deps: FireDeps, editionId: number): Promise<string> {
  const result = await enqueueEdition({ editions: deps.editions, deliveries: deps.deliveries, queue: deps.queue, now: deps.now }, editionId);
  return `edition ${editionId}: ${result.added} deliveries queued`;
}
