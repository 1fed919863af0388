import type { DeliveryFault, FaultKind } from '../errors.ts';

/**
 * Failures in a row (no success between) after which a kind of failure is taken as the server's
 * doing rather than each recipient's. Recipient-looking bounces need a long streak, since a dirty
 * list can hold a few dead addresses in a row; replies of unclear scope and dead connections need
 * only a short one. `refused` needs no streak: the reply itself says the server refuses us.
 */
export const DEFAULT_STREAKS: Record<Exclude<FaultKind, 'refused'>, number> = {
  unreachable: 3,
  'recipient-temporary': 5,
  'recipient-permanent': 10,
  'unclear-permanent': 3,
};

/** A failure the judge holds back until it knows whose fault it was. */
export interface HeldFailure<T> {
  item: T;
  fault: DeliveryFault;
}

/** What to do with failures once judged. */
export type Verdict<T> =
  /** Each failure is its recipient's own: retry or bounce each as its reply says. */
  | { kind: 'individual'; group: string; failures: HeldFailure<T>[] }
  /**
   * The server is at fault for all of them: pause the group, give every item back unharmed; `cause`
   * is the kind of failure that decided it, `failures` each item with its own fault (for a caller
   * that knows better, e.g. a block of dead addresses in a list the server takes mail for). `fewer`
   * marks an outage judged on fewer dead sessions than a streak (the worker had nothing else to
   * send): a caller that can check the server (a probe that opens a session) should, and take the
   * failures as each recipient's own if it answers.
   */
  | { kind: 'server'; group: string; pause: 'refused' | 'outage'; reason: string; items: T[]; failures: HeldFailure<T>[]; cause: FaultKind; fewer?: true }
  /** Nothing was decided (the worker is stopping): give the items back unharmed. */
  | { kind: 'release'; group: string; items: T[] };

interface Held<T> extends HeldFailure<T> {
  key: string;
  /** When the failure was reported. */
  since: number;
  /** When the failed attempt began (its session may have been open while others went through). */
  started: number;
}

/** Options of FaultJudge. */
export interface FaultJudgeOptions {
  streaks?: Partial<typeof DEFAULT_STREAKS>;
  /** Longest a failure is held waiting for more evidence; default 2 minutes. */
  maxHoldMs?: number;
  now?: () => number;
}

/**
 * Decides, per group (an edition), whether failures are the recipients' or the server's. A failure
 * is held, not acted on, until the evidence is in: a success in the same group makes every held
 * failure its recipient's own; a streak of alike failures makes them all the server's (pause, nobody
 * suppressed, no attempt spent); when no more evidence can come (the group has nothing else in
 * flight) or after `maxHoldMs`, each is its recipient's own. Pure bookkeeping: the caller acts.
 */
export class FaultJudge<T> {
  private readonly held = new Map<string, Held<T>[]>();
  /** When any message last went through (−∞: never), on `now`'s clock. */
  private lastSuccess = Number.NEGATIVE_INFINITY;
  private readonly streaks: typeof DEFAULT_STREAKS;
  private readonly maxHoldMs: number;
  private readonly now: () => number;

  constructor(options: FaultJudgeOptions = {}) {
    this.streaks = { ...DEFAULT_STREAKS, ...options.streaks };
    this.maxHoldMs = options.maxHoldMs ?? 120_000;
    this.now = options.now ?? Date.now;
  }

  /** A message of the group went through: whatever the group held was each recipient's own failure. */
  success(group: string): Verdict<T>[] {
    this.lastSuccess = this.now();
    return this.individual(group);
  }

  /** A message of the group failed (its attempt began at `startedAt`): held, or (with it) a streak that pauses the group. */
  failure(group: string, item: T, fault: DeliveryFault, startedAt = this.now()): Verdict<T>[] {
    const held = this.held.get(group) ?? [];
    if (fault.kind === 'refused') {
      this.held.delete(group);
      const failures = [...held.map(({ item, fault }) => ({ item, fault })), { item, fault }];
      return [{ kind: 'server', group, pause: 'refused', reason: fault.message, items: failures.map((f) => f.item), failures, cause: 'refused' }];
    }
    const key = streakKey(fault);
    held.push({ item, fault, key, since: this.now(), started: Math.min(startedAt, this.now()) });
    this.held.set(group, held);
    const alike = held.filter((h) => h.key === key).length;
    if (alike < this.streaks[fault.kind]) return [];
    this.held.delete(group);
    const pause = fault.kind === 'unreachable' || fault.kind === 'recipient-temporary' ? 'outage' : 'refused';
    const reason = `${alike} ${DESCRIBED[fault.kind]} in a row, so the server, not the recipients, is at fault; the last: ${fault.message}`;
    return [{ kind: 'server', group, pause, reason, items: held.map((h) => h.item), failures: held.map(({ item, fault }) => ({ item, fault })), cause: fault.kind }];
  }

