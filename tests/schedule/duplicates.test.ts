import { rm } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.ts';
import { findDuplicate } from '../../src/schedule/manage-schedules.ts';
import type { NewSchedule } from '../../src/schedule/schedule-records.ts';
import { canonicalTimeZone, sameTimeZone, zoneAliases } from '../../src/schedule/zone-time.ts';
import type { Schedule } from '../../src/model/schedule.ts';
import { tempContentDir } from '../helpers/content-dir.ts';
import { freshDatabase } from '../helpers/databases.ts';
import { testServer, type TestServer } from '../helpers/server.ts';
import { datedStory } from './schedule-fixture.ts';

const NOW = new Date('2026-03-16T12:00:00Z');

/** An active schedule row; override what the test is about. */
function row(id: number, fields: Partial<Schedule>): Schedule {
  return {
    id, kind: 'recurring', listSlug: 'weekly', editionId: null, at: null, cron: '0 7 * * 1', timezone: 'Europe/Kyiv', audience: 'all',
    status: 'active', createdAt: NOW.toISOString(), updatedAt: NOW.toISOString(), ...fields,
  };
}

const recurring = (fields: Partial<NewSchedule> = {}): NewSchedule => ({ kind: 'recurring', listSlug: 'weekly', cron: '0 7 * * 1', timezone: 'Europe/Kyiv', audience: 'all', ...fields });
const oneOff = (editionId: number, at: string): NewSchedule => ({ kind: 'one-off', listSlug: 'dispatch', editionId, at: new Date(at), audience: 'all' });

describe('canonicalTimeZone', () => {
  it('turns old names into the current IANA ones, whatever Intl says on this Node', () => {
    expect(canonicalTimeZone('Europe/Kiev')).toBe('Europe/Kyiv');
    expect(canonicalTimeZone('Europe/Kyiv')).toBe('Europe/Kyiv');
    expect(canonicalTimeZone('US/Eastern')).toBe('America/New_York');
    expect(canonicalTimeZone('Asia/Calcutta')).toBe('Asia/Kolkata');
    expect(canonicalTimeZone('Asia/Kolkata')).toBe('Asia/Kolkata');
    expect(canonicalTimeZone('Asia/Saigon')).toBe('Asia/Ho_Chi_Minh');
    expect(canonicalTimeZone('America/Buenos_Aires')).toBe('America/Argentina/Buenos_Aires');
    expect(canonicalTimeZone('America/Argentina/Buenos_Aires')).toBe('America/Argentina/Buenos_Aires');
    expect(canonicalTimeZone('Etc/UTC')).toBe('UTC');
  });

  it('keeps current names as they are and fixes only the case of others', () => {
    for (const zone of ['UTC', 'Europe/Berlin', 'America/New_York', 'Europe/Dublin', 'Australia/Sydney']) expect(canonicalTimeZone(zone)).toBe(zone);
    expect(canonicalTimeZone('europe/berlin')).toBe('Europe/Berlin');
    expect(canonicalTimeZone('europe/kiev')).toBe('Europe/Kyiv');
  });

  it('refuses an unknown zone by name', () => {
    expect(() => canonicalTimeZone('Europe/Atlantis')).toThrow(InputError);
    expect(() => canonicalTimeZone('Europe/Atlantis')).toThrow('unknown time zone "Europe/Atlantis"');
  });

  it('maps every alias of its table to a zone this runtime knows, with the same offsets', () => {
    const instants = [Date.UTC(2026, 0, 15), Date.UTC(2026, 6, 15)].map((t) => new Date(t));
    const offsets = (zone: string) => instants.map((d) => new Intl.DateTimeFormat('en-US', { timeZone: zone, timeZoneName: 'longOffset' }).format(d));
    for (const [alias, current] of Object.entries(zoneAliases())) {
      expect(canonicalTimeZone(alias), alias).toBe(current);
      expect(offsets(alias), alias).toEqual(offsets(current));
    }
  });

  it('tells aliases of one zone from different zones', () => {
    expect(sameTimeZone('Europe/Kiev', 'Europe/Kyiv')).toBe(true);
    expect(sameTimeZone('US/Eastern', 'America/New_York')).toBe(true);
    expect(sameTimeZone('Asia/Calcutta', 'Asia/Kolkata')).toBe(true);
    expect(sameTimeZone('Europe/Berlin', 'Europe/Paris')).toBe(false);
    expect(sameTimeZone('Europe/Kyiv', 'Europe/Atlantis')).toBe(false);
  });
});

