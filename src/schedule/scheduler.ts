import { createTask, type Logger, type ScheduledTask } from 'node-cron';
import { publishedStories } from '../model/content.ts';
import { GazetteError } from '../errors.ts';
import type { Schedule } from '../model/schedule.ts';
import { compileCron, type CronTimes } from './cron-time.ts';
import { fireSchedule, publishNewStories, recoverInterruptedFires, retryFire, type FireDeps } from './fire-schedule.ts';
import { planFires } from './plan-fires.ts';

/** Scheduler settings; each has a default. */
export interface SchedulerOptions {
  /** How late a fire may still run (at start-up, or after a stall); older ones are recorded as missed. GAZETTE_SCHEDULE_GRACE_MINUTES. */
  graceMs: number;
  /** How often the schedules table is re-read, so schedules added or cancelled elsewhere take effect. Default 2 s. */
  pollMs?: number;
  /** How often on-publish schedules look for new stories. Default 30 s. */
  checkMs?: number;
  /** Most missed fires recorded per schedule at once (per-second expressions down for a day). Default 100. */
  missedLimit?: number;
}

/** setTimeout cannot wait longer than 2^31-1 ms; longer waits are re-armed daily. */
const MAX_WAIT = 86_400_000;

/** One registered schedule and its triggers. */
interface Entry {
  row: Schedule;
  /** Fires at or before this instant (epoch ms) have been handled by this process. */
  cursor: number;
  cron?: CronTimes;
  task?: ScheduledTask;
  timer?: NodeJS.Timeout;
  running?: Promise<void>;
  rerun: boolean;
  hint: number;
  removed: boolean;
}

/**
 * The scheduler runtime. Recurring schedules are node-cron tasks in their zone; one-offs are timers;
 * a poll every few seconds picks up schedules added or cancelled by other processes and catches any
 * fire a timer missed. Where the zone's wall clock and node-cron disagree (a time skipped when
 * clocks go forward) a timer at the exact instant from compileCron covers the fire. Every fire goes
 * through fireSchedule, whose unique record makes it happen at most once across processes.
 */
export class Scheduler {
  private readonly entries = new Map<number, Entry>();
  /** Schedules that could not be registered, by id, with the updated_at they had then. */
  private readonly broken = new Map<number, string>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly options: Required<SchedulerOptions>;
  private pollTimer: NodeJS.Timeout | undefined;
  private checkTimer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;
  private checking: Promise<void> | undefined;
  private recheck = false;
  private stopped = false;
  private readonly cronLogger: Logger;

  constructor(
    private readonly deps: FireDeps,
    options: SchedulerOptions,
  ) {
    this.options = { pollMs: 2000, checkMs: 30_000, missedLimit: 100, ...options };
    const log = deps.log;
    this.cronLogger = { info: () => {}, debug: () => {}, warn: (m) => log.warn(`node-cron: ${m}`), error: (m) => log.error(`node-cron: ${m instanceof Error ? m.message : m}`) };
  }

  /** Settles interrupted fires, loads the schedules (running missed fires within the grace period), starts the timers. */
  async start(): Promise<void> {
    await this.settleInterrupted();
    await this.observeStories();
    await this.refresh();
    await this.checkOnPublish();
    this.pollTimer = setInterval(() => this.track(this.tick()), this.options.pollMs);
    this.checkTimer = setInterval(() => this.track(this.housekeeping()), this.options.checkMs);
  }

  /** Stops every timer and task, then waits for fires in progress to finish. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.pollTimer);
    clearInterval(this.checkTimer);
    for (const entry of [...this.entries.values()]) await this.unregister(entry);
    await this.idle();
  }

  /** Resolves when no fire, check or refresh is in progress. */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /** Ids of the schedules this scheduler has registered. */
  registered(): number[] {
    return [...this.entries.keys()].sort((a, b) => a - b);
  }

  /** Re-reads the active schedules: registers new ones (catching up their due fires), drops cancelled or done ones. */
  refresh(): Promise<void> {
    this.refreshing ??= this.sync().finally(() => (this.refreshing = undefined));
    return this.track(this.refreshing);
  }

