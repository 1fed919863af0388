import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { signIn, type ConsoleSession } from '../helpers/console-session.ts';
import { testServer, type TestServer } from '../helpers/server.ts';

/** A Tuesday, 12:00 in Kyiv (UTC+2 in winter). */
const NOW = new Date('2026-12-01T10:00:00Z');

describe('console schedule pages', () => {
  let t: TestServer;
  let editor: ConsoleSession;
  let list: string;

  beforeEach(async () => {
    t = await testServer({ now: () => NOW, env: { BASE_URL: 'http://gazette.test' } });
    editor = await signIn(t.server, t.app);
    list = (await t.app.content()).site.lists[0]!.slug;
  });
  afterEach(async () => t.close());

  const draft = async () => (await t.app.editions.create({ list, digest: true })).edition.id;

  it('lists every schedule with its kind, list, status and next fire, and links to a new one', async () => {
    await t.app.schedules.add({ list, cron: '0 7 * * *', tz: 'Europe/Kyiv', digest: true });
    const page = await editor.get('/admin/schedules');
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('Recurring digest');
    expect(page.body).toContain(`<code>${list}</code>`);
    expect(page.body).toContain('<span class="badge active">active</span>');
    expect(page.body).toContain('<code>0 7 * * *</code>');
    expect(page.body).toContain('At 07:00, every day');
    // The next fire in the schedule's zone and in the editor's (UTC: no zone of their own).
    expect(page.body).toContain('Wed, 2 Dec 2026, 07:00 Europe/Kyiv');
    expect(page.body).toContain('Wed, 2 Dec 2026, 05:00 UTC');
    expect(page.body).toContain('href="/admin/schedules/new"');
  });

  it('shows the last fire and the fire history with their status and reason', async () => {
    const { schedule } = await t.app.schedules.add({ list, cron: '0 7 * * *', tz: 'Europe/Kyiv', digest: true });
    const records = await t.app.adapters.schedules();
    await records.recordMissed(schedule.id, [{ at: new Date('2026-12-01T05:00:00Z'), detail: 'the scheduler was down past the grace period' }], NOW);
    const listing = await editor.get('/admin/schedules');
    expect(listing.body).toContain('<span class="badge missed">missed</span>');
    expect(listing.body).toContain('the scheduler was down past the grace period');
    const detail = await editor.get(`/admin/schedules/${schedule.id}`);
    expect(detail.body).toContain('Tue, 1 Dec 2026, 07:00 Europe/Kyiv');
    expect(detail.body).toContain('<span class="badge missed">missed</span>');
    expect(detail.body).toContain('the scheduler was down past the grace period');
  });

  it('schedules a one-off at 07:00 Europe/Kyiv a few days ahead and stores the right instant', async () => {
    const edition = await draft();
    const form = await editor.get(`/admin/schedules/new?edition=${edition}`);
    expect(form.statusCode).toBe(200);
    expect(form.body).toMatch(new RegExp(`<option value="${edition}" selected>`));
    expect(form.body).toContain('<option value="Europe/Kyiv">');
    // The editor has no zone, so site.yaml's is preselected.
    const siteZone = (await t.app.content()).site.timezone;
    expect(form.body).toContain(`<option value="${siteZone}" selected>`);

    // The form leads to the edition's confirmation: the count and the time in the zone and in UTC, nothing stored yet.
    const asked = await editor.post('/admin/schedules/one-off', { edition: String(edition), date: '2026-12-04', time: '07:00', zone: 'Europe/Kyiv' });
    expect(asked.statusCode).toBe(303);
    expect(asked.headers.location).toBe(`/admin/editions/${edition}/schedule?date=2026-12-04&time=07%3A00&zone=Europe%2FKyiv`);
    const confirmation = await editor.get(asked.headers.location as string);
    expect(confirmation.body).toContain('Fri, 4 Dec 2026, 07:00 Europe/Kyiv');
    expect(confirmation.body).toContain('2026-12-04 05:00 UTC');
    expect(await t.app.schedules.list()).toEqual([]);
    const created = await editor.post(`/admin/editions/${edition}/schedule`, { date: '2026-12-04', time: '07:00', zone: 'Europe/Kyiv' });
    expect(created.statusCode).toBe(303);
    const [stored] = await t.app.schedules.list();
    expect(stored).toMatchObject({ kind: 'one-off', edition_id: edition, at: '2026-12-04T05:00:00.000Z', timezone: 'Europe/Kyiv' });

    const detail = await editor.get(`/admin/schedules/${stored!.id}`);
    expect(detail.body).toContain('Fri, 4 Dec 2026, 07:00 Europe/Kyiv');
    expect(detail.body).toContain('Fri, 4 Dec 2026, 05:00 UTC');
    expect(detail.body).toContain(`href="/admin/editions/${edition}"`);

    const listing = await editor.get('/admin/schedules');
    expect(listing.body).toContain('07:00 Europe/Kyiv');
    expect(listing.body).toContain(`href="/admin/editions/${edition}"`);
  });

  it('shows times in the signed-in user’s own zone too', async () => {
    const edition = await draft();
    const user = (await t.app.users.list()).find((u) => u.email === 'editor@example.com')!;
    await t.app.users.setTimeZone(user.id, 'America/New_York');
    await t.app.schedules.add({ edition, at: '2026-12-04T07:00[Europe/Kyiv]' });
    const listing = await editor.get('/admin/schedules');
    expect(listing.body).toContain('Fri, 4 Dec 2026, 07:00 Europe/Kyiv');
    expect(listing.body).toContain('Fri, 4 Dec 2026, 00:00 America/New_York');
    const form = await editor.get('/admin/schedules/new');
    expect(form.body).toContain('<option value="America/New_York" selected>');
  });

  it('refuses a one-off in the past with the reason, keeps the values and stores nothing', async () => {
    const edition = await draft();
    const asked = await editor.post('/admin/schedules/one-off', { edition: String(edition), date: '2026-11-30', time: '07:00', zone: 'Europe/Kyiv' });
    const refused = await editor.get(asked.headers.location as string);
    expect(refused.statusCode).toBe(303);
    // Back on the edition's page, with the reason and the form as typed.
    const page = await editor.get(refused.headers.location as string);
    expect(page.body).toContain('is in the past');
    expect(page.body).toContain('value="2026-11-30"');
    expect(page.body).toContain('<option value="Europe/Kyiv" selected>');
    expect(await t.app.schedules.list()).toEqual([]);
  });

  it('makes a weekly preset into a cron rule and shows its next five fires in the zone and in UTC', async () => {
    const preview = await editor.post('/admin/schedules/recurring', { list, audience: 'all', mode: 'weekly', weekday: '1', time: '07:00', cron: '', zone: 'Europe/Kyiv', action: 'preview' });
    expect(preview.statusCode).toBe(200);
    expect(preview.body).toContain('At 07:00, only on Monday');
    expect(preview.body).toContain('Mon, 7 Dec 2026, 05:00 UTC');
    expect(await t.app.schedules.list()).toEqual([]);

    const created = await editor.post('/admin/schedules/recurring', { list, audience: 'weekly', mode: 'weekly', weekday: '1', time: '07:00', cron: '', zone: 'Europe/Kyiv', action: 'add' });
    expect(created.statusCode).toBe(303);
    const [stored] = await t.app.schedules.list();
    expect(stored).toMatchObject({ kind: 'recurring', cron: '0 7 * * 1', timezone: 'Europe/Kyiv', audience: 'weekly', list });

    const detail = await editor.get(created.headers.location as string);
    expect(detail.body).toContain('next fire Mon, 7 Dec 2026, 07:00 Europe/Kyiv');
    expect(detail.body).toContain('At 07:00, only on Monday');
    const rows = detail.body.split('<h2 id="next-heading">')[1]!.split('</table>')[0]!;
    expect(rows.match(/<tr><td>/g)).toHaveLength(5);
    for (const day of ['Mon, 7 Dec 2026', 'Mon, 14 Dec 2026', 'Mon, 21 Dec 2026', 'Mon, 28 Dec 2026', 'Mon, 4 Jan 2027']) {
      expect(rows).toContain(`${day}, 07:00 Europe/Kyiv`);
      expect(rows).toContain(`${day}, 05:00 UTC`);
    }
  });

  it('refuses a bad cron expression naming it', async () => {
    const refused = await editor.post('/admin/schedules/recurring', { list, audience: 'all', mode: 'cron', cron: '61 * * * *', zone: 'Europe/Kyiv', action: 'add' });
    expect(refused.statusCode).toBe(400);
    expect(refused.body).toContain('invalid cron expression &quot;61 * * * *&quot;');
    expect(refused.body).toContain('value="61 * * * *"');
    expect(await t.app.schedules.list()).toEqual([]);
  });

  it('refuses a duplicate with 409 and adds it when allowed', async () => {
    await t.app.schedules.add({ list, cron: '0 7 * * 1', tz: 'Europe/Kyiv', digest: true });
    const form = { list, audience: 'all', mode: 'weekly', weekday: '1', time: '07:00', cron: '', zone: 'Europe/Kyiv', action: 'add' };
    const refused = await editor.post('/admin/schedules/recurring', form);
    expect(refused.statusCode).toBe(409);
    expect(refused.body).toContain('already does this');
    expect(refused.body).toContain('name="allow_duplicate"');
    const allowed = await editor.post('/admin/schedules/recurring', { ...form, allow_duplicate: 'on' });
    expect(allowed.statusCode).toBe(303);
    expect(await t.app.schedules.list()).toHaveLength(2);
  });

  it('adds an on-publish schedule', async () => {
    const created = await editor.post('/admin/schedules/on-publish', { list });
    expect(created.statusCode).toBe(303);
    const [stored] = await t.app.schedules.list();
    expect(stored).toMatchObject({ kind: 'on-publish', list, audience: 'instant' });
    const again = await editor.post('/admin/schedules/on-publish', { list });
    expect(again.statusCode).toBe(400);
    expect(again.body).toContain('already has an on-publish schedule');
  });

  it('cancels only after confirmation', async () => {
    const { schedule } = await t.app.schedules.add({ list, cron: '0 7 * * *', tz: 'Europe/Kyiv', digest: true });
    const detail = await editor.get(`/admin/schedules/${schedule.id}`);
    expect(detail.body).toContain(`href="/admin/schedules/${schedule.id}/cancel"`);
    const confirm = await editor.get(`/admin/schedules/${schedule.id}/cancel`);
    expect(confirm.statusCode).toBe(200);
    expect(confirm.body).toContain(`Cancel schedule ${schedule.id}?`);
    expect(confirm.body).toContain(`action="/admin/schedules/${schedule.id}/cancel"`);
    expect((await t.app.schedules.list())[0]!.status).toBe('active');

    const cancelled = await editor.post(`/admin/schedules/${schedule.id}/cancel`);
    expect(cancelled.statusCode).toBe(303);
    expect((await t.app.schedules.list())[0]!.status).toBe('cancelled');
    const after = await editor.get(`/admin/schedules/${schedule.id}`);
    expect(after.body).toContain(`Schedule ${schedule.id} cancelled`);
    expect(after.body).toContain('<span class="badge cancelled">cancelled</span>');
    expect(after.body).not.toContain(`href="/admin/schedules/${schedule.id}/cancel"`);
  });

  it('refuses a POST without its CSRF token', async () => {
    const refused = await editor.post('/admin/schedules/on-publish', { list }, { csrf: false });
    expect(refused.statusCode).toBe(403);
    expect(await t.app.schedules.list()).toEqual([]);
  });

  it('answers 404 for a schedule that does not exist', async () => {
    expect((await editor.get('/admin/schedules/999')).statusCode).toBe(404);
  });
});
