/** Proof that a worker still holds a job: only the adapter that made it can read it. */
export interface Lease {
  readonly opaque: unknown;
}

/** A job a worker has taken: which delivery of which edition to send, under which lease. */
export interface QueuedJob {
  deliveryId: number;
  editionId: number;
  lease: Lease;
}

/**
 * The send queue, as the worker needs it. Jobs are deliveries grouped by edition; a taken job
 * that is neither acked nor retried before its lease ends is handed out again, so a dead
 * worker's jobs come back. Every method with a lease ignores jobs whose lease another holder
 * has since taken over, so a late worker can never finish or release someone else's job.
 */
export interface SendQueue {
  /** Adds one job per delivery; deliveries already queued are left as they are. Returns how many were new. */
  enqueue(jobs: readonly { deliveryId: number; editionId: number }[]): Promise<number>;
  /** Takes up to `limit` due jobs of editions that are not held, each leased for `leaseMs`. */
  reserve(limit: number, leaseMs: number): Promise<QueuedJob[]>;
  /** Renews the leases of jobs still being worked on (the worker's heartbeat). */
  extend(jobs: readonly QueuedJob[], leaseMs: number): Promise<void>;
  /** The jobs are finished (sent, bounced, failed for good): remove them. */
  ack(jobs: readonly QueuedJob[]): Promise<void>;
  /** Puts jobs back, due at `at`: a retry with backoff, or (at now) a release that costs nothing. */
  retry(jobs: readonly QueuedJob[], at: Date): Promise<void>;
  /** Holds back (`held` true: a pause) or lets go (a resume) one edition's jobs. */
  hold(editionId: number, held: boolean): Promise<void>;
  /** Jobs not finished yet, due or not, of editions not held: zero means there is nothing left to do. */
  size(): Promise<number>;
  close(): Promise<void>;
}
