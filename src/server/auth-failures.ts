/** Options of AuthFailures; the defaults suit the admin API. */
export interface AuthFailuresOptions {
  /** Failures a client may have within `windowMs`; once it has them, it is refused. Default 10. */
  max?: number;
  /** Length of the sliding window, in milliseconds. Default 10 minutes. */
  windowMs?: number;
  /** Most clients remembered; past it the one whose last failure is oldest is forgotten. Default 10,000. */
  maxClients?: number;
  /** The clock, in milliseconds since the epoch. Default Date.now. */
  now?: () => number;
}

/**
 * Failed authentications per client in a sliding window, in bounded memory: at most `max` timestamps
 * per client, at most `maxClients` clients. Check and record are synchronous, so concurrent requests
 * cannot all slip past the check before the first failure is counted.
 */
export class AuthFailures {
  private readonly max: number;
  private readonly windowMs: number;
  private readonly maxClients: number;
  private readonly now: () => number;
  // Oldest failure first; the Map's order is least recently failed first, which eviction relies on.
  private readonly failures = new Map<string, number[]>();

  constructor(options: AuthFailuresOptions = {}) {
    this.max = options.max ?? 10;
    this.windowMs = options.windowMs ?? 10 * 60_000;
    this.maxClients = options.maxClients ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  /** Milliseconds until `client` may try again; 0 when it is not refused. */
  retryAfterMs(client: string): number {
    const now = this.now();
    const times = this.recent(client, now);
    return times.length < this.max ? 0 : times[0]! + this.windowMs - now;
  }

  /** Counts one failed attempt of `client`. */
  record(client: string): void {
    const now = this.now();
    const times = this.recent(client, now);
    times.push(now);
    if (times.length > this.max) times.shift();
    this.failures.delete(client);
    this.failures.set(client, times);
    for (const oldest of this.failures.keys()) {
      if (this.failures.size <= this.maxClients) break;
      this.failures.delete(oldest);
    }
  }

  /**
   * Takes back the newest attempt counted for `client`: callers that must wait before they know the
   * answer count the attempt first (so parallel attempts cannot all pass the check) and forgive it on success.
   */
  forgive(client: string): void {
    this.failures.get(client)?.pop();
  }

  /** How many clients are remembered (for tests and metrics). */
  get size(): number {
    return this.failures.size;
  }

  private recent(client: string, now: number): number[] {
    const times = this.failures.get(client);
    if (!times) return [];
    while (times.length > 0 && times[0]! <= now - this.windowMs) times.shift();
    if (times.length === 0) this.failures.delete(client);
    return times;
  }
}