  /** Looks for newly published stories for every on-publish schedule now; also runs every `checkMs`. */
  checkOnPublish(): Promise<void> {
    if (this.checking) {
      this.recheck = true;
      return this.checking;
    }
    const run = async () => {
      do {
        this.recheck = false;
        const schedules = [...this.entries.values()].filter((e) => e.row.kind === 'on-publish' && !e.removed);
        if (schedules.length === 0) return;
        const content = await this.deps.content();
        for (const entry of schedules) {
          if (!(await this.stillActive(entry))) continue;
          await publishNewStories(this.deps, entry.row, content);
        }
      } while (this.recheck && !this.stopped);
    };
    this.checking = run()
      .catch((error: unknown) => this.deps.log.error(`on-publish check failed: ${(error as Error).message}`))
      .finally(() => (this.checking = undefined));
    return this.track(this.checking);
  }

  private async tick(): Promise<void> {
    try {
      // A fire whose process died half-way is resumed as soon as its lease runs out; a failed one is retried when due.
      await this.settleInterrupted();
      await this.retryFailed();
      await this.refresh();
      // A backstop: catches fires whose timer came late (a stalled event loop, a suspended machine).
      for (const entry of this.entries.values()) if (entry.row.kind !== 'on-publish') this.trigger(entry);
    } catch (error) {
      this.deps.log.error(`scheduler poll failed: ${(error as Error).message}`);
    }
  }

  private async housekeeping(): Promise<void> {
    await this.settleInterrupted();
    await this.observeStories();
    await this.checkOnPublish();
  }

  // Notes which stories are drafts and which are published, so a draft made public later reaches
  // the next digest (its date alone would place it before the last one).
  private async observeStories(): Promise<void> {
    try {
      const content = await this.deps.content();
      const published = new Set(publishedStories(content, this.deps.now()));
      await this.deps.publications.observe(content.stories.map((s) => ({ slug: s.slug, published: published.has(s) })), this.deps.now());
    } catch (error) {
      this.deps.log.error(`could not note the stories' publication: ${(error as Error).message}`);
    }
  }

  private async retryFailed(): Promise<void> {
    try {
      for (const fire of await this.deps.schedules.retryingDue(this.deps.now())) await retryFire(this.deps, fire);
    } catch (error) {
      this.deps.log.error(`retrying failed fires failed: ${(error as Error).message}`);
    }
  }

  private async settleInterrupted(): Promise<void> {
    try {
      await recoverInterruptedFires(this.deps);
    } catch (error) {
      this.deps.log.error(`settling interrupted fires failed: ${(error as Error).message}`);
    }
  }

  private async sync(): Promise<void> {
    if (this.stopped) return;
    const rows = await this.deps.schedules.list('active');
    const active = new Set(rows.map((r) => r.id));
    for (const entry of [...this.entries.values()]) if (!active.has(entry.row.id)) await this.unregister(entry);
    let newOnPublish = false;
    for (const row of rows) {
      const known = this.entries.get(row.id);
      if (this.stopped || (known && known.row.updatedAt === row.updatedAt) || this.broken.get(row.id) === row.updatedAt) continue;
      if (known) await this.unregister(known);
      newOnPublish ||= row.kind === 'on-publish';
      await this.register(row);
    }
    if (newOnPublish) void this.checkOnPublish();
  }

  /** Registers a schedule; one that cannot be (say, a cron expression edited by hand) is logged and left alone until it changes. */
  private async register(row: Schedule): Promise<void> {
    const entry: Entry = { row, cursor: 0, rerun: false, hint: 0, removed: false };
    try {
      await this.setUp(entry);
    } catch (error) {
      await this.unregister(entry);
      if (error instanceof GazetteError) this.broken.set(row.id, row.updatedAt);
      this.deps.log.error(`schedule ${row.id} not registered: ${(error as Error).message}`);
    }
  }

