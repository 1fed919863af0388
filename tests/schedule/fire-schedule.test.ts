import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createEdition } from '../../src/edition/create-edition.ts';
import { enqueueEdition } from '../../src/edition/enqueue-edition.ts';
import { FIRE_LEASE_MS, fireSchedule, publishNewStories, recoverInterruptedFires } from '../../src/schedule/fire-schedule.ts';
import { addSchedule, cancelSchedule, type ScheduleRequest } from '../../src/schedule/manage-schedules.ts';
import { BACKENDS } from '../helpers/databases.ts';
import { datedStory, scheduleFixture, type ScheduleFixture } from './schedule-fixture.ts';

describe.each(BACKENDS)('fires on %s', (backend) => {
  let f: ScheduleFixture;
  let now: Date;

  beforeEach(async () => {
    now = new Date('2026-01-12T12:00:00Z');
    f = await scheduleFixture(backend, {
      now: () => now,
      stories: {
        'a.md': datedStory('Story A', '2026-01-05T09:00:00Z'),
        'b.md': datedStory('Story B', '2026-01-10T09:00:00Z'),
        'c.md': datedStory('Story C', '2026-01-20T09:00:00Z'),
        'd.md': datedStory('Story D', '2026-01-27T09:00:00Z'),
      },
    });
  });
  afterEach(() => f.close());

  const add = async (request: ScheduleRequest) =>
    addSchedule({ schedules: f.deps.schedules, editions: f.deps.editions, content: f.deps.content, now }, request);
  const editionsOf = async (scheduleId: number) => (await f.deps.editions.list()).filter((e) => e.scheduleId === scheduleId);

  it('a one-off enqueues its edition once, records the fire and is done', async () => {
    const { id: editionId } = await createEdition({ content: await f.deps.content(), templates: await f.deps.templates(), editions: f.deps.editions, now }, { list: 'dispatch', story: 'a' });
    const schedule = await add({ edition: editionId, at: '2026-01-13T07:00:00+02:00' });
    expect(schedule).toMatchObject({ kind: 'one-off', editionId: editionId, at: '2026-01-13T05:00:00.000Z', status: 'active' });
    now = new Date('2026-01-13T05:00:00.020Z');
    const outcome = await fireSchedule(f.deps, schedule, new Date(schedule.at!));
    expect(outcome).toMatchObject({ status: 'sent', editionId, detail: `edition ${editionId}: 4 deliveries queued` });
    expect(await fireSchedule(f.deps, schedule, new Date(schedule.at!))).toEqual({ status: 'taken' });
    expect((await f.deps.deliveries.counts(editionId)).queued).toBe(4);
    expect((await f.deps.schedules.find(schedule.id))!.status).toBe('done');
    expect(await f.deps.schedules.fires(schedule.id)).toMatchObject([{ fireAt: '2026-01-13T05:00:00.000Z', status: 'sent', editionId: editionId }]);
  });

  it('a digest holds exactly the stories published since the last sent edition, and an empty one sends nothing', async () => {
    // A digest already went out on Jan 12: it covered A and B.
    const earlier = await createEdition({ content: await f.deps.content(), templates: await f.deps.templates(), editions: f.deps.editions, now }, { list: 'dispatch', digest: true, sinceLast: true, audience: 'weekly' });
    expect(earlier.stories.map((s) => s.slug)).toEqual(['b', 'a']);
    await enqueueEdition({ editions: f.deps.editions, deliveries: f.deps.deliveries, queue: f.deps.queue, now: () => now }, earlier.id);

    const weekly = await add({ list: 'dispatch', cron: '0 7 * * 1', tz: 'Europe/Kyiv', digest: true, audience: 'weekly' });
    const monday = new Date('2026-01-26T05:00:00Z'); // 07:00 in Kyiv: C is in, D (Jan 27) is not published yet
    now = new Date(monday.getTime() + 15);
    const first = await fireSchedule(f.deps, weekly, monday);
    expect(first.status).toBe('sent');
    const made = (await f.deps.editions.find((first as { editionId: number }).editionId))!;
    expect(made).toMatchObject({ kind: 'digest', audience: 'weekly', scheduleId: weekly.id, coversUntil: monday.toISOString() });
    expect(made.storySlugs).toEqual(['c']);
    expect(await f.deps.deliveries.counts(made.id)).toMatchObject({ queued: 1 });

    // Nothing new by the next Monday but D (Jan 27); the week after, nothing at all: skipped, no email.
    const second = await fireSchedule(f.deps, weekly, new Date('2026-02-02T05:00:00Z'));
    expect((await f.deps.editions.find((second as { editionId: number }).editionId))!.storySlugs).toEqual(['d']);
    const before = (await f.deps.editions.list()).length;
    const third = await fireSchedule(f.deps, weekly, new Date('2026-02-09T05:00:00Z'));
    expect(third).toMatchObject({ status: 'skipped', editionId: null });
    expect((third as { detail: string }).detail).toMatch(/no stories published for dispatch since edition \d+/);
    expect((await f.deps.editions.list()).length).toBe(before);
    expect((await f.deps.schedules.fires(weekly.id)).map((r) => r.status)).toEqual(['skipped', 'sent', 'sent']);
  });

  it('two processes firing the same instants make one edition per fire', async () => {
    const daily = await add({ list: 'dispatch', cron: '0 8 * * *', tz: 'Europe/Berlin', digest: true });
    const other = await f.otherApp().adapters.fireDeps(f.log);
    const instants = ['2026-01-13T07:00:00Z', '2026-01-14T07:00:00Z', '2026-01-21T07:00:00Z'].map((s) => new Date(s));
    now = new Date('2026-01-21T07:00:01Z');
    const outcomes = [];
    // Each instant raced by both processes (fires of one schedule come one after another in time).
    for (const at of instants) outcomes.push(...(await Promise.all([fireSchedule(f.deps, daily, at), fireSchedule(other, daily, at)])));
    expect(outcomes.filter((o) => o.status === 'taken')).toHaveLength(3);
    const fires = await f.deps.schedules.fires(daily.id);
    expect(fires.map((r) => r.fireAt).sort()).toEqual(instants.map((d) => d.toISOString()));
    const editions = await editionsOf(daily.id);
    expect(editions.length).toBe(fires.filter((r) => r.status === 'sent').length);
    // Every story went out in exactly one of the digests.
    const slugs = editions.flatMap((e) => e.storySlugs);
    expect(slugs.sort()).toEqual([...new Set(slugs)].sort());
    expect(slugs.sort()).toEqual(['a', 'b', 'c']);
  });

  it('on publish: each new story once and only once, never the ones already out', async () => {
    const onPublish = await add({ list: 'dispatch', onPublish: true });
    const other = await f.otherApp().adapters.fireDeps(f.log);
    expect(await publishNewStories(f.deps, onPublish)).toEqual([]);
    await f.addStory('e.md', datedStory('Story E', '2026-01-12T11:00:00Z'));
    const [mine, theirs] = await Promise.all([publishNewStories(f.deps, onPublish), publishNewStories(other, onPublish)]);
    const sent = [...mine, ...theirs];
    expect(sent.map((s) => s.slug)).toEqual(['e']);
    const edition = (await f.deps.editions.find(sent[0]!.editionId))!;
    expect(edition).toMatchObject({ kind: 'story', audience: 'instant', scheduleId: onPublish.id, storySlugs: ['e'] });
    expect(await f.deps.deliveries.counts(edition.id)).toMatchObject({ queued: 2 });
    expect(await publishNewStories(f.deps, onPublish)).toEqual([]);

    // C is dated Jan 20: it goes out when that moment has passed, once.
    now = new Date('2026-01-20T09:00:05Z');
    expect((await publishNewStories(other, onPublish)).map((s) => s.slug)).toEqual(['c']);
    expect(await publishNewStories(f.deps, onPublish)).toEqual([]);
    expect(await f.deps.schedules.sentStoryCount(onPublish.id)).toBe(2);
    expect((await editionsOf(onPublish.id)).length).toBe(2);
  });

  it('settles fires a stopped process left running: resumes a known edition, tries the others again', async () => {
    const { id: editionId } = await createEdition({ content: await f.deps.content(), templates: await f.deps.templates(), editions: f.deps.editions, now }, { list: 'dispatch', story: 'b' });
    const oneOff = await add({ edition: editionId, at: '2026-01-12T13:00:00Z' });
    const digest = await add({ list: 'dispatch', cron: '0 13 * * *', tz: 'UTC', digest: true });
    const at = new Date('2026-01-12T13:00:00Z');
    await f.deps.schedules.claimFire(oneOff.id, at, at, FIRE_LEASE_MS);
    await f.deps.schedules.claimFire(digest.id, at, at, FIRE_LEASE_MS);
    // Within their lease the fires may still be at work in another process: left alone.
    now = new Date(at.getTime() + FIRE_LEASE_MS - 1);
    expect(await recoverInterruptedFires(f.deps)).toEqual([]);
    // The lease ran out: the very next tick settles them (seconds, not ten minutes).
    now = new Date(at.getTime() + FIRE_LEASE_MS + 1);
    expect(await recoverInterruptedFires(f.deps)).toHaveLength(2);
    expect((await f.deps.schedules.fires(oneOff.id))[0]).toMatchObject({ status: 'sent', editionId: editionId });
    expect((await f.deps.deliveries.counts(editionId)).queued).toBe(4);
    expect((await f.deps.schedules.find(oneOff.id))!.status).toBe('done');
    expect((await f.deps.schedules.fires(digest.id))[0]).toMatchObject({ status: 'retrying', detail: 'interrupted before its edition was made; trying again' });
  });

  it('cancel stops a schedule; cancelling twice is refused', async () => {
    const weekly = await add({ list: 'weekly', cron: '0 7 * * 1', digest: true });
    expect(weekly.timezone).toBe('Europe/Dublin'); // site.yaml's zone when --tz is left out
    expect((await cancelSchedule({ schedules: f.deps.schedules, now }, weekly.id)).status).toBe('cancelled');
    await expect(cancelSchedule({ schedules: f.deps.schedules, now }, weekly.id)).rejects.toThrow(`schedule ${weekly.id} is already cancelled`);
    await expect(cancelSchedule({ schedules: f.deps.schedules, now }, 999)).rejects.toThrow('no schedule 999');
  });
});

