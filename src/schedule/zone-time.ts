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

/**
 * Old names still in use (tzdata's `backward` links) and the current IANA name each stands for.
 * ICU cannot be asked: Node 20's `resolvedOptions().timeZone` maps them to CLDR's ids, which keep
 * the old spelling (Europe/Kyiv → Europe/Kiev, Asia/Kolkata → Asia/Calcutta), and newer runtimes
 * return the name as given.
 */
const ZONE_ALIASES: Record<string, string> = {
  'Europe/Kiev': 'Europe/Kyiv', 'Europe/Uzhgorod': 'Europe/Kyiv', 'Europe/Zaporozhye': 'Europe/Kyiv', 'Europe/Belfast': 'Europe/London',
  'Asia/Calcutta': 'Asia/Kolkata', 'Asia/Saigon': 'Asia/Ho_Chi_Minh', 'Asia/Katmandu': 'Asia/Kathmandu', 'Asia/Rangoon': 'Asia/Yangon',
  'Asia/Dacca': 'Asia/Dhaka', 'Asia/Thimbu': 'Asia/Thimphu', 'Asia/Ulan_Bator': 'Asia/Ulaanbaatar', 'Asia/Macao': 'Asia/Macau',
  'Asia/Ujung_Pandang': 'Asia/Makassar', 'Asia/Chongqing': 'Asia/Shanghai', 'Asia/Chungking': 'Asia/Shanghai', 'Asia/Harbin': 'Asia/Shanghai',
  'Asia/Tel_Aviv': 'Asia/Jerusalem', 'Asia/Istanbul': 'Europe/Istanbul', 'Asia/Ashkhabad': 'Asia/Ashgabat',
  'Atlantic/Faeroe': 'Atlantic/Faroe', 'Pacific/Enderbury': 'Pacific/Kanton', 'Pacific/Truk': 'Pacific/Chuuk', 'Pacific/Ponape': 'Pacific/Pohnpei',
  'America/Buenos_Aires': 'America/Argentina/Buenos_Aires', 'America/Catamarca': 'America/Argentina/Catamarca', 'America/Cordoba': 'America/Argentina/Cordoba',
  'America/Jujuy': 'America/Argentina/Jujuy', 'America/Mendoza': 'America/Argentina/Mendoza', 'America/Indianapolis': 'America/Indiana/Indianapolis',
  'America/Fort_Wayne': 'America/Indiana/Indianapolis', 'America/Louisville': 'America/Kentucky/Louisville', 'America/Knox_IN': 'America/Indiana/Knox',
  'America/Godthab': 'America/Nuuk', 'America/Montreal': 'America/Toronto',
  'US/Eastern': 'America/New_York', 'US/Central': 'America/Chicago', 'US/Mountain': 'America/Denver', 'US/Pacific': 'America/Los_Angeles',
  'US/Alaska': 'America/Anchorage', 'US/Hawaii': 'Pacific/Honolulu', 'US/Arizona': 'America/Phoenix', 'US/East-Indiana': 'America/Indiana/Indianapolis',
  'US/Michigan': 'America/Detroit', 'US/Aleutian': 'America/Adak', 'US/Samoa': 'Pacific/Pago_Pago', 'US/Indiana-Starke': 'America/Indiana/Knox',
  'Canada/Eastern': 'America/Toronto', 'Canada/Central': 'America/Winnipeg', 'Canada/Mountain': 'America/Edmonton', 'Canada/Pacific': 'America/Vancouver',
  'Canada/Atlantic': 'America/Halifax', 'Canada/Newfoundland': 'America/St_Johns',
  'Australia/ACT': 'Australia/Sydney', 'Australia/Canberra': 'Australia/Sydney', 'Australia/NSW': 'Australia/Sydney', 'Australia/Victoria': 'Australia/Melbourne',
  'Australia/Queensland': 'Australia/Brisbane', 'Australia/West': 'Australia/Perth', 'Australia/South': 'Australia/Adelaide', 'Australia/North': 'Australia/Darwin',
  'Australia/Tasmania': 'Australia/Hobart', 'Brazil/East': 'America/Sao_Paulo', 'Mexico/General': 'America/Mexico_City',
  GB: 'Europe/London', Eire: 'Europe/Dublin', Japan: 'Asia/Tokyo', PRC: 'Asia/Shanghai', ROK: 'Asia/Seoul', ROC: 'Asia/Taipei', Singapore: 'Asia/Singapore',
  Hongkong: 'Asia/Hong_Kong', Israel: 'Asia/Jerusalem', Poland: 'Europe/Warsaw', Portugal: 'Europe/Lisbon', Turkey: 'Europe/Istanbul', Egypt: 'Africa/Cairo',
  Iran: 'Asia/Tehran', NZ: 'Pacific/Auckland',
  'Etc/UTC': 'UTC', 'Etc/UCT': 'UTC', UCT: 'UTC', 'Etc/Universal': 'UTC', Universal: 'UTC', 'Etc/Zulu': 'UTC', Zulu: 'UTC',
};
const ALIASES_BY_KEY = new Map(Object.entries(ZONE_ALIASES).map(([alias, name]) => [alias.toLowerCase(), name]));

/** The old zone names canonicalTimeZone knows, each with its current IANA name. */
export function zoneAliases(): Readonly<Record<string, string>> {
  return ZONE_ALIASES;
}

/**
 * The name a zone is stored under: an old name becomes the current IANA one (Europe/Kiev → Europe/Kyiv,
 * US/Eastern → America/New_York), a name in the wrong case is spelled right; throws InputError for an
 * unknown zone.
 */
export function canonicalTimeZone(zone: string): string {
  assertTimeZone(zone);
  const resolved = formatter(zone).resolvedOptions().timeZone;
  const current = ALIASES_BY_KEY.get(zone.toLowerCase()) ?? ALIASES_BY_KEY.get(resolved.toLowerCase());
  if (current && isKnownZone(current)) return current;
  // ICU may turn a current name into its CLDR id (an old spelling): take what it says only as a spelling of the same name.
  return resolved.toLowerCase() === zone.toLowerCase() ? resolved : zone;
}

/** True when two zone names are one zone: the same name, or aliases of each other (Europe/Kiev and Europe/Kyiv). */
export function sameTimeZone(a: string, b: string): boolean {
  if (a === b) return true;
  try {
    return canonicalTimeZone(a) === canonicalTimeZone(b) || formatter(a).resolvedOptions().timeZone === formatter(b).resolvedOptions().timeZone;
  } catch {
    return false;
  }
}

function isKnownZone(zone: string): boolean {
  try {
    formatter(zone);
    return true;
  } catch {
    return false;
  }
}