  private async setUp(entry: Entry): Promise<void> {
    const { row } = entry;
    if (row.kind === 'on-publish') {
      this.entries.set(row.id, entry);
      return;
    }
    if (row.kind === 'recurring') {
      entry.cron = compileCron(row.cron!, row.timezone!);
      const last = await this.deps.schedules.lastFireAt(row.id);
      entry.cursor = Math.max(new Date(row.createdAt).getTime(), last?.getTime() ?? 0);
      if (this.stopped) return;
      const task = createTask(row.cron!, (context) => this.trigger(entry, context.date), {
        timezone: row.timezone!,
        name: `gazette-schedule-${row.id}-${row.updatedAt}`,
        logger: this.cronLogger,
        suppressMissedWarning: true,
      });
      // node-cron gives up on a beat more than a second late; the fire is then handled here.
      task.on('execution:missed', () => this.trigger(entry));
      entry.task = task;
      this.entries.set(row.id, entry);
      await task.start();
    } else {
      this.entries.set(row.id, entry);
    }
    // Catches up what came due while no scheduler had this schedule, then arms the next fire.
    await this.trigger(entry);
  }

  private async unregister(entry: Entry): Promise<void> {
    entry.removed = true;
    clearTimeout(entry.timer);
    if (this.entries.get(entry.row.id) === entry) this.entries.delete(entry.row.id);
    if (entry.task) await entry.task.destroy();
  }

  /** Runs the schedule's due fires; calls while a run is in progress are folded into one more run. */
  private trigger(entry: Entry, hint?: Date): Promise<void> {
    entry.hint = Math.max(entry.hint, hint?.getTime() ?? 0);
    if (entry.running) {
      entry.rerun = true;
      return entry.running;
    }
    const run = async () => {
      do {
        entry.rerun = false;
        await this.runDue(entry);
      } while (entry.rerun && !entry.removed);
    };
    entry.running = run()
      .catch((error: unknown) => this.deps.log.error(`schedule ${entry.row.id}: ${(error as Error).message}`))
      .finally(() => (entry.running = undefined));
    return this.track(entry.running);
  }

  private async runDue(entry: Entry): Promise<void> {
    if (entry.removed) return;
    // node-cron's beat may come a hair before our clock reads the slot: trust the later of the two.
    const now = new Date(Math.max(this.deps.now().getTime(), entry.hint));
    const { row } = entry;
    const due = row.kind === 'recurring' ? entry.cron!.between(new Date(entry.cursor), now, this.options.missedLimit) : oneOffDue(row, now);
    if (due.fires.length > 0) {
      if (!(await this.stillActive(entry))) return;
      const plan = planFires(due.fires, now, this.options.graceMs, due.truncated);
      await this.deps.schedules.recordMissed(row.id, plan.missed, this.deps.now());
      if (plan.run) await fireSchedule(this.deps, row, plan.run);
      else if (row.kind === 'one-off') await this.deps.schedules.setStatus(row.id, 'done', this.deps.now());
    }
    entry.cursor = now.getTime();
    if (row.kind === 'one-off' && due.fires.length > 0) await this.unregister(entry);
    else this.arm(entry, now);
  }

  /** Sets a timer for the next fire, unless node-cron's task will fire at that very instant. */
  private arm(entry: Entry, now: Date): void {
    clearTimeout(entry.timer);
    if (entry.removed || this.stopped) return;
    const next = entry.row.kind === 'recurring' ? entry.cron!.next(now) : new Date(entry.row.at!);
    if (!next) return;
    if (entry.task?.getNextRun()?.getTime() === next.getTime()) return;
    const wait = Math.min(Math.max(0, next.getTime() - now.getTime()), MAX_WAIT);
    entry.timer = setTimeout(() => void this.trigger(entry), wait);
  }

  /** Re-reads the schedule before firing, so a cancel made elsewhere a moment ago still counts. */
  private async stillActive(entry: Entry): Promise<boolean> {
    const current = await this.deps.schedules.find(entry.row.id);
    if (current?.status === 'active') return true;
    await this.unregister(entry);
    return false;
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.inFlight.add(promise);
    void promise.finally(() => this.inFlight.delete(promise)).catch(() => {});
    return promise;
  }
}

function oneOffDue(row: Schedule, now: Date): { fires: Date[]; truncated: boolean } {
  const at = new Date(row.at!);
  return { fires: at.getTime() <= now.getTime() ? [at] : [], truncated: false };
}
