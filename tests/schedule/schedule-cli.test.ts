import { rm } from 'node:fs/promises';
import { Command } from 'commander';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createApp } from '../../src/app.ts';
import { createEdition } from '../../src/edition/create-edition.ts';
import { registerSchedule } from '../../src/cli/commands/schedule.ts';
import { loadConfig } from '../../src/config.ts';
import { tempContentDir, TEMPLATES_DIR } from '../helpers/content-dir.ts';
import { freshDatabase, type TestDatabase } from '../helpers/databases.ts';
import { datedStory } from './schedule-fixture.ts';

const NOW = new Date('2026-03-16T12:00:00Z');

describe('gazette schedule', () => {
  let database: TestDatabase;
  let contentDir: string;
  let out: string[];
  let err: string[];

  beforeEach(async () => {
    database = await freshDatabase('sqlite');
    contentDir = await tempContentDir({ 'a.md': datedStory('Story A', '2026-03-10T09:00:00Z') });
    out = [];
    err = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => (out.push(String(chunk)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => (err.push(String(chunk)), true));
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    await rm(contentDir, { recursive: true, force: true });
    await rm(database.dataDir, { recursive: true, force: true });
  });

  /** Runs `gazette schedule …` in-process; returns stdout. */
  const run = async (...args: string[]): Promise<string> => {
    out.length = 0;
    const config = loadConfig({ GAZETTE_CONTENT_DIR: contentDir, GAZETTE_DATA_DIR: database.dataDir, GAZETTE_TEMPLATES_DIR: TEMPLATES_DIR, DATABASE_URL: database.url, GAZETTE_SECRET: 'test-secret-0123456789abcdef' });
    const program = new Command('gazette').exitOverride();
    registerSchedule(program, () => createApp(config, { now: () => NOW }));
    await program.parseAsync(['node', 'gazette', 'schedule', ...args]);
    return out.join('');
  };

  it('adds a weekly digest, shows its next fires in its zone and in UTC, lists and cancels it', async () => {
    const id = (await run('add', '--list', 'weekly', '--cron', '0 7 * * 1', '--tz', 'Europe/Kyiv', '--digest', '--audience', 'weekly')).trim();
    expect(id).toBe('1');
    expect(err.join('')).toContain('schedule 1: recurring to weekly: digest "0 7 * * 1" Europe/Kyiv to weekly subscribers; next fire 2026-03-23T07:00:00+02:00 Europe/Kyiv  =  2026-03-23T05:00:00.000Z');
    const next = await run('next', '1', '--count', '2');
    expect(next).toBe(
      [
        'schedule 1 (recurring, weekly): digest "0 7 * * 1" Europe/Kyiv to weekly subscribers',
        '  2026-03-23T07:00:00+02:00 Europe/Kyiv  =  2026-03-23T05:00:00.000Z',
        '  2026-03-30T07:00:00+03:00 Europe/Kyiv  =  2026-03-30T04:00:00.000Z',
        '',
      ].join('\n'),
    );
    const json = JSON.parse(await run('list', '--json'));
    expect(json).toMatchObject([{ id: 1, kind: 'recurring', list: 'weekly', timezone: 'Europe/Kyiv', status: 'active', next_fire_at: '2026-03-23T05:00:00.000Z' }]);
    expect(await run('list')).toMatch(/^ {3}1 {2}active +recurring +weekly +digest "0 7 \* \* 1" Europe\/Kyiv to weekly subscribers {2}next 2026-03-23T07:00:00\+02:00 Europe\/Kyiv {2}= {2}2026-03-23T05:00:00.000Z · never fired\n$/);
    await run('cancel', '1');
    expect(JSON.parse(await run('list', '--json'))[0].status).toBe('cancelled');
  });

  it('refuses a bad cron expression or zone with a message naming it', async () => {
    await expect(run('add', '--list', 'weekly', '--cron', '0 7 * * 1', '--tz', 'Europe/Kiev2', '--digest')).rejects.toThrow('unknown time zone "Europe/Kiev2"');
    await expect(run('add', '--list', 'weekly', '--cron', '0 7 * *', '--tz', 'UTC', '--digest')).rejects.toThrow('invalid cron expression "0 7 * *": expected 5 or 6 fields but got 4');
    await expect(run('add', '--edition', '1', '--at', '2026-03-17 07:00')).rejects.toThrow(/no edition 1/);
    await expect(run('next', '7')).rejects.toThrow('no schedule 7');
    await expect(run('next', '--count', 'many')).rejects.toThrow('--count: expected a whole number from 1 to 1000, got "many"');
    expect(JSON.parse(await run('list', '--json'))).toEqual([]);
  });
  it('lists the next fire in the schedule\'s zone and in UTC, as text and as JSON', async () => {
    await run('add', '--list', 'weekly', '--cron', '0 7 * * 1', '--tz', 'America/New_York', '--digest');
    const [view] = JSON.parse(await run('list', '--json'));
    expect(view).toMatchObject({
      timezone: 'America/New_York',
      next_fire_at: '2026-03-23T11:00:00.000Z',
      next_fire: { at: '2026-03-23T11:00:00.000Z', local: '2026-03-23T07:00:00-04:00', timezone: 'America/New_York' },
    });
    expect(await run('list')).toContain('next 2026-03-23T07:00:00-04:00 America/New_York  =  2026-03-23T11:00:00.000Z · never fired');
  });

  it('stores an alias zone under its current name, and says so', async () => {
    expect((await run('add', '--list', 'weekly', '--cron', '0 7 * * 1', '--tz', 'Europe/Kiev', '--digest')).trim()).toBe('1');
    expect(err.join('')).toContain('note: time zone Europe/Kiev is stored as Europe/Kyiv, its current IANA name\n');
    expect(err.join('')).toContain('schedule 1: recurring to weekly: digest "0 7 * * 1" Europe/Kyiv; next fire 2026-03-23T07:00:00+02:00 Europe/Kyiv  =  2026-03-23T05:00:00.000Z');
    err.length = 0;
    await run('add', '--list', 'dispatch', '--cron', '0 8 * * *', '--tz', 'US/Eastern', '--digest');
    expect(err.join('')).toContain('note: time zone US/Eastern is stored as America/New_York, its current IANA name\n');
    err.length = 0;
    await run('add', '--list', 'dispatch', '--cron', '0 9 * * *', '--tz', 'Europe/Kyiv', '--digest');
    expect(err.join('')).not.toContain('note:');
    expect(JSON.parse(await run('list', '--json')).map((v: { timezone: string }) => v.timezone)).toEqual(['Europe/Kyiv', 'America/New_York', 'Europe/Kyiv']);
  });

  it('refuses a recurring schedule that duplicates an active one, naming it, unless --allow-duplicate', async () => {
    await run('add', '--list', 'weekly', '--cron', '0 7 * * 1', '--tz', 'Europe/Kyiv', '--digest');
    const named = /^schedule 1 already does this \(recurring to weekly: digest "0 7 \* \* 1" Europe\/Kyiv\); cancel it, or add this one anyway with --allow-duplicate/;
    // The same zone by its old name, and the same fire times written another way, are the same schedule.
    await expect(run('add', '--list', 'weekly', '--cron', '0 7 * * 1', '--tz', 'Europe/Kiev', '--digest')).rejects.toThrow(named);
    await expect(run('add', '--list', 'weekly', '--cron', '0  7 * * MON', '--tz', 'Europe/Kyiv', '--digest', '--audience', 'weekly')).rejects.toThrow(named);
    await expect(run('add', '--list', 'weekly', '--cron', '0 0 7 * * 1', '--tz', 'Europe/Kyiv', '--digest')).rejects.toThrow(named);
    // Another list, zone, time or a separate audience is another schedule.
    await run('add', '--list', 'dispatch', '--cron', '0 7 * * 1', '--tz', 'Europe/Kyiv', '--digest');
    await run('add', '--list', 'weekly', '--cron', '0 7 * * 1', '--tz', 'Europe/Berlin', '--digest');
    await run('add', '--list', 'weekly', '--cron', '0 8 * * 1', '--tz', 'Europe/Kyiv', '--digest');
    // Daily subscribers of dispatch get schedule 2's digest too (it goes to all): allowed only when asked.
    await expect(run('add', '--list', 'dispatch', '--cron', '0 7 * * 1', '--tz', 'Europe/Kyiv', '--digest', '--audience', 'daily')).rejects.toThrow(/^schedule 2 already does this/);
    await run('add', '--list', 'dispatch', '--cron', '0 7 * * 1', '--tz', 'Europe/Kyiv', '--digest', '--audience', 'daily', '--allow-duplicate');
    await run('add', '--list', 'weekly', '--cron', '0 6 * * 1', '--tz', 'UTC', '--digest', '--audience', 'weekly');
    await run('add', '--list', 'weekly', '--cron', '0 6 * * 1', '--tz', 'UTC', '--digest', '--audience', 'daily');
    expect((await run('add', '--list', 'weekly', '--cron', '0 7 * * 1', '--tz', 'Europe/Kiev', '--digest', '--allow-duplicate')).trim()).toBe('8');
    // A cancelled schedule is no duplicate.
    await run('cancel', '8');
    await run('cancel', '1');
    expect((await run('add', '--list', 'weekly', '--cron', '0 7 * * 1', '--tz', 'Europe/Kyiv', '--digest')).trim()).toBe('9');
  });

  it('refuses a one-off that duplicates an active one (same edition, same instant) unless --allow-duplicate', async () => {
    const config = loadConfig({ GAZETTE_CONTENT_DIR: contentDir, GAZETTE_DATA_DIR: database.dataDir, GAZETTE_TEMPLATES_DIR: TEMPLATES_DIR, DATABASE_URL: database.url, GAZETTE_SECRET: 'test-secret-0123456789abcdef' });
    const app = createApp(config, { now: () => NOW });
    const { id } = await createEdition({ content: await app.content(), templates: await app.adapters.emailTemplates(), editions: await app.adapters.editions(), now: NOW }, { list: 'dispatch', story: 'a' });
    await app.close();
    expect((await run('add', '--edition', String(id), '--at', '2026-03-17T09:00:00+02:00')).trim()).toBe('1');
    // The same instant, written in another offset or zone.
    await expect(run('add', '--edition', String(id), '--at', '2026-03-17T07:00:00Z')).rejects.toThrow(
      /^schedule 1 already does this \(one-off to dispatch: edition \d+ at 2026-03-17T07:00:00.000Z\); cancel it, or add this one anyway with --allow-duplicate/,
    );
    await expect(run('add', '--edition', String(id), '--at', '2026-03-17T09:00[Europe/Kyiv]')).rejects.toThrow(/^schedule 1 already does this/);
    expect((await run('add', '--edition', String(id), '--at', '2026-03-17T07:00:00Z', '--allow-duplicate')).trim()).toBe('2');
    // Another instant is not a duplicate but a conflict: one edition is sent once.
    await expect(run('add', '--edition', String(id), '--at', '2026-03-18T07:00:00Z', '--allow-duplicate')).rejects.toThrow(/is already scheduled \(schedule 1, at 2026-03-17T07:00:00.000Z\); cancel that one first/);
  });

  it('shows why a fire went wrong: on the schedule\'s line in list, and the history in show', async () => {
    await run('add', '--list', 'weekly', '--cron', '0 7 * * 1', '--tz', 'UTC', '--digest');
    const config = loadConfig({ GAZETTE_CONTENT_DIR: contentDir, GAZETTE_DATA_DIR: database.dataDir, GAZETTE_TEMPLATES_DIR: TEMPLATES_DIR, DATABASE_URL: database.url, GAZETTE_SECRET: 'test-secret-0123456789abcdef' });
    const app = createApp(config, { now: () => NOW });
    try {
      const db = (await app.adapters.store()).db;
      const at = NOW.toISOString();
      await db
        .insertInto('schedule_fires')
        .values({ schedule_id: 1, fire_at: '2026-03-16T07:00:00.000Z', status: 'retrying', edition_id: null, detail: 'attempt 2 failed: no list "weekly"; trying again at 2026-03-16T12:04:00.000Z', created_at: at, updated_at: at, lease_until: null, attempts: 2, next_attempt_at: '2026-03-16T12:04:00.000Z' })
        .execute();
    } finally {
      await app.close();
    }
    expect(await run('list')).toContain('last 2026-03-16T07:00:00.000Z retrying (attempt 2 failed: no list "weekly"; trying again at 2026-03-16T12:04:00.000Z)');
    const shown = await run('show', '1');
    expect(shown).toContain('schedule 1 (active): recurring to weekly: digest "0 7 * * 1" UTC');
    expect(shown).toContain('    2026-03-16T07:00:00.000Z  retrying (next try 2026-03-16T12:04:00.000Z)\n      attempt 2 failed: no list "weekly"');
    expect(JSON.parse(await run('show', '1', '--json')).fires).toEqual([
      { fire_at: '2026-03-16T07:00:00.000Z', status: 'retrying', attempts: 2, next_attempt_at: '2026-03-16T12:04:00.000Z', edition_id: null, detail: expect.stringContaining('no list') },
    ]);
    await expect(run('show', '9')).rejects.toThrow(/no schedule 9/);
  });
});
