import { InputError } from '../errors.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Offsets on Earth lie within -12 h … +14 h: a window this wide around a day holds every instant of its wall times. */
const WINDOW = 15 * HOUR;
/** Offsets are sampled this far apart; zones do not change offset twice within it. */
const SAMPLE = 3 * HOUR;

/** A stretch of time over which a zone keeps one UTC offset. */
interface Segment {
  from: number;
  to: number;
  /** Milliseconds to add to an instant to get its wall-clock time read as UTC. */
  offset: number;
}

/** A zone's offsets around one wall-clock day, and how its wall-clock times map to instants. */
export interface ZoneDay {
  minOffset: number;
  maxOffset: number;
  /** The instant a wall-clock time (given as UTC milliseconds) happens: see wallToInstant. */
  toInstant(wall: number): number;
  /** The offset in force at an instant inside the window. */
  offsetAt(instant: number): number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();
const days = new Map<string, ZoneDay>();

/** Throws InputError naming the zone unless it is an IANA time zone name this runtime knows. */
export function assertTimeZone(zone: string): void {
  if (!/^[A-Za-z][A-Za-z0-9_+\-]*(\/[A-Za-z0-9_+\-]+)*$/.test(zone)) throw unknownZone(zone);
  try {
    formatter(zone);
  } catch {
    throw unknownZone(zone);
  }
}

function unknownZone(zone: string): InputError {
  return new InputError(`unknown time zone "${zone.slice(0, 60)}" (expected an IANA name such as Europe/Kyiv, Europe/Berlin or UTC)`);
}

/** The zone's UTC offset at an instant, in milliseconds (whole seconds). */
export function offsetAt(instant: number, zone: string): number {
  const second = Math.floor(instant / 1000) * 1000;
  const parts: Record<string, number> = {};
  for (const part of formatter(zone).formatToParts(new Date(second))) {
    if (part.type !== 'literal') parts[part.type] = Number(part.value);
  }
  const wall = Date.UTC(parts.year!, parts.month! - 1, parts.day!, parts.hour! % 24, parts.minute!, parts.second!);
  return wall - second;
}

/** The wall-clock time of an instant in the zone, as UTC milliseconds (so Date's UTC getters read it). */
export function instantToWall(instant: number, zone: string): number {
  return instant + zoneDay(zone, Math.floor(instant / DAY) * DAY).offsetAt(instant);
}

/**
 * The instant a wall-clock time happens in the zone. A time that happens twice (the hour repeated
 * when clocks go back) maps to its first occurrence; a time that never happens (the hour skipped
 * when clocks go forward) maps to the instant it would have been had clocks not moved yet, i.e.
 * shifted forward by the gap (02:30 on a spring-forward night becomes 03:30).
 */
export function wallToInstant(wall: number, zone: string): number {
  return zoneDay(zone, Math.floor(wall / DAY) * DAY).toInstant(wall);
}

/** The zone's offsets around the wall-clock day starting at `day` (UTC midnight milliseconds); cached. */
export function zoneDay(zone: string, day: number): ZoneDay {
  const key = `${zone} ${day}`;
  let cached = days.get(key);
  if (!cached) {
    cached = buildZoneDay(segments(zone, day - WINDOW, day + DAY + WINDOW));
    if (days.size > 2000) days.clear();
    days.set(key, cached);
  }
  return cached;
}

function buildZoneDay(segs: Segment[]): ZoneDay {
  const offsets = segs.map((s) => s.offset);
  return {
    minOffset: Math.min(...offsets),
    maxOffset: Math.max(...offsets),
    toInstant(wall) {
      let first: number | undefined;
      for (const s of segs) {
        const instant = wall - s.offset;
        if (instant >= s.from && instant < s.to && (first === undefined || instant < first)) first = instant;
      }
      if (first !== undefined) return first;
      // In a gap: use the offset in force before it (the last segment whose wall-clock start is not after `wall`).
      let before = segs[0]!;
      for (const s of segs) if (s.from + s.offset <= wall) before = s;
      return wall - before.offset;
    },
    offsetAt(instant) {
      return segs.find((s) => instant >= s.from && instant < s.to)!.offset;
    },
  };
}

/** Splits [start, end) into stretches of one offset; transitions are found to the second. */
function segments(zone: string, start: number, end: number): Segment[] {
  const result: Segment[] = [];
  let from = -Infinity;
  let previousAt = start;
  let previous = offsetAt(start, zone);
  for (let at = Math.min(start + SAMPLE, end); ; at = Math.min(at + SAMPLE, end)) {
    const offset = offsetAt(at, zone);
    if (offset !== previous) {
      const change = firstWith(zone, previousAt, at, offset);
      result.push({ from, to: change, offset: previous });
      from = change;
      previous = offset;
    }
    previousAt = at;
    if (at >= end) break;
  }
  result.push({ from, to: Infinity, offset: previous });
  return result;
}

/** The first whole second in (lo, hi] at which the zone's offset is `target` (binary search). */
function firstWith(zone: string, lo: number, hi: number, target: number): number {
  let low = Math.floor(lo / 1000);
  let high = Math.floor(hi / 1000);
  while (high - low > 1) {
    const mid = Math.floor((low + high) / 2);
    if (offsetAt(mid * 1000, zone) === target) high = mid;
    else low = mid;
  }
  return high * 1000;
}

function formatter(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(zone, f);
  }
  return f;
}

/** An instant as the zone's wall-clock time with its offset: `2026-03-30T07:00:00+03:00`. */
export function formatInZone(date: Date, zone: string): string {
  const offset = offsetAt(date.getTime(), zone);
  const wall = new Date(Math.floor(date.getTime() / 1000) * 1000 + offset).toISOString().slice(0, 19);
  const minutes = Math.round(Math.abs(offset) / 60_000);
  const sign = offset < 0 ? '-' : '+';
  return `${wall}${sign}${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
}