describe('adding schedules refuses bad input with a reason', () => {
  let f: ScheduleFixture;
  const now = new Date('2026-01-12T12:00:00Z');
  beforeEach(async () => {
    f = await scheduleFixture('sqlite', { now: () => now, stories: { 'a.md': datedStory('Story A', '2026-01-05T09:00:00Z') } });
  });
  afterEach(() => f.close());
  const add = (request: ScheduleRequest) => addSchedule({ schedules: f.deps.schedules, editions: f.deps.editions, content: f.deps.content, now }, request);

  it('names the bad cron expression, zone, list, instant or combination', async () => {
    const { id } = await createEdition({ content: await f.deps.content(), templates: await f.deps.templates(), editions: f.deps.editions, now }, { list: 'dispatch', story: 'a' });
    const cases: [ScheduleRequest, RegExp][] = [
      [{ list: 'dispatch', cron: '0 25 * * *', tz: 'UTC', digest: true }, /invalid cron expression "0 25 \* \* \*": 25 is an invalid expression for hour/],
      [{ list: 'dispatch', cron: 'every monday', tz: 'UTC', digest: true }, /invalid cron expression "every monday"/],
      [{ list: 'dispatch', cron: '0 7 * * 1', tz: 'Europe/Kiyv', digest: true }, /unknown time zone "Europe\/Kiyv"/],
      [{ list: 'dispatch', cron: '0 7 * * 1', tz: 'UTC' }, /add --digest/],
      [{ list: 'nope', cron: '0 7 * * 1', tz: 'UTC', digest: true }, /unknown list "nope" \(known: dispatch, weekly\)/],
      [{ list: 'dispatch', cron: '0 7 * * 1', tz: 'UTC', digest: true, audience: 'hourly' }, /audience: expected one of all, instant, daily, weekly/],
      [{ edition: id, at: '2026-01-11T07:00:00Z' }, /2026-01-11T07:00:00Z is in the past \(now is 2026-01-12T12:00:00.000Z\)/],
      [{ edition: id, at: '2026-01-13T07:00' }, /has no offset or zone/],
      [{ edition: id }, /needs both --edition ID and --at ISO/],
      [{ edition: id, at: '2026-01-13T07:00Z', cron: '* * * * *' }, /--edition, --at do not apply to a recurring schedule/],
      [{ edition: 'x', at: '2026-01-13T07:00Z' }, /expected an edition id/],
      [{ list: 'dispatch', onPublish: true, audience: 'weekly' }, /sends to instant subscribers/],
      [{}, /choose --edition ID --at ISO/],
    ];
    for (const [request, message] of cases) await expect(add(request), JSON.stringify(request)).rejects.toThrow(message);
    await expect(add({ edition: 99, at: '2026-01-13T07:00Z' })).rejects.toThrow('no edition 99');
    await add({ edition: id, at: '2026-01-13T07:00Z' });
    await expect(add({ edition: id, at: '2026-01-14T07:00Z' })).rejects.toThrow(/edition \d+ is already scheduled/);
    await add({ list: 'dispatch', onPublish: true });
    await expect(add({ list: 'dispatch', onPublish: true })).rejects.toThrow(/already has an on-publish schedule/);
    expect((await f.deps.schedules.list()).length).toBe(2);
  });
});
