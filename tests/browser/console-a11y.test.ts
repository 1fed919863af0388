import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { AxeBuilder } from '@axe-core/playwright';
import type { BrowserContext, Page, Response } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_PASSWORD } from '../helpers/console-session.ts';
import { storyFile } from '../helpers/content-dir.ts';
import { servedSite } from '../helpers/served-site.ts';

// Every page of the console in Chromium, signed in once through the form as an admin, over data made
// with the app's use cases: a finished send, one in progress and one paused, drafts (one scheduled),
// recurring, one-off and on-publish schedules (one with a missed fire), a story file with errors,
// subscribers, a CSV import, a second user and an API token. On each page axe-core finds no serious or
// critical WCAG 2.0/2.1 A/AA violation, at 1280 px and at 375 px, and nothing scrolls sideways at 375 px.

const ADMIN = 'admin@gazette.test';
const EDITOR = 'editor@gazette.test';
const READERS = ['ana@readers.test', 'ben@readers.test', 'chloe@readers.test', 'dmytro@readers.test', 'eve@readers.test'];
const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
const PHONE = 375;

const site = servedSite();

let context: BrowserContext;
let page: Page;
/** What beforeAll made, by name: edition ids, schedule ids, a user id, a story slug. */
const made: Record<string, number | string> = {};
/** The sign-in page with its refusal, checked before signing in (the rest of the file is signed in). */
let loginAudit: Audit | undefined;

interface Audit {
  status: number;
  serious: string[];
  overflow: { scrollWidth: number; wide: string[] };
}

beforeAll(async () => {
  const { app, contentDir } = site.t;
  // A story file with errors: the dashboard alerts about it and Stories lists it.
  await writeFile(path.join(contentDir, 'stories', 'broken-story.md'), storyFile({ title: '', date: 'not a date' }));
  const list = (await app.content()).site.lists[0]!.slug;
  made.story = (await app.content()).stories.find((s) => !s.draft)!.slug;

  await app.users.add({ email: ADMIN, password: TEST_PASSWORD, role: 'admin' });
  made.editor = (await app.users.add({ email: EDITOR, password: TEST_PASSWORD, role: 'editor' })).id;
  await app.users.createToken(ADMIN, 'nightly export');
  for (const [i, email] of READERS.entries()) await app.subscribers.add({ email, name: i % 2 ? `Reader ${i + 1}` : undefined, confirmed: true, source: 'cli' });
  await app.subscribers.add({ email: 'pending@readers.test', confirmed: false, source: 'cli' });

  const digest = async (subject: string) => (await app.editions.create({ list, digest: true, subject })).edition.id;
  // Sent: delivered to the outbox by a worker run to the end.
  made.sent = await digest('The week that was');
  await app.editions.send(made.sent);
  await site.t.outbox();
  // In progress: queued, and no worker runs in this file.
  made.sending = await digest('Going out now');
  await app.editions.send(made.sending);
  // Paused by an operator: an alert on the dashboard.
  made.paused = await digest('Held back for a correction');
  await app.editions.send(made.paused);
  await app.editions.pause(made.paused, 'paused by admin@gazette.test in the console: a correction is on its way');
  made.draft = await digest('A draft to look at');
  made.scheduledDraft = await digest('A draft due on Monday');

  const soon = new Date(Date.now() + 3 * 86_400_000).toISOString().slice(0, 10);
  made.oneOff = (await app.schedules.add({ edition: made.scheduledDraft, at: `${soon}T07:00[Europe/Kyiv]` })).schedule.id;
  made.recurring = (await app.schedules.add({ list, cron: '0 7 * * 1', tz: 'Europe/Kyiv', digest: true })).schedule.id;
  made.onPublish = (await app.schedules.add({ list, onPublish: true })).schedule.id;
  const records = await app.adapters.schedules();
  await records.recordMissed(made.recurring, [{ at: new Date(Date.now() - 86_400_000), detail: 'the scheduler was down past the grace period' }], new Date());

  context = await site.browser().newContext({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1, timezoneId: 'Europe/Kyiv' });
  page = await context.newPage();

  // The sign-in page showing its refusal, then the real sign-in (once, for the whole file).
  await page.goto(`${site.base}/admin/login`);
  await page.getByLabel('Email').fill(ADMIN);
  await page.getByLabel('Password').fill('wrong password, surely');
  const refused = await submit(page, page.getByRole('button', { name: 'Sign in' }));
  await page.getByRole('alert').waitFor();
  loginAudit = await audit(page, refused);
  await page.getByLabel('Password').fill(TEST_PASSWORD);
  await Promise.all([page.waitForURL(`${site.base}/admin`), page.getByRole('button', { name: 'Sign in' }).click()]);
});

afterAll(async () => {
  await context?.close();
});

/** Clicks what submits a form; resolves with the response of the page it lands on (after any redirect). */
async function submit(p: Page, button: ReturnType<Page['locator']>): Promise<Response> {
  const [response] = await Promise.all([
    p.waitForResponse((r) => r.request().isNavigationRequest() && r.request().frame() === p.mainFrame() && !(r.status() >= 300 && r.status() < 400)),
    button.click(),
  ]);
  await p.waitForLoadState('load');
  return response;
}

