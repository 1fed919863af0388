import { describe, expect, it } from 'vitest';
import { compileCron } from '../../src/schedule/cron-time.ts';
import { parseInstant } from '../../src/schedule/parse-instant.ts';
import { planFires } from '../../src/schedule/plan-fires.ts';
import { formatInZone, wallToInstant } from '../../src/schedule/zone-time.ts';

const iso = (dates: Date[]) => dates.map((d) => d.toISOString());
const local = (dates: Date[], zone: string) => dates.map((d) => formatInZone(d, zone));

describe('compileCron: fire times in a zone', () => {
  it('a weekly digest at Monday 07:00 Kyiv time follows Kyiv across its spring change', () => {
    const weekly = compileCron('0 7 * * 1', 'Europe/Kyiv');
    expect(local(weekly.upcoming(new Date('2026-03-16T12:00:00Z'), 3), 'Europe/Kyiv')).toEqual([
      '2026-03-23T07:00:00+02:00',
      '2026-03-30T07:00:00+03:00',
      '2026-04-06T07:00:00+03:00',
    ]);
    expect(iso(weekly.upcoming(new Date('2026-03-16T12:00:00Z'), 2))).toEqual(['2026-03-23T05:00:00.000Z', '2026-03-30T04:00:00.000Z']);
  });

  it('Berlin "30 2 * * *" fires once on the spring-forward day (02:30 does not exist: 03:30 CEST)', () => {
    const daily = compileCron('30 2 * * *', 'Europe/Berlin');
    const fires = daily.upcoming(new Date('2026-03-27T12:00:00Z'), 4);
    expect(local(fires, 'Europe/Berlin')).toEqual([
      '2026-03-28T02:30:00+01:00',
      '2026-03-29T03:30:00+02:00',
      '2026-03-30T02:30:00+02:00',
      '2026-03-31T02:30:00+02:00',
    ]);
    expect(fires.filter((d) => d.toISOString().startsWith('2026-03-29'))).toHaveLength(1);
  });

  it('Berlin "30 2 * * *" fires once on the fall-back day (02:30 happens twice: the first one)', () => {
    const daily = compileCron('30 2 * * *', 'Europe/Berlin');
    const fires = daily.upcoming(new Date('2026-10-23T12:00:00Z'), 4);
    expect(iso(fires)).toEqual(['2026-10-24T00:30:00.000Z', '2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z', '2026-10-27T01:30:00.000Z']);
    expect(local(fires, 'Europe/Berlin')[1]).toBe('2026-10-25T02:30:00+02:00');
    // Asking from just after the first 02:30 must not give the second 02:30 of the same night.
    expect(daily.next(new Date('2026-10-25T00:30:00Z'))!.toISOString()).toBe('2026-10-26T01:30:00.000Z');
    expect(daily.next(new Date('2026-10-25T01:00:00Z'))!.toISOString()).toBe('2026-10-26T01:30:00.000Z');
  });

  it('Kyiv "30 3 * * *" (its skipped and repeated hour is 03:00) fires exactly once on each change day', () => {
    const daily = compileCron('30 3 * * *', 'Europe/Kyiv');
    const spring = daily.between(new Date('2026-03-28T00:00:00Z'), new Date('2026-03-31T00:00:00Z'), 10).fires;
    expect(local(spring, 'Europe/Kyiv')).toEqual(['2026-03-28T03:30:00+02:00', '2026-03-29T04:30:00+03:00', '2026-03-30T03:30:00+03:00']);
    const autumn = daily.between(new Date('2026-10-24T00:00:00Z'), new Date('2026-10-27T00:00:00Z'), 10).fires;
    expect(iso(autumn)).toEqual(['2026-10-24T00:30:00.000Z', '2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z']);
  });

  it('every day of a year gets exactly one fire, DST or not', () => {
    for (const zone of ['Europe/Berlin', 'Europe/Kyiv', 'America/New_York', 'Australia/Lord_Howe']) {
      const daily = compileCron('30 2 * * *', zone);
      const { fires } = daily.between(new Date('2025-12-31T12:00:00Z'), new Date('2026-12-31T12:00:00Z'), 1000);
      const days = fires.map((d) => formatInZone(d, zone).slice(0, 10));
      expect(new Set(days).size, zone).toBe(days.length);
      expect(days.length, zone).toBeGreaterThanOrEqual(365);
    }
  });

  it('per-second and per-quarter-hour expressions skip nothing and repeat nothing across a change', () => {
    const everySecond = compileCron('* * * * * *', 'Europe/Berlin');
    expect(iso(everySecond.upcoming(new Date('2026-03-29T00:59:58Z'), 4))).toEqual([
      '2026-03-29T00:59:59.000Z',
      '2026-03-29T01:00:00.000Z',
      '2026-03-29T01:00:01.000Z',
      '2026-03-29T01:00:02.000Z',
    ]);
    const quarter = compileCron('*/15 * * * *', 'Europe/Berlin');
    const fires = quarter.upcoming(new Date('2026-10-25T00:20:00Z'), 4);
    // Each wall-clock time once: 02:30 and 02:45 at their first occurrence, then 03:00 CET.
    expect(local(fires, 'Europe/Berlin')).toEqual(['2026-10-25T02:30:00+02:00', '2026-10-25T02:45:00+02:00', '2026-10-25T03:00:00+01:00', '2026-10-25T03:15:00+01:00']);
  });

  it('between keeps the newest fires when there are more than the limit', () => {
    const everySecond = compileCron('* * * * * *', 'UTC');
    const result = everySecond.between(new Date('2026-01-01T00:00:00Z'), new Date('2026-02-01T00:00:00Z'), 3);
    expect(result.truncated).toBe(true);
    expect(iso(result.fires)).toEqual(['2026-01-31T23:59:58.000Z', '2026-01-31T23:59:59.000Z', '2026-02-01T00:00:00.000Z']);
  });

  it('refuses a bad expression or zone with a message naming it', () => {
    expect(() => compileCron('61 * * * *', 'UTC')).toThrow('invalid cron expression "61 * * * *": 61 is an invalid expression for minute');
    expect(() => compileCron('* * *', 'UTC')).toThrow(/invalid cron expression "\* \* \*": expected 5 or 6 fields but got 3/);
    expect(() => compileCron('0 7 * * mon; rm', 'UTC')).toThrow(/invalid cron expression "0 7 \* \* mon; rm"/);
    expect(() => compileCron('0 7 * * 1', 'Europe/Kyyiv')).toThrow('unknown time zone "Europe/Kyyiv"');
    expect(() => compileCron('0 7 * * 1', '+03:00')).toThrow('unknown time zone "+03:00"');
    expect(() => compileCron('0 7 * * 1', '')).toThrow('unknown time zone ""');
  });
});

