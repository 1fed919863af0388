import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createEdition } from '../../src/edition/create-edition.ts';
import { addSchedule, cancelSchedule, type ScheduleRequest } from '../../src/schedule/manage-schedules.ts';
import type { ScheduleFire } from '../../src/model/schedule.ts';
import { BACKENDS } from '../helpers/databases.ts';
import { datedStory, scheduleFixture, type ScheduleFixture } from './schedule-fixture.ts';

const STORIES = {
  'a.md': datedStory('Story A', '2026-01-05T09:00:00Z'),
  'b.md': datedStory('Story B', '2026-01-10T09:00:00Z'),
};
const HOUR = 3_600_000;

const brief = (fires: ScheduleFire[]) => fires.map((f) => `${f.fireAt} ${f.status}`).sort();

/** Fake Date and timers only: the database and file reads keep running on the real event loop. */
function useFakeClock(start: string): void {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'], now: new Date(start) });
}

describe('scheduler runtime on a fake clock', () => {
  let f: ScheduleFixture;

  afterEach(async () => {
    await f.close();
    vi.useRealTimers();
  });

  const add = (request: ScheduleRequest, app = f.app) =>
    app.adapters.fireDeps(f.log).then((deps) => addSchedule({ schedules: deps.schedules, editions: deps.editions, content: deps.content, now: new Date() }, request));
  /**
   * Moves the fake clock on in steps, letting the schedulers finish their work (real file and
   * database I/O) after each step, so time does not run ahead of a fire in progress.
   */
  const advance = async (ms: number, step: number, ...schedulers: { idle(): Promise<void> }[]) => {
    for (let done = 0; done < ms; done += step) {
      await vi.advanceTimersByTimeAsync(Math.min(step, ms - done));
      for (const s of schedulers) await s.idle();
    }
  };
  const makeEdition = async () =>
    (await createEdition({ content: await f.deps.content(), templates: await f.deps.templates(), editions: f.deps.editions, now: new Date() }, { list: 'dispatch', story: 'a' })).id;

  it('sends a one-off at its instant, exactly once', async () => {
    useFakeClock('2026-03-02T06:58:00Z');
    f = await scheduleFixture('sqlite', { stories: STORIES });
    const editionId = await makeEdition();
    const schedule = await add({ edition: editionId, at: '2026-03-02T09:00:00+02:00' });
    const scheduler = await f.scheduler();
    await scheduler.start();
    await advance(60_000 + 59_000, 1000, scheduler);
    expect(await f.deps.schedules.fires(schedule.id)).toEqual([]);
    await advance(1_000, 1000, scheduler);
    const [fire] = await f.deps.schedules.fires(schedule.id);
    expect(fire).toMatchObject({ fireAt: '2026-03-02T07:00:00.000Z', status: 'sent', editionId: editionId, createdAt: '2026-03-02T07:00:00.000Z' });
    expect((await f.deps.deliveries.counts(editionId)).queued).toBe(4);
    expect((await f.deps.schedules.find(schedule.id))!.status).toBe('done');
    await advance(10_000, 1000, scheduler);
    expect(scheduler.registered()).toEqual([]);
    expect(await f.deps.schedules.fires(schedule.id)).toHaveLength(1);
  });

  it('fires a weekly Kyiv digest through node-cron at 07:00 local, then skips the empty one a week later', async () => {
    useFakeClock('2026-03-23T04:59:00Z');
    f = await scheduleFixture('sqlite', { stories: STORIES });
    const weekly = await add({ list: 'dispatch', cron: '0 7 * * 1', tz: 'Europe/Kyiv', digest: true, audience: 'weekly' });
    const scheduler = await f.scheduler({ pollMs: HOUR, checkMs: HOUR });
    await scheduler.start();
    await advance(60_000, 1000, scheduler);
    const [fire] = await f.deps.schedules.fires(weekly.id);
    expect(fire).toMatchObject({ fireAt: '2026-03-23T05:00:00.000Z', status: 'sent', createdAt: '2026-03-23T05:00:00.000Z' });
    expect((await f.deps.editions.find(fire!.editionId!))!.storySlugs).toEqual(['b', 'a']);
    // Next Monday is after the spring change: 07:00 Kyiv is 04:00 UTC.
    await advance(7 * 24 * HOUR - HOUR, HOUR, scheduler);
    expect(brief(await f.deps.schedules.fires(weekly.id))).toEqual(['2026-03-23T05:00:00.000Z sent', '2026-03-30T04:00:00.000Z skipped']);
  });

  it('fires "30 2 * * *" Berlin once on the spring-forward night and once on the fall-back night', async () => {
    useFakeClock('2026-03-28T23:00:00Z');
    f = await scheduleFixture('sqlite', { stories: STORIES });
    const daily = await add({ list: 'dispatch', cron: '30 2 * * *', tz: 'Europe/Berlin', digest: true });
    const scheduler = await f.scheduler({ pollMs: 5 * 60_000 });
    await scheduler.start();
    await advance(4 * HOUR, 30 * 60_000, scheduler); // until 03:00Z (05:00 CEST): 02:30 never happened; 03:30 CEST did
    expect(await f.deps.schedules.fires(daily.id)).toMatchObject([{ fireAt: '2026-03-29T01:30:00.000Z', status: 'sent', createdAt: '2026-03-29T01:30:00.000Z' }]);
    await scheduler.stop();

    vi.setSystemTime(new Date('2026-10-24T22:00:00Z'));
    const autumn = await f.scheduler({ pollMs: 5 * 60_000 });
    await autumn.start();
    await advance(5 * HOUR, 30 * 60_000, autumn); // until 03:00Z: 02:30 happened at 00:30Z and again at 01:30Z
    const fires = brief(await f.deps.schedules.fires(daily.id, 500));
    expect(fires.filter((x) => x.startsWith('2026-10-25'))).toEqual(['2026-10-25T00:30:00.000Z skipped']);
    // The months the scheduler was off are recorded as missed (the newest 100 of them), not sent.
    expect(fires.filter((x) => x.endsWith('missed'))).toHaveLength(100);
    expect(fires.filter((x) => x.endsWith('sent'))).toHaveLength(1);
  });

  it('catches up at start-up: a fire within the grace period runs once, an older one is recorded as missed', async () => {
    useFakeClock('2026-03-23T04:00:00Z');
    f = await scheduleFixture('sqlite', { stories: STORIES });
    const within = await add({ list: 'dispatch', cron: '0 7 * * 1', tz: 'Europe/Kyiv', digest: true });
    const outside = await add({ list: 'weekly', cron: '30 5 * * 1', tz: 'Europe/Kyiv', digest: true }); // 03:30Z: before creation
    const late = await add({ list: 'weekly', cron: '0 6 * * 1', tz: 'Europe/Kyiv', digest: true }); // 04:00Z
    const oneOffEdition = await makeEdition();
    const oneOff = await add({ edition: oneOffEdition, at: '2026-03-23T04:10:00Z' });
    // Nothing runs until 05:30Z: 05:00Z is 30 minutes late, 04:10Z one hour 20 minutes.
    vi.setSystemTime(new Date('2026-03-23T05:30:00Z'));
    const scheduler = await f.scheduler();
    await scheduler.start();
    await scheduler.idle();
    expect(await f.deps.schedules.fires(within.id)).toMatchObject([{ fireAt: '2026-03-23T05:00:00.000Z', status: 'sent', createdAt: '2026-03-23T05:30:00.000Z' }]);
    expect(await f.deps.schedules.fires(outside.id)).toEqual([]);
    expect(await f.deps.schedules.fires(late.id)).toEqual([]); // created at 04:00Z exactly: its 04:00Z fire is not after creation
    const [missed] = await f.deps.schedules.fires(oneOff.id);
    expect(missed).toMatchObject({ fireAt: '2026-03-23T04:10:00.000Z', status: 'missed', editionId: null });
    expect(missed!.detail).toMatch(/more than the 60-minute grace period late/);
    expect((await f.deps.schedules.find(oneOff.id))!.status).toBe('done');
    expect((await f.deps.deliveries.counts(oneOffEdition)).queued).toBe(0);
    await scheduler.stop();

    // A second restart runs nothing again.
    vi.setSystemTime(new Date('2026-03-23T05:40:00Z'));
    const again = await f.scheduler();
    await again.start();
    await again.idle();
    expect(await f.deps.schedules.fires(within.id)).toHaveLength(1);

    // Down for a week and a half: the Mar 30 fire is too old, nothing is sent, it is recorded as missed.
    await again.stop();
    vi.setSystemTime(new Date('2026-04-01T12:00:00Z'));
    const third = await f.scheduler();
    await third.start();
    await third.idle();
    expect(brief(await f.deps.schedules.fires(within.id))).toEqual(['2026-03-23T05:00:00.000Z sent', '2026-03-30T04:00:00.000Z missed']);
  });

  it('picks up schedules added and cancelled by another process within seconds', async () => {
    useFakeClock('2026-03-02T07:00:00Z');
    f = await scheduleFixture('sqlite', { stories: STORIES });
    const scheduler = await f.scheduler({ pollMs: 2000 });
    await scheduler.start();
    const other = f.otherApp();
    const editionId = await makeEdition();
    const oneOff = await add({ edition: editionId, at: '2026-03-02T07:00:05Z' }, other);
    // On another list: the one-off just sent to dispatch would leave its digest empty.
    const everyMinute = await add({ list: 'weekly', cron: '* * * * *', tz: 'UTC', digest: true }, other);
    await advance(2_000, 1000, scheduler);
    expect(scheduler.registered()).toEqual([oneOff.id, everyMinute.id]);
    await advance(3_000, 1000, scheduler);
    expect(await f.deps.schedules.fires(oneOff.id)).toMatchObject([{ status: 'sent', createdAt: '2026-03-02T07:00:05.000Z' }]);
    await advance(55_000, 1000, scheduler);
    expect(brief(await f.deps.schedules.fires(everyMinute.id))).toEqual(['2026-03-02T07:01:00.000Z sent']);
    await cancelSchedule({ schedules: (await other.adapters.fireDeps(f.log)).schedules, now: new Date() }, everyMinute.id);
    await advance(2_000, 1000, scheduler);
    expect(scheduler.registered()).toEqual([]);
    await advance(5 * 60_000, 1000, scheduler);
    expect(await f.deps.schedules.fires(everyMinute.id)).toHaveLength(1);
  });

  it('a cancel made a moment before the fire still stops it (re-read before firing)', async () => {
    useFakeClock('2026-03-02T07:00:00Z');
    f = await scheduleFixture('sqlite', { stories: STORIES });
    const everyMinute = await add({ list: 'dispatch', cron: '* * * * *', tz: 'UTC', digest: true });
    const scheduler = await f.scheduler({ pollMs: 60_000 });
    await scheduler.start();
    await advance(59_000, 1000, scheduler);
    await cancelSchedule({ schedules: f.deps.schedules, now: new Date() }, everyMinute.id);
    await advance(1_000, 1000, scheduler);
    expect(await f.deps.schedules.fires(everyMinute.id)).toEqual([]);
    expect(scheduler.registered()).toEqual([]);
  });

  it('sends each newly published story once from the periodic check, and on demand', async () => {
    useFakeClock('2026-03-02T07:00:00Z');
    f = await scheduleFixture('sqlite', { stories: STORIES });
    const onPublish = await add({ list: 'dispatch', onPublish: true });
    const scheduler = await f.scheduler({ checkMs: 30_000 });
    await scheduler.start();
    await f.addStory('c.md', datedStory('Story C', '2026-03-02T06:59:00Z'));
    await f.addStory('d.md', datedStory('Story D', '2026-03-02T07:01:10Z')); // published a minute later
    await advance(30_000, 1000, scheduler);
    const sent = async () => (await f.deps.editions.list()).filter((e) => e.scheduleId === onPublish.id).map((e) => e.storySlugs[0]!);
    expect(await sent()).toEqual(['c']);
    await advance(60_000, 1000, scheduler);
    expect((await sent()).sort()).toEqual(['c', 'd']);
    await f.addStory('e.md', datedStory('Story E', '2026-03-02T07:01:20Z'));
    await scheduler.checkOnPublish();
    await scheduler.checkOnPublish();
    await advance(120_000, 1000, scheduler);
    expect((await sent()).sort()).toEqual(['c', 'd', 'e']);
  });

  it('a schedule it cannot read is logged and skipped; the others still run', async () => {
    useFakeClock('2026-03-02T07:00:00Z');
    f = await scheduleFixture('sqlite', { stories: STORIES });
    const db = (await f.app.adapters.store()).db;
    const stamp = new Date().toISOString();
    await db.insertInto('schedules').values({ kind: 'recurring', list_slug: 'dispatch', edition_id: null, at: null, cron: '0 7 * * 9', timezone: 'UTC', audience: 'all', status: 'active', created_at: stamp, updated_at: stamp }).execute();
    const good = await add({ list: 'dispatch', cron: '*/10 * * * * *', tz: 'UTC', digest: true });
    const scheduler = await f.scheduler();
    await scheduler.start();
    await advance(10_000, 1000, scheduler);
    expect(scheduler.registered()).toEqual([good.id]);
    expect(await f.deps.schedules.fires(good.id)).toHaveLength(1);
    expect(f.log.lines.filter((l) => l.startsWith('error'))).toEqual(['error schedule 1 not registered: invalid cron expression "0 7 * * 9": 9 is an invalid expression for week day']);
  });

  it('two schedulers over one database make one edition per fire', async () => {
    useFakeClock('2026-03-02T06:59:30Z');
    f = await scheduleFixture('sqlite', { stories: STORIES });
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(await makeEdition());
    const oneOffs = [];
    for (const [i, id] of ids.entries()) oneOffs.push(await add({ edition: id, at: `2026-03-02T07:00:0${i}Z` }));
    const digest = await add({ list: 'dispatch', cron: '*/10 * * * * *', tz: 'UTC', digest: true });
    const a = await f.scheduler();
    const b = await f.scheduler();
    await Promise.all([a.start(), b.start()]);
    await advance(60_000, 1000, a, b);
    for (const s of oneOffs) expect(await f.deps.schedules.fires(s.id)).toMatchObject([{ status: 'sent' }]);
    const fires = await f.deps.schedules.fires(digest.id);
    expect(fires).toHaveLength(6); // 06:59:40 … 07:00:30 every 10 s
    expect(fires.filter((x) => x.status === 'sent')).toHaveLength(1);
    const editions = (await f.deps.editions.list()).filter((e) => e.scheduleId === digest.id);
    expect(editions).toHaveLength(1);
    for (const id of ids) expect((await f.deps.deliveries.counts(id)).queued).toBe(4);
  });
});