describe('findDuplicate', () => {
  const active = [
    row(1, {}),
    row(2, { listSlug: 'dispatch', cron: '0 8 * * *', timezone: 'US/Eastern', audience: 'daily' }),
    row(3, { kind: 'one-off', listSlug: 'dispatch', editionId: 5, at: '2026-03-17T07:00:00.000Z', cron: null, timezone: null }),
    row(4, { status: 'cancelled', cron: '0 9 * * 1' }),
  ];

  it('finds a recurring schedule with the same cron in the same zone, aliases and spellings counting as one', () => {
    expect(findDuplicate(active, recurring(), NOW)?.id).toBe(1);
    expect(findDuplicate(active, recurring({ timezone: 'Europe/Kiev' }), NOW)?.id).toBe(1);
    expect(findDuplicate(active, recurring({ cron: '0 7 * * MON' }), NOW)?.id).toBe(1);
    expect(findDuplicate(active, recurring({ cron: '0 0 7 * * 1' }), NOW)?.id).toBe(1);
    expect(findDuplicate(active, recurring({ listSlug: 'dispatch', cron: '0 8 * * *', timezone: 'America/New_York', audience: 'daily' }), NOW)?.id).toBe(2);
  });

  it('needs the same list, kind, fire times and an overlapping audience', () => {
    expect(findDuplicate(active, recurring({ listSlug: 'dispatch' }), NOW)).toBeUndefined();
    expect(findDuplicate(active, recurring({ timezone: 'Europe/Berlin' }), NOW)).toBeUndefined();
    expect(findDuplicate(active, recurring({ cron: '0 7 * * 2' }), NOW)).toBeUndefined();
    expect(findDuplicate(active, recurring({ cron: '0 7 1-7 * 1' }), NOW)).toBeUndefined();
    // A digest to everyone includes the weekly subscribers; daily and weekly ones are apart.
    expect(findDuplicate(active, recurring({ audience: 'weekly' }), NOW)?.id).toBe(1);
    expect(findDuplicate(active, recurring({ listSlug: 'dispatch', cron: '0 8 * * *', timezone: 'America/New_York', audience: 'weekly' }), NOW)).toBeUndefined();
    expect(findDuplicate(active, recurring({ listSlug: 'dispatch', cron: '0 8 * * *', timezone: 'America/New_York', audience: 'all' }), NOW)?.id).toBe(2);
  });

  it('ignores schedules that no longer fire', () => {
    expect(findDuplicate(active, recurring({ cron: '0 9 * * 1' }), NOW)).toBeUndefined();
  });

  it('finds a one-off of the same edition at the same instant, not at another one', () => {
    expect(findDuplicate(active, oneOff(5, '2026-03-17T09:00:00+02:00'), NOW)?.id).toBe(3);
    expect(findDuplicate(active, oneOff(5, '2026-03-17T07:00:01Z'), NOW)).toBeUndefined();
    expect(findDuplicate(active, oneOff(6, '2026-03-17T07:00:00Z'), NOW)).toBeUndefined();
  });
});

describe('POST /api/schedules duplicates', () => {
  const TOKEN = 'admin-token-0123456789abcdef0123456789';
  const auth = { authorization: `Bearer ${TOKEN}` };
  let t: TestServer;
  let cleanup: () => Promise<void>;

  beforeEach(async () => {
    const database = await freshDatabase('sqlite');
    const contentDir = await tempContentDir({ 'a.md': datedStory('Story A', '2026-03-10T09:00:00Z') });
    t = await testServer({ content: contentDir, now: () => NOW, env: { DATABASE_URL: database.url, GAZETTE_ADMIN_TOKEN: TOKEN } });
    cleanup = async () => {
      await t.close();
      await rm(contentDir, { recursive: true, force: true });
      await database.drop();
    };
  });
  afterEach(() => cleanup());

  const post = (payload: object) => t.server.inject({ method: 'POST', url: '/api/schedules', headers: auth, payload });

  it('stores an alias zone canonical with a note, refuses a duplicate with 409 naming it, adds it with allow_duplicate: true', async () => {
    const first = await post({ list: 'weekly', cron: '0 7 * * 1', tz: 'Europe/Kiev', digest: true });
    expect(first.statusCode).toBe(201);
    expect(first.json()).toMatchObject({
      id: 1,
      timezone: 'Europe/Kyiv',
      next_fire: { at: '2026-03-23T05:00:00.000Z', local: '2026-03-23T07:00:00+02:00', timezone: 'Europe/Kyiv' },
      notes: ['time zone Europe/Kiev is stored as Europe/Kyiv, its current IANA name'],
    });
    const again = await post({ list: 'weekly', cron: '0 7 * * 1', tz: 'Europe/Kyiv', digest: true });
    expect(again.statusCode).toBe(409);
    expect(again.json()).toEqual({
      error: 'conflict',
      message: 'schedule 1 already does this (recurring to weekly: digest "0 7 * * 1" Europe/Kyiv); cancel it, or add this one anyway with --allow-duplicate (API: "allow_duplicate": true)',
    });
    expect((await post({ list: 'weekly', cron: '0 7 * * 1', tz: 'Europe/Kyiv', digest: true, allow_duplicate: 'yes' })).json().message).toBe('allow_duplicate: expected true or false');
    const allowed = await post({ list: 'weekly', cron: '0 7 * * 1', tz: 'Europe/Kyiv', digest: true, allow_duplicate: true });
    expect(allowed.statusCode).toBe(201);
    expect(allowed.json()).toMatchObject({ id: 2, timezone: 'Europe/Kyiv', notes: [] });
  });
});