describe('parseInstant', () => {
  it('reads offsets, Z and bracketed zones', () => {
    expect(parseInstant('2026-03-30T07:00+03:00').toISOString()).toBe('2026-03-30T04:00:00.000Z');
    expect(parseInstant('2026-03-30T04:00:00Z').toISOString()).toBe('2026-03-30T04:00:00.000Z');
    expect(parseInstant('2026-03-30T07:00:00.250-0100').toISOString()).toBe('2026-03-30T08:00:00.250Z');
    expect(parseInstant('2026-03-30T07:00[Europe/Kyiv]').toISOString()).toBe('2026-03-30T04:00:00.000Z');
    expect(parseInstant('2026-03-30T07:00+03:00[Europe/Kyiv]').toISOString()).toBe('2026-03-30T04:00:00.000Z');
  });

  it('refuses a time without offset, an impossible date and a mismatched offset', () => {
    expect(() => parseInstant('2026-03-30T07:00')).toThrow(/has no offset or zone/);
    expect(() => parseInstant('next monday')).toThrow(/not an ISO 8601 date-time/);
    expect(() => parseInstant('2026-02-30T07:00Z')).toThrow(/not a real date/);
    expect(() => parseInstant('2026-03-30T07:00+02:00[Europe/Kyiv]')).toThrow(/\+02:00 is not the offset of Europe\/Kyiv then \(it is \+03:00\)/);
    expect(() => parseInstant('2026-03-30T07:00[Mars/Base]')).toThrow(/unknown time zone "Mars\/Base"/);
  });

  it('maps a skipped wall time forward and a repeated one to its first occurrence', () => {
    expect(new Date(wallToInstant(Date.UTC(2026, 2, 29, 2, 30), 'Europe/Berlin')).toISOString()).toBe('2026-03-29T01:30:00.000Z');
    expect(new Date(wallToInstant(Date.UTC(2026, 9, 25, 2, 30), 'Europe/Berlin')).toISOString()).toBe('2026-10-25T00:30:00.000Z');
  });
});

describe('planFires', () => {
  const at = (minutes: number) => new Date(Date.UTC(2026, 0, 1, 12, minutes));
  const hour = 3_600_000;

  it('runs the newest fire within the grace period and records the others as missed', () => {
    const plan = planFires([at(0), at(30)], at(45), hour);
    expect(plan.run).toEqual(at(30));
    expect(plan.missed.map((m) => m.at)).toEqual([at(0)]);
    expect(plan.missed[0]!.detail).toMatch(/superseded by the fire at 2026-01-01T12:30:00.000Z/);
  });

  it('runs nothing when the newest fire is older than the grace period', () => {
    const plan = planFires([at(0)], new Date(at(0).getTime() + 2 * hour), hour);
    expect(plan.run).toBeUndefined();
    expect(plan.missed[0]!.detail).toMatch(/more than the 60-minute grace period late/);
  });
});
