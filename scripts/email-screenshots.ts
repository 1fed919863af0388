// Writes docs/screenshots/email-<kind>-<width>.png: the digest, a single story and the confirmation
// notice, rendered from content/ with the real templates and photographed in the system Chromium at
// phone (375 px) and desktop (800 px) width, full page. Images are answered with local placeholder
// pixels (nothing is fetched), recipient values and the clock are fixed: a re-run changes a file only
// when the templates or the content did. Run it with `npm run screenshots:email`.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { loadContent } from '../src/content/load-content.ts';
import { composeEdition, DEFAULT_DIGEST_SIZE } from '../src/edition/compose-edition.ts';
import { publishedStories, type Content } from '../src/model/content.ts';
import { compileEdition, compileEmail, type CompiledEdition } from '../src/render/compile-edition.ts';
import { loadEmailTemplates, type EmailTemplates } from '../src/render/email-templates.ts';
import { slotMarker } from '../src/render/slots.ts';
import { placeholderPng, sampleHtml } from '../tests/fixtures/screens/email-fixtures.ts';
import { launchBrowser } from '../tests/helpers/browser.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const OUT_DIR = path.join(ROOT, 'docs', 'screenshots');
const WIDTHS = [375, 800] as const;


/** The three emails, HTML with the recipient slots filled, by the kind named in the file name. */
async function emails(templates: EmailTemplates, content: Content): Promise<Record<'digest' | 'story' | 'confirmation', string>> {
  const { site } = content;
  const list = site.lists[0]!;
  // A day after the newest story, so every published story is in and the dates never move.
  const newest = Math.max(...content.stories.filter((s) => !s.draft).map((s) => s.date.getTime()));
  const now = new Date(newest + 24 * 3600_000);
  const published = publishedStories(content, now);
  const story = published.find((s) => s.image) ?? published[0];
  if (!story) throw new Error('content/ has no published story to show');
  const filled = sampleHtml;
  return {
    digest: filled(await compileEdition(templates, composeEdition(site, list, 'digest', published.slice(0, DEFAULT_DIGEST_SIZE), now))),
    story: filled(await compileEdition(templates, composeEdition(site, list, 'story', [story], now))),
    confirmation: filled(
      await compileEmail(templates.notice, {
        site,
        subject: `Confirm your subscription to ${site.title}`,
        preheader: 'One click and you are in.',
        lead: `Please confirm that you want to receive ${list.name} at ${slotMarker('email')}.`,
        button: 'Confirm my subscription',
        note: 'The link works for 7 days. If you did not ask for this, ignore this email: you will not be subscribed.',
      }),
    ),
  };
}

/** A full-page screenshot of `html` at `width` px; every request gets a placeholder PNG (NAME-WxH.png that size, else 1200 × 630). */
async function screenshot(browser: Browser, html: string, width: number): Promise<Buffer> {
  const context = await browser.newContext({ viewport: { width, height: 800 }, deviceScaleFactor: 1, colorScheme: 'light' });
  try {
    const page = await context.newPage();
    await page.route('**/*', (route) => {
      const size = /-(\d+)x(\d+)\.png$/.exec(new URL(route.request().url()).pathname);
      return route.fulfill({ status: 200, contentType: 'image/png', body: placeholderPng(Number(size?.[1] ?? 1200), Number(size?.[2] ?? 630)) });
    });
    await page.setContent(html, { waitUntil: 'load' });
    await page.evaluate(async () => {
      await document.fonts.ready;
      await Promise.all([...document.images].map((img) => img.decode().catch(() => undefined)));
    });
    return await page.screenshot({ fullPage: true, animations: 'disabled', caret: 'hide', scale: 'css' });
  } finally {
    await context.close();
  }
}

const content = await loadContent(path.join(ROOT, 'content'));
const rendered = await emails(await loadEmailTemplates(path.join(ROOT, 'templates')), content);
const browser = await launchBrowser();
try {
  await mkdir(OUT_DIR, { recursive: true });
  for (const [kind, html] of Object.entries(rendered)) {
    for (const width of WIDTHS) {
      const file = path.join(OUT_DIR, `email-${kind}-${width}.png`);
      await writeFile(file, await screenshot(browser, html, width));
      console.info(`wrote ${path.relative(process.cwd(), file)}`);
    }
  }
} finally {
  await browser.close();
}
