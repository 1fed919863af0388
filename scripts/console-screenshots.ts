// `npm run screenshots:console`: the editors' console at desktop and phone width, written to
// docs/screenshots/console-NAME-WIDTH.png for the README. The clock and the data are fixed: an
// edition two thirds sent, a weekly digest and a one-off scheduled, a paused send as an alert.

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { createApp, type App } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { buildServer } from '../src/server/server.ts';
import { launchBrowser } from '../tests/helpers/browser.ts';
import { runIfMain } from './screenshots.ts';

const NOW = new Date('2025-07-10T12:00:00Z');
const EDITOR = { email: 'editor@example.com', password: 'screenshots password' };
const WIDTHS = [1280, 375] as const;

/** What the dashboard shows: subscribers, a send under way, a paused one, schedules. Returns the pages to take. */
async function seed(app: App): Promise<{ name: string; path: string }[]> {
  await app.users.add({ ...EDITOR, role: 'admin' });
  await app.users.setTimeZone((await app.users.find(EDITOR.email)).id, 'Europe/Kyiv');
  const subscribers = await app.adapters.subscribers();
  await subscribers.insertMany(
    Array.from({ length: 1200 }, (_, i) => ({ email: `reader${i}@example.com`, emailKey: `reader${i}@example.com`, name: null, status: 'active' as const, source: 'screenshots', consentIp: null, lists: [{ slug: 'dispatch', frequency: 'instant' as const }] })),
    NOW,
  );
  const { edition: running } = await app.editions.create({ list: 'dispatch', digest: true, subject: 'This week: the grid, the corridor, the cable' });
  await app.editions.send(running.id);
  // Two thirds delivered over the last minute: the bar, the rate and the time left have something to show.
  const db = (await app.adapters.store()).db;
  const ids = (await db.selectFrom('deliveries').select('id').where('edition_id', '=', running.id).orderBy('id').limit(800).execute()).map((r) => r.id);
  await db.updateTable('deliveries').set({ status: 'sent', sent_at: new Date(NOW.getTime() - 30_000).toISOString(), updated_at: NOW.toISOString(), attempts: 1 }).where('id', 'in', ids).execute();
  await db.updateTable('editions').set({ enqueued_at: new Date(NOW.getTime() - 60_000).toISOString() }).where('id', '=', running.id).execute();
  const { edition: paused } = await app.editions.create({ list: 'dispatch', story: 'grain-corridor-shipping' });
  await app.editions.send(paused.id);
  await app.editions.pause(paused.id, 'paused by editor@example.com in the console: resume it from the edition\'s page');
  await app.schedules.add({ list: 'weekly', cron: '0 7 * * 1', tz: 'Europe/Kyiv', digest: true });
  const { edition: later } = await app.editions.create({ list: 'dispatch', story: 'eu-energy-grid' });
  await app.schedules.add({ edition: later.id, at: '2025-07-11T08:30[America/New_York]' });
  return [
    { name: 'dashboard', path: '/admin' },
    { name: 'edition', path: `/admin/editions/${later.id}` },
  ];
}

async function main(): Promise<void> {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const outDir = path.join(root, 'docs', 'screenshots');
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'gazette-console-screens-'));
  const base = { url: '' };
  const app = createApp(
    loadConfig({
      GAZETTE_CONTENT_DIR: path.join(root, 'content'),
      GAZETTE_TEMPLATES_DIR: path.join(root, 'templates'),
      GAZETTE_DATA_DIR: dataDir,
      GAZETTE_SECRET: 'screenshots-secret-0123456789abcdef',
      BASE_URL: 'http://localhost:8080',
    }),
    { now: () => NOW },
  );
  const server = await buildServer(app, { logger: false });
  let browser: Browser | undefined;
  try {
    await server.listen({ port: 0, host: '127.0.0.1' });
    base.url = `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`;
    const pages = await seed(app);
    browser = await launchBrowser();
    await mkdir(outDir, { recursive: true });
    for (const width of WIDTHS) {
      const context = await browser.newContext({ viewport: { width, height: 900 }, deviceScaleFactor: 1, reducedMotion: 'reduce', colorScheme: 'light' });
      // Images from other hosts (story pictures) are left out: the console is what is shown.
      await context.route('**/*', (route) => (new URL(route.request().url()).origin === base.url ? route.continue() : route.abort()));
      const page = await context.newPage();
      await page.goto(`${base.url}/admin/login`);
      await page.getByLabel('Email').fill(EDITOR.email);
      await page.getByLabel('Password').fill(EDITOR.password);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.waitForURL(`${base.url}/admin`);
      for (const shot of pages) {
        await page.goto(base.url + shot.path, { waitUntil: 'load' });
        const file = path.join(outDir, `console-${shot.name}${width === 1280 ? '' : `-${width}`}.png`);
        await writeFile(file, await page.screenshot({ fullPage: shot.name === 'dashboard', animations: 'disabled', caret: 'hide', scale: 'css' }));
        console.info(`wrote ${path.relative(process.cwd(), file)}`);
      }
      await context.close();
    }
  } finally {
    await browser?.close();
    await server.close();
    await app.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

runIfMain(import.meta.url, main);
