import type { Queue, ReservedJob } from '../queue/queue.ts';
import type { DeliveriesRepo } from '../store/deliveries-repo.ts';

/**
 * Records sent deliveries in groups: every sender waits until its message is in the ledger
 * before taking another job, so at most `concurrency` messages are ever sent but unrecorded
 * (the duplicates a crash can cause), while one write records a whole group.
 */
export class SentRecorder {
  private pending: { job: ReservedJob; resolve: () => void; reject: (error: Error) => void }[] = [];
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly deliveries: DeliveriesRepo,
    private readonly queue: Queue,
    private readonly now: () => Date,
  ) {}

  /** Resolves once the delivery is recorded as sent and its job acked. */
  record(job: ReservedJob): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ job, resolve, reject });
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.flushing) return;
    while (this.pending.length > 0) {
      const group = this.pending.splice(0);
      this.flushing = (async () => {
        try {
          await this.deliveries.recordSent(group.map((g) => g.job.id), this.now());
          await this.queue.ackMany(group.map((g) => g.job));
          for (const g of group) g.resolve();
        } catch (error) {
          for (const g of group) g.reject(error as Error);
        }
      })();
      await this.flushing;
      this.flushing = undefined;
    }
  }
}