async function open(p: Page, url: string): Promise<Response> {
  const response = await p.goto(`${site.base}${url}`);
  if (!response) throw new Error(`no response for ${url}`);
  return response;
}

/** axe at 1280 px and at 375 px, and the sideways scroll at 375 px; the page is left at 1280 px. */
async function audit(p: Page, response: Response): Promise<Audit> {
  const serious: string[] = [];
  let overflow: Audit['overflow'] = { scrollWidth: Number.NaN, wide: [] };
  for (const width of [1280, PHONE]) {
    await p.setViewportSize({ width, height: 900 });
    const { violations } = await new AxeBuilder({ page: p }).withTags(AXE_TAGS).analyze();
    for (const v of violations) {
      if (v.impact !== 'serious' && v.impact !== 'critical') continue;
      const nodes = v.nodes.slice(0, 5).map((n) => `${n.target.join(' ')}${n.failureSummary ? ` [${n.failureSummary.replace(/\s+/g, ' ').slice(0, 160)}]` : ''}`);
      serious.push(`${width}px ${v.id} (${v.impact}): ${v.help} — ${nodes.join('; ')}`);
    }
    if (width === PHONE) {
      overflow = await p.evaluate(() => ({
        scrollWidth: document.documentElement.scrollWidth,
        // The elements sticking out, to say what to fix.
        wide: [...document.querySelectorAll('body *')]
          .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 0.5)
          .slice(0, 6)
          .map((el) => `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''}${el.className && typeof el.className === 'string' ? `.${el.className.trim().split(/\s+/).join('.')}` : ''}`),
      }));
    }
  }
  await p.setViewportSize({ width: 1280, height: 900 });
  return { status: response.status(), serious, overflow };
}

function expectClean(name: string, result: Audit, status: number): void {
  expect(result.status, `${name}: HTTP status`).toBe(status);
  expect.soft(result.serious, `${name}: serious or critical axe violations`).toEqual([]);
  expect.soft(result.overflow.scrollWidth, `${name}: scrolls sideways at ${PHONE} px (${result.overflow.wide.join(', ')})`).toBeLessThanOrEqual(PHONE + 1);
}

interface Case {
  name: string;
  /** Opens the page (and fills a form when the case is a page with an error); resolves with the page's response. */
  go: (p: Page) => Promise<Response>;
  status?: number;
  /** Waits for what the page must show before it is checked. */
  ready?: (p: Page) => Promise<unknown>;
}

const id = (key: string) => String(made[key]);
const CSV = 'email,name,lists\nnew.one@readers.test,New One,dispatch\nnot-an-address,Broken Row,dispatch\nnew.two@readers.test,,weekly\n';

