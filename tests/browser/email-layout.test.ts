import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadContent } from '../../src/content/load-content.ts';
import { createMessageSigner } from '../../src/delivery/dkim.ts';
import { writePreview } from '../../src/edition/write-preview.ts';
import { TokenSigner } from '../../src/links/tokens.ts';
import { loadEmailTemplates } from '../../src/render/email-templates.ts';
import { IMAGE_HOST, placeholderPng, STORIES, STRESS_SLUG, storyFiles } from '../fixtures/screens/email-fixtures.ts';
import { fileBrowser } from '../helpers/browser.ts';

// Renders a 10-story digest and one full story with the real templates, opens them in Chromium
// at phone and desktop widths, and checks what a reader would notice: sideways scrolling,
// images without alt text, a hidden unsubscribe link, tiny body text. What the emails look like
// is compared pixel by pixel in email-screens.test.ts, against committed goldens.

const SITE_YAML = new URL('../../content/site.yaml', import.meta.url);
const TEMPLATES_DIR = fileURLToPath(new URL('../../templates', import.meta.url));

const NOW = new Date('2025-07-20T12:00:00Z');
const WIDTHS = [375, 800] as const;

/** The rendered previews, as HTML. */
const html: Record<'digest' | 'story', string> = { digest: '', story: '' };
let contentDir: string;
const chromium = fileBrowser();

beforeAll(async () => {
  await chromium.launch();
  contentDir = await mkdtemp(path.join(os.tmpdir(), 'gazette-email-layout-'));
  await mkdir(path.join(contentDir, 'stories'), { recursive: true });
  await writeFile(path.join(contentDir, 'site.yaml'), await readFile(SITE_YAML, 'utf8'));
  for (const [name, text] of Object.entries(storyFiles())) await writeFile(path.join(contentDir, 'stories', name), text);
  const content = await loadContent(contentDir);
  expect(content.stories).toHaveLength(STORIES.length);
  const common = {
    content,
    templates: await loadEmailTemplates(TEMPLATES_DIR),
    tokens: new TokenSigner('email-layout-test-secret-0123456789'),
    signMessage: await createMessageSigner(undefined),
    outDir: path.join(contentDir, 'out'),
    now: NOW,
  };
  const digest = await writePreview({ ...common, digest: true });
  const story = await writePreview({ ...common, story: STRESS_SLUG });
  html.digest = await readFile(digest.files.html, 'utf8');
  html.story = await readFile(story.files.html, 'utf8');
});

afterAll(async () => {
  await chromium.close();
  if (contentDir) await rm(contentDir, { recursive: true, force: true });
});

const pngCache = new Map<string, Buffer>();

/**
 * Opens an email in a fresh page of the given width. Image requests (NAME-WxH.png) get a
 * generated PNG of that size; every other request is aborted and recorded, so nothing leaves
 * the machine and a template that starts fetching something shows up.
 */
