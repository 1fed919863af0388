import { AxeBuilder } from '@axe-core/playwright';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { screenshot, seedTour, TOUR_NOW, withPage, type TourPage } from '../../scripts/screenshots.ts';
import { fileBrowser } from '../helpers/browser.ts';
import { expectMatchesGolden } from '../helpers/golden-screens.ts';
import { testServer, type TestServer } from '../helpers/server.ts';

// Every public page in Chromium, through a real server over a copy of the sample content/ at a
// fixed instant, with the subscriber and editions of the README's screenshot tour
// (scripts/screenshots.ts): axe-core finds no serious or critical WCAG 2 A/AA violation in light
// or dark mode, no page scrolls sideways from 320 px up, and home and story match golden
// screenshots committed under tests/fixtures/screens/ (changed only through `npm run test:screens:update`).

const PAGES: TourPage['name'][] = ['home', 'story', 'tag', 'archive', 'edition', 'preferences', 'unsubscribe', '404'];
const OVERFLOW_WIDTHS = [320, 375, 768, 1280];
const GOLDENS = [
  ['home', 375],
  ['home', 1280],
  ['story', 375],
  ['story', 1280],
] as const;

let t: TestServer | undefined;
let base = '';
let paths = new Map<string, string>();
const chromium = fileBrowser();

beforeAll(async () => {
  await chromium.launch();
  t = await testServer({ now: () => TOUR_NOW });
  await t.server.listen({ port: 0, host: '127.0.0.1' });
  const address = t.server.server.address();
  base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  paths = new Map((await seedTour(t.app)).map((page) => [page.name, page.path]));
});

afterAll(async () => {
  await chromium.close();
  await t?.close();
});

const urlOf = (name: string) => base + paths.get(name)!;
const started = (): Browser => chromium.get();

describe('accessibility', () => {
  it.each(PAGES)('%s has no serious or critical WCAG 2 A/AA violation, in light or dark mode', async (name) => {
    for (const [width, colorScheme] of [[375, 'light'], [1280, 'dark']] as const) {
      const violations = await withPage(
        started(),
        urlOf(name),
        width,
        async (page) => (await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa']).analyze()).violations,
        { colorScheme },
      );
      const serious = violations
        .filter((v) => v.impact === 'serious' || v.impact === 'critical')
        .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).slice(0, 5).join(', ')}`);
      expect(serious, `${name} at ${width} px, ${colorScheme} mode`).toEqual([]);
    }
  }, 60_000);
});

describe('layout', () => {
  it.each(PAGES)('%s does not scroll sideways at 320, 375, 768 or 1280 px', async (name) => {
    // One page load, resized: the layout reflows at each width as it would on a device of that size.
    await withPage(started(), urlOf(name), OVERFLOW_WIDTHS[0]!, async (page) => {
      for (const width of OVERFLOW_WIDTHS) {
        await page.setViewportSize({ width, height: 800 });
        const overflow = await page.evaluate(() => ({
          scrollWidth: document.documentElement.scrollWidth,
          innerWidth: window.innerWidth,
          // The elements sticking out, to say what to fix.
          wide: [...document.querySelectorAll('body *')]
            .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 0.5)
            .slice(0, 5)
            .map((el) => `${el.tagName.toLowerCase()}${el.className ? `.${String(el.className).split(' ').join('.')}` : ''}`),
        }));
        expect(overflow.scrollWidth, `${name} at ${width} px: ${overflow.wide.join(', ')}`).toBeLessThanOrEqual(overflow.innerWidth);
      }
    });
  }, 60_000);

  it('shows the first story on a phone before the reader scrolls', async () => {
    const top = await withPage(started(), urlOf('home'), 375, (page) => page.locator('.latest article').first().locator('h3').evaluate((h) => h.getBoundingClientRect().top));
    expect(top).toBeLessThan(667 - 60);
  });
});

describe('golden screenshots', () => {
  it.each(GOLDENS)('%s at %i px looks like its golden', async (name, width) => {
    await expectMatchesGolden(`site-${name}-${width}`, await screenshot(started(), urlOf(name), width));
  }, 60_000);
});

