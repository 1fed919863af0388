// `npm run screenshots`: every public page of the sample content/ at phone and desktop width,
// written to docs/screenshots/NAME-WIDTH.png for the README. The clock, the subscriber and the
// editions are fixed and every image is a local placeholder, so a re-run changes pixels only when
// the pages change. The browser tests use the same tour (tests/browser/site-pages.test.ts).

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { PNG } from 'pngjs';
import { createApp, type App } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { buildServer } from '../src/server/server.ts';
import { launchBrowser } from '../tests/helpers/browser.ts';

/** The instant the tour is taken at: after every sample story, so all of them are published. */
export const TOUR_NOW = new Date('2025-07-10T12:00:00Z');
/** The widths the README shows: a phone and a desktop. */
export const TOUR_WIDTHS = [375, 1280] as const;

/** One page of the tour: its file name and its path on the server. */
export interface TourPage {
  name: 'home' | 'story' | 'tag' | 'archive' | 'edition' | 'preferences' | 'unsubscribe' | '404';
  path: string;
}

/**
 * Gives the App what the pages show besides content/: one subscriber (for the preferences and
 * unsubscribe pages, reached by their own signed links) and two sent editions (for the archive).
 * Returns every page to visit.
 */
export async function seedTour(app: App): Promise<TourPage[]> {
  const subscribers = await app.adapters.subscribers();
  const email = 'reader@example.com';
  await subscribers.insertMany([{ email, emailKey: email, name: 'Sample Reader', status: 'active', source: 'screenshots', consentIp: null, lists: [{ slug: 'dispatch', frequency: 'instant' }] }], TOUR_NOW);
  const id = (await subscribers.findByEmail(email))!.id;
  const tokens = await app.adapters.tokens();
  const editions = await app.adapters.editions();
  // The weekly briefing first, then a single story to the Dispatch: the archive lists the newer on top.
  let digest = 0;
  for (const [request, sentAt] of [
    [{ list: 'weekly', digest: true }, '2025-07-07T07:00:00Z'],
    [{ list: 'dispatch', story: 'ceasefire-monitors-explainer' }, '2025-07-08T09:30:00Z'],
  ] as const) {
    const { edition } = await app.editions.create(request);
    await editions.setStatus(edition.id, 'sending', new Date(sentAt));
    await editions.setStatus(edition.id, 'sent', new Date(new Date(sentAt).getTime() + 120_000));
    if ('digest' in request) digest = edition.id;
  }
  return [
    { name: 'home', path: '/' },
    { name: 'story', path: '/stories/eu-energy-grid' },
    { name: 'tag', path: '/tags/europe' },
    { name: 'archive', path: '/editions' },
    { name: 'edition', path: `/editions/${digest}` },
    { name: 'preferences', path: `/preferences?token=${tokens.sign(id, 'preferences')}` },
    { name: 'unsubscribe', path: `/unsubscribe?token=${tokens.sign(id, 'unsubscribe')}` },
    { name: '404', path: '/no-such-page' },
  ];
}

let placeholder: Buffer | undefined;

/** A 600 × 400 striped PNG standing in for every image from another host. */
export function placeholderImage(): Buffer {
  if (placeholder) return placeholder;
  const [width, height] = [600, 400];
  const png = new PNG({ width, height, colorType: 2 });
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const band = Math.abs(((x + y) % 120) - 60) < 8;
      const i = (y * width + x) * 4;
      png.data[i] = band ? 214 : 72 + Math.round((90 * y) / height);
      png.data[i + 1] = band ? 190 : 92 + Math.round((70 * x) / width);
      png.data[i + 2] = band ? 150 : 128;
      png.data[i + 3] = 255;
    }
  }
  return (placeholder = PNG.sync.write(png, { colorType: 2 }));
}

/**
 * Opens `url` in a fresh context of `width` px (light mode unless asked), every request to another
 * host answered with the placeholder, and calls `use` once every image is in.
 */
export async function withPage<T>(browser: Browser, url: string, width: number, use: (page: Page) => Promise<T>, options: { colorScheme?: 'light' | 'dark' } = {}): Promise<T> {
  const context = await browser.newContext({ viewport: { width, height: 800 }, deviceScaleFactor: 1, reducedMotion: 'reduce', colorScheme: options.colorScheme ?? 'light' });
  try {
    const origin = new URL(url).origin;
    await context.route('**/*', (route) =>
      new URL(route.request().url()).origin === origin ? route.continue() : route.fulfill({ status: 200, contentType: 'image/png', body: placeholderImage() }),
    );
    const page = await context.newPage();
    await page.goto(url, { waitUntil: 'load' });
    // Lazy images below the fold would otherwise be blank in one shot and drawn in the next.
    await page.evaluate(async () => {
      for (const img of document.images) img.loading = 'eager';
      await document.fonts.ready;
      await Promise.all([...document.images].map((img) => img.decode().catch(() => undefined)));
    });
    return await use(page);
  } finally {
    await context.close();
  }
}

/** A full-page screenshot of `url` at `width` px. */
export function screenshot(browser: Browser, url: string, width: number): Promise<Buffer> {
  return withPage(browser, url, width, (page) => page.screenshot({ fullPage: true, animations: 'disabled', caret: 'hide', scale: 'css' }));
}

async function main(): Promise<void> {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const outDir = path.join(root, 'docs', 'screenshots');
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'gazette-screens-'));
  const config = loadConfig({
    GAZETTE_CONTENT_DIR: path.join(root, 'content'),
    GAZETTE_TEMPLATES_DIR: path.join(root, 'templates'),
    GAZETTE_DATA_DIR: dataDir,
    GAZETTE_SECRET: 'screenshots-secret-0123456789abcdef',
    BASE_URL: 'http://localhost:8080',
  });
  const app = createApp(config, { now: () => TOUR_NOW });
  const server = await buildServer(app, { logger: false });
  let browser: Browser | undefined;
  try {
    await server.listen({ port: 0, host: '127.0.0.1' });
    const base = `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`;
    const pages = await seedTour(app);
    browser = await launchBrowser();
    await mkdir(outDir, { recursive: true });
    for (const page of pages) {
      for (const width of TOUR_WIDTHS) {
        const file = path.join(outDir, `${page.name}-${width}.png`);
        await writeFile(file, await screenshot(browser, base + page.path, width));
        console.info(`wrote ${path.relative(process.cwd(), file)}`);
      }
    }
  } finally {
    await browser?.close();
    await server.close();
    await app.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** Runs `main` when the file at `moduleUrl` is the script node was started with (not when it is imported). */
export function runIfMain(moduleUrl: string, main: () => Promise<void>): void {
  if (!process.argv[1] || moduleUrl !== pathToFileURL(path.resolve(process.argv[1])).href) return;
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}

runIfMain(import.meta.url, main);
