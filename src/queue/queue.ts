/** A job handed to a worker: the delivery it sends, and how many times it has been taken. */
export interface ReservedJob {
  id: number;
  groupId: number;
  /** Times taken so far, this one included. */
  attempts: number;
  /** Proof of this lease: ack/retry/fail with it, so a late worker cannot finish a job someone else holds. */
  lease: number;
}

/** How many jobs wait, are held by workers, or are delayed (retries). */
export interface QueueCounts {
  waiting: number;
  leased: number;
  delayed: number;
}

/**
 * The send queue. Jobs are delivery ids grouped by edition; a reserved job that is not acked
 * before its lease ends becomes available again, so a crashed worker's jobs are taken again.
 */
export interface Queue {
  /** Adds jobs; ids already queued are left as they are. Returns how many were new. */
  enqueue(jobs: { id: number; groupId: number }[], now: Date): Promise<number>;
  /** Takes up to `limit` available jobs for `leaseMs`, skipping the given groups (paused editions). */
  reserve(limit: number, leaseMs: number, now: Date, skipGroups?: readonly number[]): Promise<ReservedJob[]>;
  /** The job is done: remove it. */
  ack(job: ReservedJob): Promise<void>;
  /** Several jobs are done: remove them in one go. */
  ackMany(jobs: readonly ReservedJob[]): Promise<void>;
  /** Makes the job available again at `at` (a retry with backoff, or a release). */
  retry(job: ReservedJob, at: Date): Promise<void>;
  /** Gives up on the job: remove it (the ledger keeps the failure). */
  fail(job: ReservedJob): Promise<void>;
  /** Counts, for one group or all. */
  counts(now: Date, groupId?: number): Promise<QueueCounts>;
  close(): Promise<void>;
}