const CASES: Case[] = [
  {
    name: 'dashboard (a send in progress, one finished, one paused, alerts, upcoming schedules)',
    go: (p) => open(p, '/admin'),
    ready: async (p) => {
      await p.locator(`[data-send="${id('sending')}"]`).waitFor();
      await p.locator(`[data-send="${id('sent')}"]`).waitFor();
      await p.locator('ul.alerts li').first().waitFor();
      await p.locator('section[aria-labelledby="fires-heading"] tbody tr').first().waitFor();
    },
  },
  { name: 'stories (with a file left out)', go: (p) => open(p, '/admin/stories'), ready: (p) => p.getByRole('heading', { name: 'Files left out' }).waitFor() },
  { name: 'a story', go: (p) => open(p, `/admin/stories/${id('story')}`) },
  { name: 'editions', go: (p) => open(p, '/admin/editions') },
  { name: 'new edition', go: (p) => open(p, '/admin/editions/new') },
  {
    name: 'new edition, refused',
    go: async (p) => {
      await open(p, '/admin/editions/new');
      await p.getByRole('radio', { name: 'One story, in full' }).check();
      return submit(p, p.getByRole('button', { name: 'Make the draft' }));
    },
    status: 400,
    ready: (p) => p.getByRole('alert').waitFor(),
  },
  { name: 'edition, draft', go: (p) => open(p, `/admin/editions/${id('draft')}`) },
  { name: 'edition, draft with a schedule', go: (p) => open(p, `/admin/editions/${id('scheduledDraft')}`) },
  { name: 'edition, sending', go: (p) => open(p, `/admin/editions/${id('sending')}`) },
  { name: 'edition, paused', go: (p) => open(p, `/admin/editions/${id('paused')}`) },
  { name: 'edition, sent', go: (p) => open(p, `/admin/editions/${id('sent')}`) },
  {
    name: 'edition, test refused',
    go: async (p) => {
      await open(p, `/admin/editions/${id('draft')}`);
      await p.getByLabel(/^Addresses/).fill('not an address');
      return submit(p, p.getByRole('button', { name: 'Send the test' }));
    },
    status: 400,
  },
  { name: 'confirm: send', go: (p) => open(p, `/admin/editions/${id('draft')}/send`) },
  { name: 'confirm: cancel an edition', go: (p) => open(p, `/admin/editions/${id('draft')}/cancel`) },
  { name: 'confirm: pause', go: (p) => open(p, `/admin/editions/${id('sending')}/pause`) },
  { name: 'confirm: resume', go: (p) => open(p, `/admin/editions/${id('paused')}/resume`) },
  {
    name: 'confirm: schedule',
    go: async (p) => {
      await open(p, `/admin/editions/${id('draft')}`);
      await p.getByLabel('Day').fill(new Date(Date.now() + 2 * 86_400_000).toISOString().slice(0, 10));
      await p.getByLabel('Time', { exact: true }).fill('07:30:00');
      await p.getByLabel('In the time zone').selectOption('Europe/Kyiv');
      return submit(p, p.getByRole('button', { name: 'Schedule…' }));
    },
    ready: (p) => p.getByRole('heading', { level: 1, name: /^Schedule edition/ }).waitFor(),
  },
  { name: 'schedules', go: (p) => open(p, '/admin/schedules') },
  { name: 'new schedule', go: (p) => open(p, '/admin/schedules/new') },
  {
    name: 'new schedule, refused',
    go: async (p) => {
      await open(p, '/admin/schedules/new');
      await p.locator('#recurring-cron').fill('not a cron');
      await p.locator('#recurring').getByRole('radio', { name: 'A cron expression of my own' }).check();
      return submit(p, p.getByRole('button', { name: 'Add the digest schedule' }));
    },
    status: 400,
  },
  {
    name: 'new schedule, previewing the next fires',
    go: async (p) => {
      await open(p, '/admin/schedules/new');
      await p.locator('#recurring').getByRole('radio', { name: /^Daily/ }).check();
      await p.locator('#recurring-time').fill('07:00');
      return submit(p, p.getByRole('button', { name: 'Preview the next fires' }));
    },
  },
  { name: 'schedule, recurring with a missed fire', go: (p) => open(p, `/admin/schedules/${id('recurring')}`) },
  { name: 'schedule, one-off', go: (p) => open(p, `/admin/schedules/${id('oneOff')}`) },
  { name: 'schedule, on-publish', go: (p) => open(p, `/admin/schedules/${id('onPublish')}`) },
  { name: 'confirm: cancel a schedule', go: (p) => open(p, `/admin/schedules/${id('recurring')}/cancel`) },
  { name: 'subscribers', go: (p) => open(p, '/admin/subscribers') },
  { name: 'subscribers, filtered', go: (p) => open(p, '/admin/subscribers?search=readers&status=active') },
  { name: 'new subscriber', go: (p) => open(p, '/admin/subscribers/new') },
  {
    name: 'new subscriber, refused',
    go: async (p) => {
      await open(p, '/admin/subscribers/new');
      await p.getByLabel('Email').fill(READERS[0]!);
      return submit(p, p.getByRole('button', { name: 'Add the subscriber' }));
    },
    status: 400,
  },
  { name: 'a subscriber', go: (p) => open(p, `/admin/subscribers/${encodeURIComponent(READERS[1]!)}`) },
  { name: 'confirm: erase a subscriber', go: (p) => open(p, `/admin/subscribers/${encodeURIComponent(READERS[1]!)}/erase`) },
  { name: 'import form', go: (p) => open(p, '/admin/subscribers/import') },
  {
    name: 'import job, done with a refused row',
    go: async (p) => {
      await open(p, '/admin/subscribers/import');
      await p.getByLabel('CSV file').setInputFiles({ name: 'readers.csv', mimeType: 'text/csv', buffer: Buffer.from(CSV) });
      const response = await submit(p, p.getByRole('button', { name: 'Import' }));
      return response;
    },
    // The running page reloads itself each second until the import ends.
    ready: (p) => p.getByText(/^Done: /).waitFor({ timeout: 15_000 }),
  },
  { name: 'users (as admin)', go: (p) => open(p, '/admin/users') },
  {
    name: 'users, adding one refused',
    go: async (p) => {
      await open(p, '/admin/users');
      await p.locator('#new-email').fill(EDITOR);
      await p.locator('#new-password').fill(TEST_PASSWORD);
      return submit(p, p.getByRole('button', { name: 'Add the user' }));
    },
    status: 409,
  },
  { name: 'confirm: remove a user', go: (p) => open(p, `/admin/users/${id('editor')}/remove`) },
  { name: 'account', go: (p) => open(p, '/admin/account') },
  {
    name: 'account, with a new API token shown once',
    go: async (p) => {
      await open(p, '/admin/account');
      await p.getByLabel('Name of a new token').fill('a script');
      return submit(p, p.getByRole('button', { name: 'Make a token' }));
    },
    status: 201,
  },
  { name: 'a page that is not there', go: (p) => open(p, '/admin/nothing-here'), status: 404 },
];

describe('the console in Chromium: axe-core and a 375 px phone', () => {
  it('sign-in, showing its refusal', () => {
    expect(loginAudit, 'the sign-in page was checked before signing in').toBeDefined();
    expectClean('sign-in', loginAudit!, 401);
  });

  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (name, c) => {
    const response = await c.go(page);
    if (c.ready) await c.ready(page);
    expectClean(name, await audit(page, response), c.status ?? 200);
  }, 30_000);
});
