import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { signIn, type ConsoleSession } from '../helpers/console-session.ts';
import { testServer, type TestServer } from '../helpers/server.ts';

let t: TestServer;
let session: ConsoleSession;
let list: string;
const now = new Date('2026-12-01T10:00:00Z');

beforeEach(async () => {
  t = await testServer({ now: () => now, env: { BASE_URL: 'http://gazette.test' } });
  session = await signIn(t.server, t.app);
  list = (await t.app.content()).site.lists[0]!.slug;
  for (const email of ['r1@example.com', 'r2@example.com', 'r3@example.com']) await t.app.subscribers.add({ email, confirmed: true, source: 'cli' });
});
afterEach(() => t.close());

/** The id in a redirect to an edition's page. */
const editionIn = (location: string | undefined) => Number(/^\/admin\/editions\/(\d+)$/.exec(location ?? '')?.[1]);

describe('editions in the console', () => {
  it('makes a digest of the ticked stories with its own subject, shows its previews and preflight, and edits the draft', async () => {
    const published = (await t.app.content()).stories.filter((s) => !s.draft).slice(0, 2);
    const made = await session.post('/admin/editions', { list, kind: 'digest', source: 'pick', stories: published.map((s) => s.slug), subject: 'The week in two stories', audience: 'all' });
    expect(made.statusCode).toBe(303);
    const id = editionIn(made.headers.location);
    const edition = await t.app.editions.find(id);
    expect(edition).toMatchObject({ kind: 'digest', subject: 'The week in two stories', status: 'draft' });
    expect(edition.storySlugs.sort()).toEqual(published.map((s) => s.slug).sort());

    const page = await session.get(`/admin/editions/${id}`);
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('is ready as a draft');
    expect(page.body).toContain('Passed: subject, links, unsubscribe and size are in order.');
    // Both previews are the real render in sandboxed frames: no scripts, no same origin.
    const frames = page.body.match(/<iframe[^>]*>/g) ?? [];
    expect(frames).toHaveLength(2);
    for (const frame of frames) expect(frame).toMatch(/ sandbox="" src="\/admin\/editions\/\d+\/frame"/);
    expect(page.body).toContain(published[0]!.title);

    const frame = await session.get(`/admin/editions/${id}/frame`);
    expect(frame.headers['content-security-policy']).toMatch(/sandbox$/);
    expect(frame.headers['content-security-policy']).toContain("frame-ancestors 'self'");
    expect(frame.headers['x-frame-options']).toBe('SAMEORIGIN');
    expect(frame.body).toContain(published[1]!.title);
    expect(frame.body).not.toMatch(/<script/i);

    const revised = await session.post(`/admin/editions/${id}/revise`, { subject: 'A better subject', preheader: 'Read this first' });
    expect(revised.statusCode).toBe(303);
    expect(await t.app.editions.find(id)).toMatchObject({ subject: 'A better subject', preheader: 'Read this first' });
    expect((await t.app.editions.sample(id)).html).toContain('Read this first');
  });

  it('shows the form again with the reason when an edition cannot be made', async () => {
    const none = await session.post('/admin/editions', { list, kind: 'digest', source: 'pick', subject: 'Nothing picked' });
    expect(none.statusCode).toBe(400);
    expect(none.body).toContain('stories: pick at least one story for the digest');
    expect(none.body).toContain('value="Nothing picked"');
    const draft = await session.post('/admin/editions', { list, kind: 'story', story: 'draft-sanctions-tracker' });
    expect(draft.statusCode).toBe(400);
    expect(draft.body).toContain('is a draft or dated in the future');
    expect(await t.app.editions.list()).toHaveLength(0);
  });

  it('sends a test to several addresses, refusing them all when one is not an address', async () => {
    const { edition } = await t.app.editions.create({ list, digest: true });
    const bad = await session.post(`/admin/editions/${edition.id}/test`, { to: 'ed@example.com, not-an-address' });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain('No test was sent');
    expect(await t.outbox()).toHaveLength(0);
    const ok = await session.post(`/admin/editions/${edition.id}/test`, { to: 'ed@example.com\nchief@example.com' });
    expect(ok.statusCode).toBe(303);
    const sent = await t.outbox();
    expect(sent.map((m) => (m.parsed.to && 'value' in m.parsed.to ? m.parsed.to.value[0]!.address : '')).sort()).toEqual(['chief@example.com', 'ed@example.com']);
    expect(sent.every((m) => m.parsed.subject?.startsWith('[TEST] '))).toBe(true);
    expect((await t.app.editions.find(edition.id)).status).toBe('draft');
  });

  it('asks before sending, saying to how many, then sends; pause, resume and cancel ask too', async () => {
    const { edition } = await t.app.editions.create({ list, digest: true });
    const ask = await session.get(`/admin/editions/${edition.id}/send`);
    expect(ask.body).toContain('goes to 3 subscribers');
    expect(ask.body).toContain('Send to 3 subscribers');
    expect((await t.app.editions.find(edition.id)).status).toBe('draft');
    const sent = await session.post(`/admin/editions/${edition.id}/send`);
    expect(sent.statusCode).toBe(303);
    expect((await t.app.editions.status(edition.id)).queued).toBe(3);

    expect((await session.get(`/admin/editions/${edition.id}/pause`)).body).toContain('3 messages not sent yet will wait');
    await session.post(`/admin/editions/${edition.id}/pause`);
    const paused = await t.app.editions.find(edition.id);
    expect(paused).toMatchObject({ status: 'paused', pauseKind: 'operator' });
    expect(paused.lastError).toContain('editor@example.com');
    const dashboard = await session.get('/admin');
    expect(dashboard.body).toContain(`Edition ${edition.id}`);
    expect(dashboard.body).toContain('is paused');

    expect((await session.get(`/admin/editions/${edition.id}/resume`)).body).toContain('3 messages still to send');
    await session.post(`/admin/editions/${edition.id}/resume`);
    expect((await t.app.editions.find(edition.id)).status).toBe('sending');

    expect((await session.get(`/admin/editions/${edition.id}/cancel`)).body).toContain('3 messages not sent yet will be skipped');
    await session.post(`/admin/editions/${edition.id}/cancel`);
    const report = await t.app.editions.status(edition.id);
    expect(report).toMatchObject({ status: 'cancelled', skipped: 3, queued: 0 });
    // Nothing goes out after a cancel, and it cannot be sent again.
    expect((await t.outbox()).filter((m) => !m.parsed.subject?.startsWith('[TEST]'))).toHaveLength(0);
    expect((await session.post(`/admin/editions/${edition.id}/send`)).statusCode).toBe(400);
  });

  it('schedules a draft in a named zone after a confirmation that shows the count and both times', async () => {
    const { edition } = await t.app.editions.create({ list, digest: true });
    const ask = await session.get(`/admin/editions/${edition.id}/schedule?date=2026-12-07&time=07:00&zone=Europe%2FKyiv`);
    expect(ask.statusCode).toBe(200);
    expect(ask.body).toContain('Mon, 7 Dec 2026, 07:00 Europe/Kyiv, which is 2026-12-07 05:00 UTC.');
    expect(ask.body).toContain('Schedule for 3 subscribers');
    expect(await t.app.schedules.list()).toHaveLength(0);
    // Another send to the list within the hour is pointed out.
    await t.app.schedules.add({ list, cron: '30 7 * * 1', tz: 'Europe/Kyiv', digest: true });
    expect((await session.get(`/admin/editions/${edition.id}/schedule?date=2026-12-07&time=07:00&zone=Europe%2FKyiv`)).body).toContain('Careful: schedule 1 (a recurring digest) also sends to');
    const done = await session.post(`/admin/editions/${edition.id}/schedule`, { date: '2026-12-07', time: '07:00', zone: 'Europe/Kyiv' });
    expect(done.statusCode).toBe(303);
    const schedule = (await t.app.schedules.list()).find((s) => s.kind === 'one-off');
    expect(schedule).toMatchObject({ kind: 'one-off', edition_id: edition.id, at: '2026-12-07T05:00:00.000Z', timezone: 'Europe/Kyiv' });
    const page = await session.get(`/admin/editions/${edition.id}`);
    expect(page.body).toContain('Scheduled for Mon, 7 Dec 2026, 07:00 Europe/Kyiv');
    // Listings say a draft is due, and when.
    expect((await session.get('/admin/editions')).body).toContain('<span class="badge scheduled">scheduled</span> <span class="muted">Mon, 7 Dec 2026, 07:00 Europe/Kyiv</span>');
    expect((await session.get('/admin')).body).toContain('due Mon, 7 Dec 2026, 07:00 Europe/Kyiv');
    // Cancelling the edition cancels its schedule: it would only fail when it fired.
    await session.post(`/admin/editions/${edition.id}/cancel`);
    expect((await t.app.schedules.list()).find((s) => s.kind === 'one-off')!.status).toBe('cancelled');
    const past = await t.app.editions.create({ list, digest: true });
    const late = await session.post(`/admin/editions/${past.edition.id}/schedule`, { date: '2026-11-30', time: '07:00', zone: 'Europe/Kyiv' });
    expect(late.statusCode).toBe(303);
    expect((await session.get(late.headers.location as string)).body).toContain('is in the past');
  });

  it('lists stories with their states, and files left out with file:line and what is wrong', async () => {
    const { writeFile } = await import('node:fs/promises');
    await writeFile(`${t.contentDir}/stories/broken.md`, '---\ntitle: Broken\n---\nNo date.\n');
    // content/ is looked at again at most once a second: the page shows the new file within that.
    await expect.poll(async () => (await session.get('/admin/stories')).body, { timeout: 5000, interval: 100 }).toContain('stories/broken.md');
    const stories = await session.get('/admin/stories');
    expect(stories.statusCode).toBe(200);
    expect(stories.body).toMatch(/badge draft">draft/);
    expect(stories.body).toMatch(/badge published">published/);
    expect(stories.body).toContain('stories/broken.md');
    const dashboard = await session.get('/admin');
    expect(dashboard.body).toMatch(/Left out: \S*stories\/broken\.md:2: date: required/);
    const story = await session.get('/admin/stories/draft-sanctions-tracker');
    expect(story.statusCode).toBe(200);
    expect(story.body).toContain('src="/admin/stories/draft-sanctions-tracker/page"');
    const web = await session.get('/admin/stories/draft-sanctions-tracker/page');
    expect(web.statusCode).toBe(200);
    expect(web.headers['content-security-policy']).toMatch(/sandbox$/);
    expect((await session.get('/admin/stories/draft-sanctions-tracker/email')).body).toContain('drafts never reach feeds or emails');
  });
});
