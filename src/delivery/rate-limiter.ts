/** A clock the sending loop waits on; tests inject a fake one. */
export interface Clock {
  now(): Date;
  sleep(ms: number): Promise<void>;
}

/** The real clock. */
export const systemClock: Clock = {
  now: () => new Date(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** Token bucket: at most `perSecond` takes per second on average, bursts of a tenth of a second. */
export class RateLimiter {
  private tokens: number;
  private last: number;
  private readonly capacity: number;

  constructor(
    private readonly perSecond: number,
    private readonly clock: Clock,
  ) {
    this.capacity = Math.max(1, perSecond / 10);
    this.tokens = this.capacity;
    this.last = clock.now().getTime();
  }

  /** Resolves when one more message may go. */
  async take(): Promise<void> {
    for (;;) {
      const now = this.clock.now().getTime();
      this.tokens = Math.min(this.capacity, this.tokens + ((now - this.last) / 1000) * this.perSecond);
      this.last = now;
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      await this.clock.sleep(Math.ceil(((1 - this.tokens) / this.perSecond) * 1000));
    }
  }
}
