import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadContent } from '../../src/content/load-content.ts';
import { composeEdition } from '../../src/edition/compose-edition.ts';
import { compileEdition, compileEmail } from '../../src/render/compile-edition.ts';
import { loadEmailTemplates } from '../../src/render/email-templates.ts';
import { slotMarker } from '../../src/render/slots.ts';
import { placeholderPng, sampleHtml, storyFiles } from '../fixtures/screens/email-fixtures.ts';
import { fileBrowser } from '../helpers/browser.ts';
import { expectMatchesGolden } from '../helpers/golden-screens.ts';
import { tempContentDir, TEMPLATES_DIR } from '../helpers/content-dir.ts';

// Golden screenshots of the emails: the 10-story digest of email-layout.test.ts, the golden story
// as a single-story edition, and the confirmation notice, each at phone and desktop width, full
// page, compared pixel by pixel with PNGs committed under tests/fixtures/screens/. Content, dates,
// recipient values and image pixels are all fixed, so a difference is a change in the templates
// (or in Chromium). Goldens change only through `npm run test:screens:update`.

const NOW = new Date('2025-07-20T12:00:00Z');
const WIDTHS = [375, 800] as const;


type EmailName = 'digest' | 'story' | 'confirm';

/** Each email's HTML with the recipient slots filled. */
const emails = {} as Record<EmailName, string>;
const contentDirs: string[] = [];
const chromium = fileBrowser();

const filled = sampleHtml;

beforeAll(async () => {
  await chromium.launch();
  const templates = await loadEmailTemplates(TEMPLATES_DIR);
  const digestDir = await tempContentDir(storyFiles());
  const goldenDir = await tempContentDir({}, { withGolden: true });
  contentDirs.push(digestDir, goldenDir);

  const digest = await loadContent(digestDir);
  expect(digest.stories).toHaveLength(10);
  const list = digest.site.lists[0]!;
  emails.digest = filled(await compileEdition(templates, composeEdition(digest.site, list, 'digest', digest.stories, NOW)));

  const golden = await loadContent(goldenDir);
  emails.story = filled(await compileEdition(templates, composeEdition(golden.site, golden.site.lists[0]!, 'story', golden.stories, NOW)));

  // The double opt-in request, with the context SubscriptionService.noticeTemplate gives it.
  const site = golden.site;
  emails.confirm = filled(
    await compileEmail(templates.notice, {
      site,
      subject: `Confirm your subscription to ${site.title}`,
      preheader: 'One click and you are in.',
      lead: `Please confirm that you want to receive ${site.lists[0]!.name} at ${slotMarker('email')}.`,
      button: 'Confirm my subscription',
      note: 'The link works for 7 days. If you did not ask for this, ignore this email: you will not be subscribed.',
    }),
  );
});

afterAll(async () => {
  await chromium.close();
  for (const dir of contentDirs) await rm(dir, { recursive: true, force: true });
});

const pngCache = new Map<string, Buffer>();

/** The placeholder for an image URL: NAME-WxH.png gets W × H pixels, anything else 800 × 400. */
function placeholderFor(url: string): Buffer {
  const size = /-(\d+)x(\d+)\.png$/.exec(new URL(url).pathname);
  const key = size ? `${size[1]}x${size[2]}` : '800x400';
  let body = pngCache.get(key);
  if (!body) pngCache.set(key, (body = placeholderPng(Number(size?.[1] ?? 800), Number(size?.[2] ?? 400))));
  return body;
}

/** A full-page screenshot of `html` at `width` px, once every image and font is in. */
async function screenshot(html: string, width: number): Promise<Buffer> {
  const context = await chromium.get().newContext({ viewport: { width, height: 800 }, deviceScaleFactor: 1, reducedMotion: 'reduce', colorScheme: 'light' });
  try {
    const page = await context.newPage();
    // Every request leaves for some other host (the page itself is set, not loaded): each one gets
    // a local placeholder PNG, so the render never waits on the network or varies with it.
    await page.route('**/*', (route) => route.fulfill({ status: 200, contentType: 'image/png', body: placeholderFor(route.request().url()) }));
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


describe.each(['digest', 'story', 'confirm'] as const)('the %s email', (name) => {
  it.each(WIDTHS)('looks like its golden screenshot at %i px', async (width) => {
    await expectMatchesGolden(`${name}-${width}`, await screenshot(emails[name], width));
  });
});
