import { publishedStories } from '../content/load-content.ts';
import type { Content } from '../content/model.ts';
import { createEdition, EditionError } from '../edition/create-edition.ts';
import { enqueueEdition } from '../edition/enqueue-edition.ts';
import type { SendQueue } from '../delivery/send-queue.ts';
import type { EmailTemplates } from '../render/email-templates.ts';
import type { DeliveriesRepo } from '../store/deliveries-repo.ts';
import type { EditionsRepo } from '../store/editions-repo.ts';
import type { FireStatus, ScheduleFireRow, ScheduleRow } from '../store/schema.ts';
import type { SchedulesRepo } from './schedules-repo.ts';

/** Where the scheduler reports what it does; a pino logger fits. */
export interface ScheduleLog {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** Everything a fire needs: the stores, the content and templates (read afresh), the clock. */
export interface FireDeps {
  schedules: SchedulesRepo;
  editions: EditionsRepo;
  deliveries: DeliveriesRepo;
  queue: SendQueue;
  content(): Promise<Content>;
  templates(): Promise<EmailTemplates>;
  now(): Date;
  log: ScheduleLog;
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
export async function fireSchedule(deps: FireDeps, schedule: ScheduleRow, fireAt: Date): Promise<FireOutcome> {
  const fireId = await deps.schedules.claimFire(schedule.id, fireAt, deps.now(), FIRE_LEASE_MS);
  if (fireId === undefined) return { status: 'taken' };
  const renew = setInterval(() => {
    deps.schedules.renewFire(fireId, new Date(deps.now().getTime() + FIRE_LEASE_MS)).catch(() => {});
  }, FIRE_LEASE_MS / 3);
  try {
    return await runFire(deps, schedule, fireAt, fireId);
  } finally {
    clearInterval(renew);
  }
}

async function runFire(deps: FireDeps, schedule: ScheduleRow, fireAt: Date, fireId: number): Promise<FireOutcome> {
  const finish = async (status: FireStatus, editionId: number | null, detail: string): Promise<FireOutcome> => {
    await deps.schedules.updateFire(fireId, { status, editionId, detail }, deps.now());
    if (schedule.kind === 'one-off') await deps.schedules.setStatus(schedule.id, 'done', deps.now());
    const log = status === 'failed' ? deps.log.error : deps.log.info;
    log.call(deps.log, `schedule ${schedule.id} fire ${fireAt.toISOString()}: ${status}: ${detail}`);
    return { status, fireId, editionId, detail };
  };
  let editionId: number | null = schedule.edition_id;
  try {
    if (schedule.kind === 'recurring') {
      try {
        const made = await createEdition(
          { content: await deps.content(), templates: await deps.templates(), editions: deps.editions, now: fireAt },
          { list: schedule.list_slug, digest: true, sinceLast: true, audience: schedule.audience, scheduleId: schedule.id },
        );
        editionId = made.id;
      } catch (error) {
        if (error instanceof EditionError && error.code === 'EDITION_EMPTY') return await finish('skipped', null, error.message);
        throw error;
      }
    }
    if (editionId === null) throw new Error(`schedule ${schedule.id} (${schedule.kind}) has no edition to send`);
    // Noted before enqueueing, so an interrupted fire can be resumed without making a second edition.
    await deps.schedules.updateFire(fireId, { editionId }, deps.now());
    return await finish('sent', editionId, await enqueue(deps, editionId));
  } catch (error) {
    return finish('failed', editionId, (error as Error).message);
  }
}

/**
 * Sends each story of the list published since the schedule was made, and not sent by it yet, as a
 * single-story edition to the list's instant subscribers. A story is claimed under the unique
 * (schedule, story) before its edition is made, so it is sent once however many checks run.
 */
export async function publishNewStories(deps: FireDeps, schedule: ScheduleRow, content?: Content): Promise<{ slug: string; editionId: number }[]> {
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
        { list: schedule.list_slug, story: story.slug, audience: 'instant', scheduleId: schedule.id },
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
 * enqueued (idempotent: nobody gets it twice); one without is marked failed, not retried (a digest's
 * stories then go into the next one).
 */
export async function recoverInterruptedFires(deps: FireDeps): Promise<ScheduleFireRow[]> {
  const stale = await deps.schedules.runningFires(deps.now());
  for (const fire of stale) {
    const schedule = await deps.schedules.find(fire.schedule_id);
    const editionId = fire.edition_id ?? (schedule?.kind === 'one-off' ? schedule.edition_id : null);
    try {
      if (editionId === null) {
        await deps.schedules.updateFire(fire.id, { status: 'failed', detail: 'interrupted before its edition was made; not retried' }, deps.now());
      } else {
        const detail = await enqueue(deps, editionId);
        await deps.schedules.updateFire(fire.id, { status: 'sent', editionId, detail: `resumed after an interruption: ${detail}` }, deps.now());
      }
      if (schedule?.kind === 'one-off') await deps.schedules.setStatus(schedule.id, 'done', deps.now());
      deps.log.warn(`schedule ${fire.schedule_id} fire ${fire.fire_at} was interrupted; settled`);
    } catch (error) {
      deps.log.error(`schedule ${fire.schedule_id} fire ${fire.fire_at}: could not settle: ${(error as Error).message}`);
    }
  }
  return stale;
}

async function enqueue(deps: FireDeps, editionId: number): Promise<string> {
  const result = await enqueueEdition({ editions: deps.editions, deliveries: deps.deliveries, queue: deps.queue, now: deps.now }, editionId);
  return `edition ${editionId}: ${result.added} deliveries queued`;
}
