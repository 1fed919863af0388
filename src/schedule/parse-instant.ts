import { InputError } from '../errors.ts';
import { assertTimeZone, formatInZone, offsetAt, wallToInstant } from './zone-time.ts';

const SHAPE = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}(?::?\d{2})?)?(?:\[([^\]]{1,60})\])?$/i;

/**
 * Reads an instant that says where it is: an ISO 8601 date-time with an offset or Z
 * (`2026-03-30T07:00+03:00`, `2026-03-30T04:00Z`), or a local date-time with an IANA zone in
 * brackets (`2026-03-30T07:00[Europe/Kyiv]`, RFC 9557). A bare local time is refused: it would
 * mean a different moment on every server.
 */
export function parseInstant(text: string): Date {
  const value = text.trim();
  const m = SHAPE.exec(value);
  const example = 'e.g. 2026-03-30T07:00+03:00, 2026-03-30T04:00Z or 2026-03-30T07:00[Europe/Kyiv]';
  if (!m) throw new InputError(`"${value.slice(0, 60)}" is not an ISO 8601 date-time with an offset (${example})`);
  const [, y, mo, d, h, mi, s = '0', frac = '0', offsetText, zone] = m;
  if (!offsetText && !zone) throw new InputError(`"${value}" has no offset or zone: say which moment you mean (${example})`);
  const wall = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), Number(frac.padEnd(3, '0').slice(0, 3)));
  const check = new Date(wall);
  if (check.getUTCFullYear() !== Number(y) || check.getUTCMonth() + 1 !== Number(mo) || check.getUTCDate() !== Number(d) || Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) {
    throw new InputError(`"${value}" is not a real date and time`);
  }
  if (zone) assertTimeZone(zone);
  if (!offsetText) return new Date(wallToInstant(wall, zone!));
  const instant = new Date(wall - offsetMs(offsetText));
  if (zone && offsetAt(instant.getTime(), zone) !== offsetMs(offsetText)) {
    throw new InputError(`"${value}": ${offsetText} is not the offset of ${zone} then (it is ${formatInZone(instant, zone).slice(19)})`);
  }
  return instant;
}

function offsetMs(text: string): number {
  if (text.toUpperCase() === 'Z') return 0;
  const digits = text.slice(1).replace(':', '');
  const minutes = Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2) || '0');
  return (text.startsWith('-') ? -1 : 1) * minutes * 60_000;
}
