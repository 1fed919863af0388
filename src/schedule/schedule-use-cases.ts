import { NotFoundError } from '../errors.ts';
import type { Schedule, ScheduleFire } from '../model/schedule.ts';
import { publishNewStories, type FireDeps, type ScheduleLog } from './fire-schedule.ts';
import { addScheduleWithNotes, cancelSchedule, scheduleId, scheduleView, upcomingFires, type ScheduleRequest, type ScheduleView, type UpcomingFire } from './manage-schedules.ts';
import { Scheduler, type SchedulerOptions } from './scheduler.ts';

/** What the schedule use cases are built on: what fires need (with the log a scheduler writes to), opened on first use. */
export interface ScheduleUseCaseDeps {
  fireDeps: (log?: ScheduleLog) => Promise<FireDeps>;
  graceMs: number;
}


/** One schedule whole: what it does, its recent fires, and (on-publish) the stories it sent. */
export interface ScheduleDetail {
  schedule: Schedule;
  view: ScheduleView;
  fires: ScheduleFire[];
  stories: { slug: string; editionId: number; at: string }[];
}

/** Options of a scheduler started through the use cases. */
export interface StartSchedulerOptions extends Partial<SchedulerOptions> {
  /** Aborting it stops the scheduler (fires in progress finish first). */
  signal?: AbortSignal;
  log?: ScheduleLog;
}

/** A started scheduler and how to stop it. */
export interface RunningScheduler {
  scheduler: Scheduler;
  /** Stops timers and tasks and waits for fires in progress; safe to call twice. */
  stop(): Promise<void>;
}

/** The schedule use cases: what the CLI, the admin API and the console do with schedules. */
export interface ScheduleUseCases {
  /** Validates and stores a schedule; notes are for the editor (a zone stored under its current name). */
  add(request: ScheduleRequest): Promise<{ schedule: Schedule; view: ScheduleView; notes: string[] }>;
  /** Every schedule with its next and last fire. */
  list(): Promise<ScheduleView[]>;
  /** One schedule with its last `fires` fires; NotFoundError naming the id otherwise. */
  show(id: string | number, fires?: number): Promise<ScheduleDetail>;
  /** Cancels a schedule: every running scheduler stops firing it within seconds. */
  cancel(id: string | number): Promise<{ schedule: Schedule; view: ScheduleView }>;
  /** The next `count` fire times of one schedule, or of every active one. */
  /** Cancels the active one-off schedules of an edition (sent now, or cancelled, it must not fire later); their ids. */
  cancelOneOffsOf(editionId: number): Promise<number[]>;
  next(id: string | number | undefined, count: number): Promise<{ schedule: Schedule; fires: UpcomingFire[] }[]>;
  /** Sends newly published stories for every on-publish schedule now. */
  checkOnPublish(): Promise<{ checked: number; sent: number }>;
  /** Starts a scheduler in this process (for `gazette scheduler` and `gazette serve`). */
  start(options?: StartSchedulerOptions): Promise<RunningScheduler>;
}


/** Builds the schedule use cases over what fires need. */
export function scheduleUseCases(deps: ScheduleUseCaseDeps): ScheduleUseCases {
  const find = async (fire: FireDeps, id: string | number): Promise<Schedule> => {
    const schedule = await fire.schedules.find(scheduleId(id));
    if (!schedule) throw new NotFoundError(`no schedule ${id}`);
    return schedule;
  };
  return {
    async add(request) {
      const fire = await deps.fireDeps();
      const now = fire.now();
      const { schedule, notes } = await addScheduleWithNotes({ schedules: fire.schedules, editions: fire.editions, content: fire.content, now }, request);
      return { schedule, view: await scheduleView(fire.schedules, schedule, now), notes };
    },
    async list() {
      const fire = await deps.fireDeps();
      return Promise.all((await fire.schedules.list()).map((schedule) => scheduleView(fire.schedules, schedule, fire.now())));
    },
    async show(id, fires = 50) {
      const fire = await deps.fireDeps();
      const schedule = await find(fire, id);
      return {
        schedule,
        view: await scheduleView(fire.schedules, schedule, fire.now()),
        fires: await fire.schedules.fires(schedule.id, fires),
        // An on-publish schedule has no fires: what it did is the stories it sent.
        stories: schedule.kind === 'on-publish' ? await fire.schedules.sentStories(schedule.id) : [],
      };
    },
    async cancel(id) {
      const fire = await deps.fireDeps();
      const schedule = await cancelSchedule({ schedules: fire.schedules, now: fire.now() }, scheduleId(id));
      return { schedule, view: await scheduleView(fire.schedules, schedule, fire.now()) };
    },
    async cancelOneOffsOf(editionId) {
      const fire = await deps.fireDeps();
      const mine = (await fire.schedules.list('active')).filter((s) => s.kind === 'one-off' && s.editionId === editionId);
      for (const schedule of mine) await cancelSchedule({ schedules: fire.schedules, now: fire.now() }, schedule.id);
      return mine.map((s) => s.id);
    },
    async next(id, count) {
      const fire = await deps.fireDeps();
      const schedules = id === undefined ? await fire.schedules.list('active') : [await find(fire, id)];
      return schedules.map((schedule) => ({ schedule, fires: upcomingFires(schedule, fire.now(), count) }));
    },
    async checkOnPublish() {
      const fire = await deps.fireDeps();
      const onPublish = (await fire.schedules.list('active')).filter((s) => s.kind === 'on-publish');
      const content = await fire.content();
      let sent = 0;
      for (const schedule of onPublish) sent += (await publishNewStories(fire, schedule, content)).length;
      return { checked: onPublish.length, sent };
    },
    async start(options = {}) {
      const { signal, log, ...settings } = options;
      const scheduler = new Scheduler(await deps.fireDeps(log), { graceMs: deps.graceMs, ...settings });
      await scheduler.start();
      let stopping: Promise<void> | undefined;
      const stop = () => (stopping ??= scheduler.stop());
      if (signal) {
        if (signal.aborted) await stop();
        else signal.addEventListener('abort', () => void stop(), { once: true });
      }
      return { scheduler, stop };
    },
  };
}
