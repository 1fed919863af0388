import type { BrowserContext, Frame, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consoleSite } from '../helpers/console-site.ts';
import { TEST_PASSWORD } from '../helpers/console-session.ts';
import type { RecordedMessage } from '../helpers/smtp-recorder.ts';

// One editor's whole journey through the console in Chromium, against a real server on 127.0.0.1,
// a real SMTP server as the transport, and a worker and a scheduler running in this process:
// sign in (after a refused password), make a digest of two ticked stories, look at its sandboxed
// previews, send a test to two addresses, schedule it a few seconds ahead in Europe/Kyiv, watch the
// dashboard's progress bar reach 100% over Server-Sent Events, and find the outcome on the edition's page.

const EDITOR = 'editor@gazette.test';
const SUBJECT = 'Cables, grids and the week in Europe';
const STORIES = ['Baltic undersea cable repaired after six-week outage', "Europe's grid links hold through the cold snap"];
const READERS = Array.from({ length: 5 }, (_, i) => `reader${i + 1}@readers.test`);
const TESTS = ['a@test.example', 'b@test.example'];
const ZONE = 'Europe/Kyiv';
/** How far ahead the send is scheduled: the one real wait of the journey. */
const AHEAD_MS = 8_000;

// One message a second: the five deliveries take seconds, so the dashboard sees the bar move.
const site = consoleSite({ worker: { rate: 1, concurrency: 1 } });

let context: BrowserContext;
let page: Page;

beforeAll(async () => {
  for (const email of READERS) await site.t.app.subscribers.add({ email, confirmed: true, source: 'cli' });
  await site.t.app.users.add({ email: EDITOR, password: TEST_PASSWORD, role: 'editor' });
  // The browser's own zone is neither UTC nor Kyiv: the sign-in form stores it as the editor's.
  context = await site.browser().newContext({ viewport: { width: 1280, height: 900 }, timezoneId: 'America/New_York' });
  page = await context.newPage();
});

afterAll(async () => {
  await context?.close();
});

/** The notice at the top of the page (after a redirect). */
const flash = (p: Page) => p.locator('main > p.flash').first();

/** The date (YYYY-MM-DD), time (HH:MM:SS) and HH:MM an instant reads in a zone. */
function wallTime(instant: Date, zone: string): { date: string; time: string; hhmm: string } {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' })
      .formatToParts(instant)
      .map((p) => [p.type, p.value]),
  );
  return { date: `${parts.year}-${parts.month}-${parts.day}`, time: `${parts.hour}:${parts.minute}:${parts.second}`, hhmm: `${parts.hour}:${parts.minute}` };
}

/** The edition's own messages the recorder got (not tests): they carry X-Gazette-Delivery. */
const deliveriesOf = (messages: RecordedMessage[]) => messages.filter((m) => /^X-Gazette-Delivery:/im.test(m.raw) && m.parsed?.subject === SUBJECT);
const testsOf = (messages: RecordedMessage[]) => messages.filter((m) => (m.parsed?.subject ?? '').startsWith('[TEST]'));