async function openEmail(source: string, width: number): Promise<{ page: Page; unexpected: string[]; close: () => Promise<void> }> {
  const context = await chromium.get().newContext({ viewport: { width, height: 800 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  const unexpected: string[] = [];
  await page.route('**/*', async (route) => {
    const url = route.request().url();
    const size = url.startsWith(`${IMAGE_HOST}/`) ? /-(\d+)x(\d+)\.png$/.exec(url) : null;
    if (!size) {
      unexpected.push(url);
      await route.abort('blockedbyclient');
      return;
    }
    const key = `${size[1]}x${size[2]}`;
    let body = pngCache.get(key);
    if (!body) pngCache.set(key, (body = placeholderPng(Number(size[1]), Number(size[2]))));
    await route.fulfill({ status: 200, contentType: 'image/png', body });
  });
  await page.setContent(source, { waitUntil: 'load' });
  return { page, unexpected, close: () => context.close() };
}

/** The innermost elements sticking out past the right edge of the viewport, described for a failure message. */
async function overflowingElements(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const limit = window.innerWidth;
    const wide = [...document.body.querySelectorAll('*')].filter((el) => el.getBoundingClientRect().right > limit);
    const innermost = wide.filter((el) => !wide.some((other) => other !== el && el.contains(other)));
    return innermost.slice(0, 8).map((el) => {
      const box = el.getBoundingClientRect();
      const chain: string[] = [];
      for (let node: Element | null = el; node && node !== document.body && chain.length < 5; node = node.parentElement) {
        chain.unshift(node.tagName.toLowerCase() + (node.className ? `.${String(node.className).split(/\s+/).join('.')}` : ''));
      }
      const text = (el.textContent ?? '').replace(/\s+/g, ' ').trim().slice(0, 80);
      const style = (el.getAttribute('style') ?? '').slice(0, 120);
      return `${chain.join(' > ')} right=${Math.round(box.right)}px width=${Math.round(box.width)}px style="${style}" text="${text}"`;
    });
  });
}

/** Computed font size (px) of the element holding each text; -1 when the text is not found. */
async function fontSizesOf(page: Page, texts: string[]): Promise<Record<string, number>> {
  return page.evaluate((wanted) => {
    const sizes: Record<string, number> = {};
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    const nodes: Text[] = [];
    for (let node = walker.nextNode(); node; node = walker.nextNode()) nodes.push(node as Text);
    for (const text of wanted) {
      const node = nodes.find((n) => n.data.replace(/\s+/g, ' ').includes(text));
      sizes[text] = node?.parentElement ? parseFloat(getComputedStyle(node.parentElement).fontSize) : -1;
    }
    return sizes;
  }, texts);
}

/** Text a reader reads as the body of each edition: summaries in a digest, paragraphs, list items, table cells in a story. */
const BODY_TEXTS: Record<'digest' | 'story', string[]> = {
  digest: [
    'Hello Sample Reader,',
    'Cross-border interconnectors kept the lights on',
    'Енергетики працюють у три зміни',
    'Barges are sailing a third full',
    'Upstream operators will publish release schedules',
  ],
  story: [
    'Hello Sample Reader,',
    'When the gauge at Kaub falls below 80',
    'Split cargoes across',
    'Rotterdam–Basel',
    'We have never seen July this low',
    'It sits on the shallowest stretch',
  ],
};

describe.each(['digest', 'story'] as const)('the %s email in Chromium', (edition) => {
  it.each(WIDTHS)(`lays out at %i px without sideways scrolling, with alt text and a visible unsubscribe link`, async (width) => {
    const { page, unexpected, close } = await openEmail(html[edition], width);
    try {
      const metrics = await page.evaluate(() => ({
        scrollWidth: document.documentElement.scrollWidth,
        clientWidth: document.documentElement.clientWidth,
        innerWidth: window.innerWidth,
      }));
      const overflow = metrics.scrollWidth > metrics.innerWidth ? await overflowingElements(page) : [];
      expect
        .soft(metrics.scrollWidth, `horizontal overflow at ${width}px; elements past the edge:\n${overflow.join('\n')}`)
        .toBeLessThanOrEqual(metrics.innerWidth);
      expect.soft(metrics.clientWidth, 'a vertical scrollbar is eating into the layout width').toBe(metrics.innerWidth);

      const images = await page.locator('img').evaluateAll((imgs) =>
        (imgs as HTMLImageElement[]).map((img) => ({
          src: img.src,
          alt: img.getAttribute('alt'),
          loaded: img.complete && img.naturalWidth > 0,
          right: img.getBoundingClientRect().right,
        })),
      );
      expect(images.length, 'the email has images to check').toBeGreaterThan(0);
      for (const img of images) {
        expect.soft(img.alt?.trim(), `<img src="${img.src}"> needs alt text`).toBeTruthy();
        expect.soft(img.loaded, `<img src="${img.src}"> did not load from the routed placeholder`).toBe(true);
        expect.soft(img.right, `<img src="${img.src}"> sticks out past the right edge`).toBeLessThanOrEqual(width);
      }
      expect.soft(unexpected, 'requests other than story images').toEqual([]);

      const unsubscribe = page.locator('a[href*="/unsubscribe?token="]', { hasText: 'Unsubscribe' });
      expect.soft(await unsubscribe.count(), 'unsubscribe links').toBe(1);
      expect.soft(await unsubscribe.first().isVisible(), 'unsubscribe link is hidden').toBe(true);
      const box = await unsubscribe.first().boundingBox();
      expect.soft(box, 'unsubscribe link has no box').not.toBeNull();
      if (box) {
        expect.soft(box.width * box.height, 'unsubscribe link has zero size').toBeGreaterThan(0);
        expect.soft(box.x, 'unsubscribe link starts off-screen').toBeGreaterThanOrEqual(0);
        expect.soft(box.x + box.width, 'unsubscribe link ends off-screen').toBeLessThanOrEqual(width);
      }
      // In the footer: the smallest section holding the link also holds the postal address and no story.
      const footer = await unsubscribe.first().evaluate((link, postal) => {
        let node: Element | null = link;
        while (node && !(node.textContent ?? '').includes(postal)) node = node.parentElement;
        const text = node?.textContent ?? '';
        const lastStoryLink = [...document.querySelectorAll('a')].filter((a) => /Read (the full story|this story on the web)/.test(a.textContent ?? '')).pop();
        return {
          found: node !== null && node !== document.body,
          holdsStory: /Read (the full story|this story on the web)/.test(text),
          belowLastStory: lastStoryLink ? link.getBoundingClientRect().top > lastStoryLink.getBoundingClientRect().bottom : false,
        };
      }, 'Gazette Media, 12 Harbour Street');
      expect.soft(footer, 'unsubscribe link should sit in the footer, next to the postal address, below every story').toEqual({
        found: true,
        holdsStory: false,
        belowLastStory: true,
      });

      if (width === 375) {
        const sizes = await fontSizesOf(page, BODY_TEXTS[edition]);
        for (const [text, size] of Object.entries(sizes)) {
          expect.soft(size, `body text "${text}" not found`).not.toBe(-1);
          expect.soft(size, `body text "${text}" is ${size}px at 375px`).toBeGreaterThanOrEqual(14);
        }
      }
    } finally {
      await close();
    }
  });
});
