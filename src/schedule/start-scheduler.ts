import type { App } from '../app.ts';
import type { FireDeps, ScheduleLog } from './fire-schedule.ts';
import { Scheduler, type SchedulerOptions } from './scheduler.ts';
import { SchedulesRepo } from './schedules-repo.ts';

/** A log that writes one line per event to stderr. */
export const stderrLog: ScheduleLog = {
  info: (message) => process.stderr.write(`scheduler: ${message}\n`),
  warn: (message) => process.stderr.write(`scheduler: warning: ${message}\n`),
  error: (message) => process.stderr.write(`scheduler: error: ${message}\n`),
};

/** The schedules repository over the App's store. */
export async function schedulesRepo(app: App): Promise<SchedulesRepo> {
  return new SchedulesRepo((await app.store()).db);
}

/**
 * What fires need, taken from the App. Content is read afresh for each fire, not through the App's
 * change-polling cache: a digest must see a story saved a moment before it fires.
 */
export async function fireDeps(app: App, log: ScheduleLog = stderrLog): Promise<FireDeps> {
  return {
    schedules: await schedulesRepo(app),
    editions: await app.editions(),
    deliveries: await app.deliveries(),
    queue: await app.queue(),
    publications: await app.publications(),
    content: () => app.freshContent(),
    templates: () => app.emailTemplates(),
    now: () => app.now(),
    log,
    graceMs: app.config.scheduleGraceMs,
    alert: await app.alerts(),
  };
}

/** Options of startScheduler. */
export interface StartSchedulerOptions extends Partial<SchedulerOptions> {
  /** Aborting it stops the scheduler (in-progress fires finish first). */
  signal?: AbortSignal;
  log?: ScheduleLog;
}

/** A started scheduler and how to stop it. */
export interface RunningScheduler {
  scheduler: Scheduler;
  /** Stops timers and tasks and waits for fires in progress; safe to call twice. */
  stop(): Promise<void>;
}

/** Starts the scheduler over the App (grace period from config); for `gazette scheduler` and `gazette serve`. */
export async function startScheduler(app: App, options: StartSchedulerOptions = {}): Promise<RunningScheduler> {
  const { signal, log, ...settings } = options;
  const scheduler = new Scheduler(await fireDeps(app, log), { graceMs: app.config.scheduleGraceMs, ...settings });
  await scheduler.start();
  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= scheduler.stop());
  if (signal) {
    if (signal.aborted) await stop();
    else signal.addEventListener('abort', () => void stop(), { once: true });
  }
  return { scheduler, stop };
}