describe('an editor in the console', () => {
  it('signs in, makes a digest, previews it, tests it, schedules it in Europe/Kyiv and watches it go out', async () => {
    const { base, recorder } = site;
    const app = site.t.app;

    // a. A stranger is sent to sign in; a wrong password is refused on the same page; the right one opens the dashboard.
    await page.goto(`${base}/admin`);
    expect(page.url(), 'an unsigned visit to /admin').toBe(`${base}/admin/login`);
    await page.getByLabel('Email').fill(EDITOR);
    await page.getByLabel('Password').fill('not the password at all');
    const [refused] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.getByRole('button', { name: 'Sign in' }).click()]);
    expect(refused.status()).toBe(401);
    await expect(page.getByRole('alert').textContent()).resolves.toBe('That email and password do not match an account.');
    expect(page.url(), 'after a wrong password').toBe(`${base}/admin/login`);
    await expect(page.getByLabel('Email').inputValue(), 'the address typed is kept').resolves.toBe(EDITOR);
    await page.getByLabel('Password').fill(TEST_PASSWORD);
    await Promise.all([page.waitForURL(`${base}/admin`), page.getByRole('button', { name: 'Sign in' }).click()]);
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Dashboard');
    await expect(page.locator('.topbar .who').textContent()).resolves.toBe(`${EDITOR} (editor)`);
    expect((await app.users.find(EDITOR)).timeZone, 'the browser zone the sign-in form sent').toBe('America/New_York');

    // b. Editions → New edition: a digest of two ticked stories, with a subject of our own.
    await Promise.all([page.waitForURL(`${base}/admin/editions`), page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Editions' }).click()]);
    await Promise.all([page.waitForURL(`${base}/admin/editions/new`), page.getByRole('link', { name: 'New edition' }).click()]);
    await page.getByRole('radio', { name: 'A digest of several stories' }).check();
    await page.getByRole('radio', { name: 'The stories I tick below' }).check();
    for (const title of STORIES) await page.getByRole('checkbox', { name: title }).check();
    await page.getByLabel(/^Subject/).fill(SUBJECT);
    await Promise.all([page.waitForURL(/\/admin\/editions\/\d+$/), page.getByRole('button', { name: 'Make the draft' }).click()]);
    const id = Number(/\/admin\/editions\/(\d+)$/.exec(page.url())![1]);
    await expect(flash(page).textContent()).resolves.toMatch(new RegExp(`^Edition ${id} is ready as a draft: preview it, send a test, then send or schedule it\\.`));
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe(SUBJECT);
    const stored = await app.editions.find(id);
    expect(stored).toMatchObject({ status: 'draft', subject: SUBJECT, kind: 'digest', listSlug: 'dispatch' });

    // c. The previews: two inert iframes (sandbox present and empty) whose documents are the email; and the plain text.
    const frames = page.locator('iframe.preview-frame');
    expect(await frames.count(), 'preview iframes').toBe(2);
    for (const [i, title] of ['Email preview, desktop width', 'Email preview, mobile width'].entries()) {
      const frame = frames.nth(i);
      expect(await frame.getAttribute('title')).toBe(title);
      expect(await frame.getAttribute('sandbox'), `${title}: sandbox attribute`).toBe('');
      expect(await frame.getAttribute('src')).toBe(`/admin/editions/${id}/frame`);
    }
    const previewDocs = await previewFrames(page, id);
    expect(previewDocs, 'frames loaded from /frame').toHaveLength(2);
    for (const doc of previewDocs) {
      const text = (await doc.locator('body').textContent({ timeout: 10_000 })) ?? '';
      const head = (await doc.locator('title').count()) > 0 ? await doc.title() : '';
      expect(`${head}\n${text}`, 'a preview frame names the subject').toContain(SUBJECT);
      for (const story of STORIES) expect(text, `a preview frame shows “${story}”`).toContain(story);
    }
    // The frame's document is inert: scripts disabled, opaque origin.
    const frameHeaders = (await page.request.get(`${base}/admin/editions/${id}/frame`)).headers();
    expect(frameHeaders['content-security-policy']).toMatch(/(^|;\s*)sandbox(;|$)/);
    const plain = (await page.locator('pre.preview-text').textContent()) ?? '';
    for (const story of STORIES) expect(plain, 'the plain-text preview').toContain(story);

    // d. A test to two addresses: the flash names them; both arrive, marked [TEST].
    await page.getByLabel(/^Addresses/).fill(TESTS.join(', '));
    await Promise.all([page.waitForURL(`${base}/admin/editions/${id}`), page.getByRole('button', { name: 'Send the test' }).click()]);
    await expect(flash(page).textContent()).resolves.toMatch(new RegExp(`^Test sent to ${TESTS.join(', ').replaceAll('.', '\\.')} \\(through smtp\\)\\.$`));
    await expect.poll(() => testsOf(recorder.messages).length, { timeout: 10_000 }).toBe(2);
    const tests = testsOf(recorder.messages);
    expect(tests.map((m) => m.rcpt).flat().sort()).toEqual(TESTS);
    for (const m of tests) expect(m.parsed?.subject).toBe(`[TEST] ${SUBJECT}`);
    expect(deliveriesOf(recorder.messages), 'no real delivery yet').toHaveLength(0);

    // e. Schedule it a few seconds ahead, as the wall clock reads in Kyiv: the confirmation says for
    // how many and when (Kyiv and UTC); confirming schedules it.
    const at = new Date(Math.ceil((Date.now() + AHEAD_MS) / 1000) * 1000);
    const kyiv = wallTime(at, ZONE);
    await page.getByLabel('Day').fill(kyiv.date);
    await page.getByLabel('Time', { exact: true }).fill(kyiv.time);
    await page.getByLabel('In the time zone').selectOption(ZONE);
    await Promise.all([page.waitForURL((url) => url.pathname === `/admin/editions/${id}/schedule`), page.getByRole('button', { name: 'Schedule…' }).click()]);
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe(`Schedule edition ${id}?`);
    const confirmation = (await page.locator('main section.confirm').textContent()) ?? '';
    expect(confirmation).toContain(`${kyiv.hhmm} ${ZONE}`);
    expect(confirmation).toContain(`which is ${at.toISOString().slice(0, 16).replace('T', ' ')} UTC`);
    expect(confirmation).toContain('That is 5 subscribers of the list dispatch');
    const button = page.getByRole('button', { name: 'Schedule for 5 subscribers' });
    expect(await button.count(), 'the confirm button names the count').toBe(1);
    await Promise.all([page.waitForURL(`${base}/admin/editions/${id}`), button.click()]);
    await expect(flash(page).textContent()).resolves.toMatch(new RegExp(`^Scheduled for .*${kyiv.hhmm} Europe/Kyiv \\(schedule \\d+\\)\\.$`));
    const [schedule] = (await app.schedules.list()).filter((s) => s.kind === 'one-off' && s.edition_id === id);
    expect(schedule, 'the one-off schedule').toBeDefined();
    expect(schedule!.next_fire?.at && Date.parse(schedule!.next_fire.at)).toBe(at.getTime());

    // f. The dashboard lists the schedule until it fires. Once the send has begun, its bar on the
    // dashboard climbs to 100% by the event stream alone: the document is never reloaded.
    await Promise.all([page.waitForURL(`${base}/admin`), page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Dashboard' }).click()]);
    await expect(page.locator('section[aria-labelledby="fires-heading"]').textContent()).resolves.toContain(`(edition ${id})`);
    // The scheduler's real timer: the few seconds ahead must pass.
    await expect
      .poll(async () => (await app.editions.find(id)).status, { timeout: AHEAD_MS + 15_000, interval: 100, message: `the schedule fired (scheduler log: ${site.schedulerLog.join(' | ')})` })
      .not.toBe('draft');
    // The open dashboard draws itself again when its stream brings a send it does not show yet.
    const box = page.locator(`[data-send="${id}"]`);
    await box.waitFor({ timeout: 5_000 });
    expect(await box.count(), 'the send on the dashboard').toBe(1);
    const bar = box.locator('progress');
    const first = await bar.evaluate((b: HTMLProgressElement) => ({ value: b.value, max: b.max }));
    expect(first.max, 'the bar measures the 5 deliveries').toBe(5);
    expect(first.value, 'the bar has not reached the end when the page loads (one message a second)').toBeLessThan(5);
    await page.evaluate(() => ((window as unknown as { sameDocument: boolean }).sameDocument = true));
    await page.waitForFunction(
      (sendId) => {
        const box = document.querySelector(`[data-send="${sendId}"]`);
        const bar = box?.querySelector('progress');
        return bar && bar.max === 5 && bar.value === bar.max && box!.querySelector('[data-field="percent"]')?.textContent === '100%';
      },
      id,
      { timeout: 30_000 },
    );
    expect(await page.evaluate(() => (window as unknown as { sameDocument?: boolean }).sameDocument), 'updated without a reload').toBe(true);
    await expect(box.locator('[data-field="sent"]').textContent()).resolves.toBe('5');
    await expect(box.locator('[data-field="status"]').textContent()).resolves.toBe('sent');
    site.workerHealthy();

    // g. The edition's page: sent to 5; the recorder has the 5 deliveries, one per reader, besides the 2 tests.
    await page.goto(`${base}/admin/editions/${id}`);
    const outcome = page.locator('section[aria-labelledby="outcome-heading"]');
    await expect(outcome.locator(`[data-send="${id}"] [data-field="sent"]`).textContent()).resolves.toBe('5');
    await expect(outcome.locator(`[data-send="${id}"] [data-field="status"]`).textContent()).resolves.toBe('sent');
    await expect(outcome.locator(`[data-send="${id}"] [data-field="failed"]`).textContent()).resolves.toBe('0');
    await expect(page.locator('main > p > .badge').first().textContent()).resolves.toBe('sent');
    const delivered = deliveriesOf(recorder.messages);
    expect(delivered.map((m) => m.rcpt).flat().sort()).toEqual([...READERS].sort());
    expect(testsOf(recorder.messages)).toHaveLength(2);
    expect(recorder.messages, 'nothing else was sent').toHaveLength(READERS.length + TESTS.length);
    expect(site.schedulerLog.filter((l) => l.startsWith('error')), 'scheduler errors').toEqual([]);
  }, 60_000);

  it('an open dashboard shows a send that starts after it was loaded', async () => {
    const app = site.t.app;
    const { edition } = await app.editions.create({ list: 'dispatch', digest: true, subject: 'Started while the dashboard was open' });
    await page.goto(`${site.base}/admin`);
    expect(await page.locator(`[data-send="${edition.id}"]`).count(), 'not on the page before it starts').toBe(0);
    await app.editions.send(edition.id);
    // The stream sends a reading every second: five readings are ample.
    await page.locator(`[data-send="${edition.id}"]`).waitFor({ timeout: 5_000 });
  }, 20_000);
});

/** The documents of the edition's preview iframes, once both have loaded. */
async function previewFrames(page: Page, id: number): Promise<Frame[]> {
  const path = `/admin/editions/${id}/frame`;
  await page.waitForFunction((count) => document.querySelectorAll('iframe.preview-frame').length === count, 2);
  for (const handle of await page.locator('iframe.preview-frame').elementHandles()) {
    const frame = await handle.contentFrame();
    await frame?.waitForLoadState('load');
  }
  return page.frames().filter((f) => f !== page.mainFrame() && new URL(f.url()).pathname === path);
}