describe.each(BACKENDS)('scheduler in real time on %s', (backend) => {
  let f: ScheduleFixture;
  beforeEach(async () => {
    f = await scheduleFixture(backend, { stories: STORIES });
  });
  afterEach(() => f.close());

  it('a per-second expression fires every second, once, with two schedulers racing', async () => {
    const deps = f.deps;
    const schedule = await addSchedule({ schedules: deps.schedules, editions: deps.editions, content: deps.content, now: new Date() }, { list: 'dispatch', cron: '* * * * * *', tz: 'Europe/Kyiv', digest: true });
    const a = await f.scheduler();
    const b = await f.scheduler();
    await Promise.all([a.start(), b.start()]);
    // Half-way, a story is published: the next fire's digest carries it, the others are empty.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await f.addStory('c.md', datedStory('Story C', new Date().toISOString()));
    await new Promise((resolve) => setTimeout(resolve, 1700));
    await Promise.all([a.stop(), b.stop()]);
    const fires = (await deps.schedules.fires(schedule.id, 100)).reverse();
    expect(fires.length).toBeGreaterThanOrEqual(3);
    const instants = fires.map((x) => new Date(x.fireAt).getTime());
    for (let i = 1; i < instants.length; i++) expect(instants[i]! - instants[i - 1]!, 'one fire per second, none skipped').toBe(1000);
    for (const fire of fires) {
      expect(['sent', 'skipped']).toContain(fire.status);
      expect(new Date(fire.createdAt).getTime() - new Date(fire.fireAt).getTime(), 'claimed within a second').toBeLessThan(1000);
    }
    const editions = (await deps.editions.list()).filter((e) => e.scheduleId === schedule.id);
    expect(editions.length).toBe(fires.filter((x) => x.status === 'sent').length);
    expect(editions.flatMap((e) => e.storySlugs).sort()).toEqual(['a', 'b', 'c']);
    expect(f.log.lines.filter((l) => l.startsWith('error'))).toEqual([]);
  });
});
