import { createTask, validateDetailed } from 'node-cron';
import { InputError } from '../errors.ts';
import { assertTimeZone, instantToWall, zoneDay } from './zone-time.ts';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** No zone is ahead of UTC by more than this: a wall-clock day never starts before `day - MAX_OFFSET`. */
const MAX_OFFSET = 14 * HOUR;
/** How far ahead a fire is looked for (node-cron looks 100 years ahead too). */
const MAX_DAYS = 366 * 100;
/** Look-back windows of `between`, shortest first. */
const LOOKBACK = [HOUR, DAY, 32 * DAY, 400 * DAY, Infinity];

/** The fire times of a cron expression read as wall-clock times in an IANA zone. */
export interface CronTimes {
  readonly expression: string;
  readonly timeZone: string;
  /** The first fire strictly after `after`, or null when the expression never fires again. */
  next(after: Date): Date | null;
  /** The next `count` fires after `after`. */
  upcoming(after: Date, count: number): Date[];
  /** The newest `limit` fires in (from, to], oldest first; `truncated` when earlier ones were left out. */
  between(from: Date, to: Date, limit: number): { fires: Date[]; truncated: boolean };
}

/** Cleans an expression the way it is stored: trimmed, single spaces. */
export function normalizeCron(expression: string): string {
  return expression.trim().replace(/\s+/g, ' ');
}

/** Throws InputError naming the expression and the field at fault unless node-cron accepts it. */
export function assertCron(expression: string): void {
  const result = validateDetailed(expression);
  if (!result.valid) {
    const reasons = result.errors.map((e) => e.message.replace(' a invalid ', ' an invalid ')).join('; ');
    throw new InputError(`invalid cron expression "${expression.slice(0, 80)}": ${reasons}`);
  }
}

/**
 * Compiles a cron expression (5 fields, or 6 with seconds first) for a zone. Each wall-clock time the
 * expression matches fires exactly once: a time repeated when clocks go back fires at its first
 * occurrence, a time skipped when clocks go forward fires shifted by the gap (02:30 → 03:30).
 * Which days match is decided by node-cron's own matcher, so both agree on every calendar rule.
 */
export function compileCron(expression: string, timeZone: string): CronTimes {
  const cron = normalizeCron(expression);
  assertCron(cron);
  assertTimeZone(timeZone);
  const fields = validateDetailed(cron).fields!;
  const seconds = sortedNumbers(fields.second);
  const minutes = sortedNumbers(fields.minute);
  const hours = sortedNumbers(fields.hour);
  const firstTime = hours[0]! * HOUR + minutes[0]! * MINUTE + seconds[0]! * SECOND;
  // A UTC matcher reads a Date's UTC fields, which is how wall-clock times are carried here.
  const matcher = createTask(cron, () => {}, { timezone: 'UTC', name: `gazette-matcher-${cron}` });
  void matcher.destroy();
  const matchedDays = new Map<number, boolean>();
  const dayMatches = (day: number): boolean => {
    let matched = matchedDays.get(day);
    if (matched === undefined) {
      matched = matcher.match(new Date(day + firstTime));
      if (matchedDays.size > 1000) matchedDays.clear();
      matchedDays.set(day, matched);
    }
    return matched;
  };

  /** The earliest fire on one wall-clock day that is after `after` and before `best`. */
  const firstOnDay = (day: number, after: number, best: number): number => {
    const zone = zoneDay(timeZone, day);
    for (const h of hours) {
      const hourStart = day + h * HOUR;
      if (hourStart - zone.maxOffset >= best) return best;
      if (hourStart + HOUR - 1 - zone.minOffset <= after) continue;
      for (const m of minutes) {
        const minuteStart = hourStart + m * MINUTE;
        if (minuteStart - zone.maxOffset >= best) return best;
        if (minuteStart + MINUTE - 1 - zone.minOffset <= after) continue;
        for (const s of seconds) {
          const wall = minuteStart + s * SECOND;
          if (wall - zone.maxOffset >= best) return best;
          const instant = zone.toInstant(wall);
          if (instant > after && instant < best) best = instant;
        }
      }
    }
    return best;
  };

  const next = (after: Date): Date | null => {
    const afterMs = after.getTime();
    // Start a day early: a wall time skipped by a gap fires later than its own day would suggest.
    let day = Math.floor(instantToWall(afterMs, timeZone) / DAY) * DAY - DAY;
    let best = Infinity;
    for (let i = 0; i < MAX_DAYS && day - MAX_OFFSET < best; i++, day += DAY) {
      if (dayMatches(day)) best = firstOnDay(day, afterMs, best);
    }
    return Number.isFinite(best) ? new Date(best) : null;
  };

  return {
    expression: cron,
    timeZone,
    next,
    upcoming(after, count) {
      const fires: Date[] = [];
      for (let at: Date | null = after; fires.length < count && (at = next(at)); ) fires.push(at);
      return fires;
    },
    between(from, to, limit) {
      // Look back over growing windows, so a per-second expression down for a month costs little.
      for (const window of LOOKBACK) {
        const start = Math.max(from.getTime(), to.getTime() - window);
        const fires: Date[] = [];
        let dropped = false;
        for (let at = next(new Date(start)); at && at.getTime() <= to.getTime(); at = next(at)) {
          fires.push(at);
          if (fires.length > limit) {
            fires.shift();
            dropped = true;
          }
        }
        const complete = start === from.getTime();
        if (fires.length >= limit || complete) return { fires, truncated: dropped || !complete };
      }
      throw new Error('unreachable: the last look-back window is unbounded');
    },
  };
}

function sortedNumbers(values: (number | string)[]): number[] {
  return values.map(Number).sort((a, b) => a - b);
}
