import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fireRetryDelayMs, fireSchedule, retryFire } from '../../src/schedule/fire-schedule.ts';
import { addSchedule, type ScheduleRequest } from '../../src/schedule/manage-schedules.ts';
import { storyFile } from '../helpers/content-dir.ts';
import { datedStory, scheduleFixture, type ScheduleFixture } from './schedule-fixture.ts';

// A weekly digest must not vanish because of one bad moment: fires that fail are tried again
// within the grace period, and the editors hear of it at once, by email.

describe('fires that fail, and digests with an invalid story', () => {
  let f: ScheduleFixture;
  let now: Date;
  const fireAt = new Date('2026-01-12T07:00:00Z');

  beforeEach(async () => {
    now = new Date(fireAt.getTime() + 50);
    f = await scheduleFixture('sqlite', {
      now: () => now,
      stories: {
        'a.md': datedStory('Story A', '2026-01-05T09:00:00Z'),
        'b.md': datedStory('Story B', '2026-01-10T09:00:00Z'),
      },
    });
  });
  afterEach(() => f.close());

  const add = (request: ScheduleRequest) => addSchedule({ schedules: f.deps.schedules, editions: f.deps.editions, content: f.deps.content, now }, request);
  const alerts = async () =>
    (await (await f.app.adapters.store()).db.selectFrom('notices').select(['email', 'raw']).where('kind', '=', 'alert').orderBy('id').execute()).map((n) => ({
      to: n.email,
      subject: /^Subject: (.*)$/m.exec(n.raw)?.[1] ?? '',
      raw: n.raw,
    }));
  const siteFile = () => path.join(f.contentDir, 'site.yaml');

  it('a failed digest fire is tried again with backoff, the editors told once, and sent when the cause is fixed', async () => {
    const weekly = await add({ list: 'weekly', cron: '0 7 * * 1', tz: 'UTC', digest: true });
    const site = await readFile(siteFile(), 'utf8');
    // An editor renames the list in site.yaml by mistake: the fire cannot make its digest.
    await writeFile(siteFile(), site.replace('slug: "weekly"', 'slug: "weekly-briefing"'));
    const first = await fireSchedule(f.deps, weekly, fireAt);
    expect(first).toMatchObject({ status: 'retrying' });
    const [fire] = await f.deps.schedules.fires(weekly.id);
    expect(fire).toMatchObject({ status: 'retrying', attempts: 1, nextAttemptAt: new Date(now.getTime() + fireRetryDelayMs(1)).toISOString() });
    expect(fire!.detail).toMatch(/^attempt 1 failed: no list "weekly".*; trying again at /);
    const told = await alerts();
    expect(told.map((a) => a.to)).toEqual(['editors@gazette.example.org']);
    expect(told[0]!.subject).toMatch(/Schedule \d+: a scheduled send failed/);
    expect(told[0]!.raw).toContain('no list');

    // Not due yet: nothing happens. Due, still broken: a second try, no second alert.
    expect(await f.deps.schedules.retryingDue(now)).toEqual([]);
    now = new Date(fire!.nextAttemptAt!);
    expect(await retryFire(f.deps, (await f.deps.schedules.retryingDue(now))[0]!)).toMatchObject({ status: 'retrying' });
    expect((await f.deps.schedules.fires(weekly.id))[0]).toMatchObject({ attempts: 2 });
    expect(await alerts()).toHaveLength(1);

    // Fixed: the next try sends the digest.
    await writeFile(siteFile(), site);
    now = new Date((await f.deps.schedules.fires(weekly.id))[0]!.nextAttemptAt!);
    const [due] = await f.deps.schedules.retryingDue(now);
    expect(await retryFire(f.deps, due!)).toMatchObject({ status: 'sent' });
    expect((await f.deps.schedules.fires(weekly.id))[0]).toMatchObject({ status: 'sent', attempts: 3, nextAttemptAt: null });
    // Another process finding the same retry has nothing to do.
    expect(await retryFire(f.deps, due!)).toEqual({ status: 'taken' });
  });

  it('a fire still failing when the grace period ends is failed for good, and the editors told', async () => {
    const weekly = await add({ list: 'weekly', cron: '0 7 * * 1', tz: 'UTC', digest: true });
    await writeFile(siteFile(), (await readFile(siteFile(), 'utf8')).replace('slug: "weekly"', 'slug: "renamed"'));
    await fireSchedule(f.deps, weekly, fireAt);
    for (let i = 0; i < 20; i++) {
      const [fire] = await f.deps.schedules.fires(weekly.id);
      if (fire!.status !== 'retrying') break;
      now = new Date(fire!.nextAttemptAt!);
      await retryFire(f.deps, fire!);
    }
    const [fire] = await f.deps.schedules.fires(weekly.id);
    expect(fire!.status).toBe('failed');
    expect(fire!.detail).toMatch(/^failed after \d+ attempts: no list "weekly"/);
    expect(now.getTime() - fireAt.getTime()).toBeLessThanOrEqual(f.deps.graceMs);
    expect((await alerts()).map((a) => a.subject)).toEqual([expect.stringMatching(/a scheduled send failed/), expect.stringMatching(/a scheduled send was given up/)]);
  });

  it('an invalid story does not hold back the digest: it goes out with the valid ones, and the fire and the editors say which file was left out', async () => {
    await f.addStory('broken.md', storyFile({ title: '"Broken"', date: 'yesterday' }));
    const weekly = await add({ list: 'weekly', cron: '0 7 * * 1', tz: 'UTC', digest: true });
    const outcome = await fireSchedule(f.deps, weekly, fireAt);
    expect(outcome).toMatchObject({ status: 'sent' });
    const [fire] = await f.deps.schedules.fires(weekly.id);
    expect(fire!.detail).toMatch(/left out 1 invalid story file:\n {2}.*stories\/broken\.md:\d+: date: expected an ISO 8601 date with timezone, got "yesterday"/);
    const edition = (await f.deps.editions.find(fire!.editionId!))!;
    expect(edition.storySlugs.sort()).toEqual(['a', 'b']);
    const [alert] = await alerts();
    expect(alert!.subject).toMatch(/digest sent without some stories/);
    expect(alert!.raw).toContain('broken.md');
  });
});