  /**
   * No more evidence will come for the group (the worker has nothing else of it to send now): its
   * held failures are judged one by one; except that dead sessions with no message through since
   * they began are an outage however few they are (a small edition, a single confirmation). One
   * that hung while others went through is its recipient's own trouble, retried.
   */
  settle(group: string): Verdict<T>[] {
    const held = this.held.get(group);
    if (!held) return [];
    const unreachable = held.filter((h) => h.fault.kind === 'unreachable');
    if (unreachable.length === 0 || unreachable.some((h) => h.started < this.lastSuccess)) return this.individual(group);
    this.held.delete(group);
    const last = unreachable[unreachable.length - 1]!.fault;
    const reason = `${unreachable.length} ${DESCRIBED.unreachable} and no message through since; the last: ${last.message}`;
    return [{ kind: 'server', group, pause: 'outage', reason, items: held.map((h) => h.item), failures: held.map(({ item, fault }) => ({ item, fault })), cause: 'unreachable', fewer: true }];
  }

  /** Every group with failures held, for a worker gone idle to settle. */
  heldGroups(): string[] {
    return [...this.held.keys()];
  }

  /** Failures held longer than `maxHoldMs`, judged one by one. */
  expire(): Verdict<T>[] {
    const cutoff = this.now() - this.maxHoldMs;
    const verdicts: Verdict<T>[] = [];
    for (const [group, held] of this.held) {
      const old = held.filter((h) => h.since < cutoff);
      if (old.length === 0) continue;
      const young = held.filter((h) => h.since >= cutoff);
      if (young.length > 0) this.held.set(group, young);
      else this.held.delete(group);
      verdicts.push({ kind: 'individual', group, failures: old.map(({ item, fault }) => ({ item, fault })) });
    }
    return verdicts;
  }

  /** Everything held, given back undecided (the worker stops). */
  releaseAll(): Verdict<T>[] {
    const verdicts = [...this.held].map(([group, held]): Verdict<T> => ({ kind: 'release', group, items: held.map((h) => h.item) }));
    this.held.clear();
    return verdicts;
  }

  /** Every item held now, for lease renewal. */
  heldItems(): T[] {
    return [...this.held.values()].flat().map((h) => h.item);
  }

  private individual(group: string): Verdict<T>[] {
    const held = this.held.get(group);
    if (!held) return [];
    this.held.delete(group);
    return [{ kind: 'individual', group, failures: held.map(({ item, fault }) => ({ item, fault })) }];
  }
}

const DESCRIBED: Record<Exclude<FaultKind, 'refused'>, string> = {
  unreachable: 'failed sessions (refused or dropped connections, timeouts, the server\'s own trouble)',
  'recipient-temporary': 'recipients deferred with the same reply',
  'recipient-permanent': 'recipients refused with the same reply',
  'unclear-permanent': 'messages refused with the same reply',
};

/**
 * Failures are alike when their kind and reply match once what differs per message is taken out:
 * addresses, and every other word holding a digit (queue ids, Gmail's and Microsoft's tracking
 * tags, timestamps, IPs), except the reply code and the enhanced code that open it. Any dead
 * connection is like any other.
 */
export function streakKey(fault: DeliveryFault): string {
  if (fault.kind === 'unreachable') return 'unreachable';
  const words = fault.reply
    .toLowerCase()
    .replace(/<[^>]*>/g, '<>')
    .replace(/[^\s<>]+@[^\s<>]+/g, '@')
    .split(/\s+/)
    .filter(Boolean);
  const kept = words.map((word, i) => {
    if (i === 0 && /^\d{3}[- ]?/.test(word)) return word;
    if (i <= 1 && /^[245]\.\d{1,3}\.\d{1,3}$/.test(word)) return word;
    return /\d/.test(word) ? '#' : word;
  });
  return `${fault.kind}|${kept.join(' ')}`;
}
