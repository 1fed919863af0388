import { randomBytes } from 'node:crypto';
import { GazetteError } from '../errors.ts';
import type { ImportProgress, ImportSummary } from '../subscribers/csv-import.ts';

/** How long a finished import stays visible (its page, its summary). */
export const IMPORT_JOB_KEEP_MS = 60 * 60_000;

/** One CSV import the console started, as its page shows it. */
export interface ImportJob {
  id: string;
  /** The name the browser gave the file. */
  fileName: string;
  /** Bytes in the file: what the bar measures each pass against. */
  size: number;
  list: string | undefined;
  confirmed: boolean;
  /** Who started it (user id). */
  startedBy: number;
  startedAt: Date;
  finishedAt: Date | undefined;
  state: 'running' | 'done' | 'failed';
  /** The pass under way: the file is read once to check it, then again to store it. */
  phase: ImportProgress['phase'];
  /** Data rows read by the checking pass, and by the storing pass. */
  checked: number;
  stored: number;
  /** Bytes read by the current pass. */
  bytes: number;
  summary: ImportSummary | undefined;
  /** Why the whole file was refused (malformed CSV, no email column…), or why the import broke off. */
  error: string | undefined;
}

/** What running an import takes: the job's progress callback. */
export type RunImport = (onProgress: (progress: ImportProgress) => void) => Promise<ImportSummary>;

/**
 * The console's CSV imports, in memory: each runs in the background while its page follows it; finished
 * ones are kept for IMPORT_JOB_KEEP_MS, then forgotten. One server process's own: a page asked of another
 * process behind a balancer finds nothing (the import itself is in the database either way).
 */
export class ImportJobs {
  private readonly jobs = new Map<string, ImportJob>();
  private readonly running = new Set<Promise<void>>();

  constructor(
    private readonly now: () => Date,
    private readonly log: { error(details: object, message: string): void } = { error: () => undefined },
    private readonly keepMs = IMPORT_JOB_KEEP_MS,
  ) {}

  /**
   * Starts `run` in the background; `cleanup` (removing the spooled file) runs when it ends, whatever
   * happens. Returns the job at once.
   */
  start(fields: Pick<ImportJob, 'fileName' | 'size' | 'list' | 'confirmed' | 'startedBy'>, run: RunImport, cleanup: () => Promise<void>): ImportJob {
    this.prune();
    const job: ImportJob = {
      ...fields,
      id: randomBytes(12).toString('base64url'),
      startedAt: this.now(),
      finishedAt: undefined,
      state: 'running',
      phase: 'validate',
      checked: 0,
      stored: 0,
      bytes: 0,
      summary: undefined,
      error: undefined,
    };
    this.jobs.set(job.id, job);
    const onProgress = (progress: ImportProgress) => {
      job.phase = progress.phase;
      job.bytes = progress.bytes;
      if (progress.phase === 'validate') job.checked = progress.rows;
      else job.stored = progress.rows;
    };
    const work = (async () => {
      let summary: ImportSummary | undefined;
      let failure: string | undefined;
      try {
        summary = await run(onProgress);
      } catch (error) {
        if (error instanceof GazetteError) failure = error.message;
        else {
          this.log.error({ err: error, job: job.id }, 'console CSV import failed');
          failure = 'The import broke off on our side (the server log has the details). Rows stored before it stopped are kept: importing the file again skips them.';
        }
      }
      // Removed before the job reads as finished: a finished job has left nothing behind.
      await cleanup().catch((error: unknown) => this.log.error({ err: error, job: job.id }, 'could not remove the spooled CSV'));
      job.finishedAt = this.now();
      if (summary) {
        job.summary = summary;
        job.checked = summary.rows;
        job.stored = summary.rows;
        job.state = 'done';
      } else {
        job.error = failure;
        job.state = 'failed';
      }
    })();
    this.running.add(work);
    void work.finally(() => this.running.delete(work));
    return job;
  }

  /** The job, if it is running or finished within the hour. */
  get(id: string): ImportJob | undefined {
    this.prune();
    return this.jobs.get(id);
  }

  /** Resolves when every running import has ended (the server is closing). */
  async settled(): Promise<void> {
    await Promise.all([...this.running]);
  }

  private prune(): void {
    const cutoff = this.now().getTime() - this.keepMs;
    for (const [id, job] of this.jobs) if (job.finishedAt && job.finishedAt.getTime() < cutoff) this.jobs.delete(id);
  }
}

/** How far the job is, 0 to 100: the checking pass is the first half of the bar, storing the second. */
export function jobPercent(job: ImportJob): number {
  if (job.state !== 'running') return 100;
  const pass = job.size > 0 ? Math.min(1, job.bytes / job.size) : 0;
  return Math.floor((job.phase === 'validate' ? pass : 1 + pass) * 50);
}
