import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadContent } from '../../src/content/load-content.ts';
import { createMessageSigner } from '../../src/delivery/dkim.ts';
import { writePreview } from '../../src/edition/write-preview.ts';
import { TokenSigner } from '../../src/links/tokens.ts';
import { loadEmailTemplates } from '../../src/render/email-templates.ts';
import { launchBrowser } from '../helpers/browser.ts';

// Renders a 10-story digest and one full story with the real templates, opens them in Chromium
// at phone and desktop widths, and checks what a reader would notice: sideways scrolling,
// images without alt text, a hidden unsubscribe link, tiny body text. Screenshots land in
// test-artifacts/ (git-ignored) for a human to look at.

const SITE_YAML = new URL('../../content/site.yaml', import.meta.url);
const TEMPLATES_DIR = fileURLToPath(new URL('../../templates', import.meta.url));
const ARTIFACTS_DIR = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));

const NOW = new Date('2025-07-20T12:00:00Z');
const IMAGE_HOST = 'https://images.gazette.example.org';
const STRESS_SLUG = 'rhine-freight-data';
const LONG_WORD = 'Donaudampfschifffahrtselektrizitätenhauptbetriebswerkbauunterbeamtengesellschaftsvorsitzender';
const LONG_URL =
  'https://data.gazette.example.org/exports/2025/07/rhine-freight/kaub-gauge/hourly-readings-with-barge-draught-and-load-factor-per-operator-and-commodity-class-final-revised-v3.csv';
const WIDTHS = [375, 800] as const;

/** One story file: front matter fields as YAML lines, then the Markdown body. */
interface StoryFile {
  slug: string;
  frontMatter: string;
  body: string;
}

const image = (name: string, width: number, height: number, alt: string, declareSize = true) =>
  `image:\n  url: "${IMAGE_HOST}/${name}-${width}x${height}.png"\n  alt: "${alt}"\n` +
  (declareSize ? `  width: ${width}\n  height: ${height}\n` : '');

const STORIES: StoryFile[] = [
  {
    slug: 'eu-energy-grid',
    frontMatter: `title: "Europe's grid links hold through the cold snap"
date: 2025-07-19T08:00:00+02:00
author: "Mira Kovalenko"
summary: "Cross-border interconnectors kept the lights on during January's freeze — and showed where the next bottlenecks are."
tags: [Europe, Energy]
${image('grid-pylons', 1200, 630, 'High-voltage pylons against a winter sky')}`,
    body: `Europe's electricity interconnectors carried record flows in January, when a
week of freezing weather pushed demand to its highest level in a decade.

## What held

Grid operators shared reserves across borders **hour by hour**.
`,
  },
  {
    slug: 'kyiv-grid-repairs',
    frontMatter: `title: "Київ відновлює енергомережу ⚡️🇺🇦 — Kyiv races to rebuild its grid before winter"
date: 2025-07-18T09:30:00+03:00
author: "Олена Шевчук"
summary: "Енергетики працюють у три зміни 🔧: substations hit in spring are being rebuilt with blast walls, and rooftop solar is filling the gaps."
tags: [Ukraine, Energy]
${image('kyiv-substation', 1200, 800, 'Engineers in hard hats at a damaged substation in Kyiv')}`,
    body: `Engineers are rebuilding substations damaged in the spring, this time behind
concrete blast walls. «Ми встигнемо до морозів», says one shift lead. 💪
`,
  },
  {
    slug: STRESS_SLUG,
    frontMatter: `title: "Low water on the Rhine: what the Kaub gauge says about Europe's freight bottleneck"
date: 2025-07-17T07:15:00+02:00
author: "Jonas Albrecht"
summary: "Barges are sailing a third full as the river drops; the raw readings are at ${LONG_URL} for anyone who wants to check."
tags: [Germany, Trade, Climate]
${image('rhine-barge', 1600, 900, 'A half-loaded barge passing the Pfalzgrafenstein castle at low water')}
faq:
  - q: "Why does Kaub matter more than other gauges?"
    a: "It sits on the shallowest stretch of the navigable Middle Rhine, so it sets the load limit for the whole route."`,
    body: `When the gauge at Kaub falls below 80 cm, the ${LONG_WORD} of every shipping
firm on the Rhine starts making phone calls. The full dataset is here: ${LONG_URL}

![A chart of the Kaub gauge falling through June and July](${IMAGE_HOST}/kaub-chart-1600x700.png)

## The numbers

| Operator | Barges | Avg. load | June load | July load | Draught (m) | Surcharge | Delay (h) | Route | Commodity |
|---|---|---|---|---|---|---|---|---|---|
| Rhenus | 142 | 61% | 74% | 48% | 1.90 | €18.40/t | 14 | Rotterdam–Basel | Coal |
| HGK | 98 | 58% | 71% | 44% | 1.85 | €21.10/t | 19 | Antwerp–Mannheim | Grain |
| Contargo | 77 | 66% | 79% | 52% | 2.05 | €16.75/t | 11 | Rotterdam–Duisburg | Containers |
| Imperial | 64 | 55% | 69% | 41% | 1.80 | €23.90/t | 22 | Amsterdam–Karlsruhe | Chemicals |

## What shippers do

- Split cargoes across **more barges**, each sailing lighter.
- Move containers to rail where slots are free: ${LONG_URL}
- Wait, and pay demurrage.

> "We have never seen July this low," says a dispatcher in Duisburg.

\`\`\`
kaub_cm,load_factor,surcharge_eur_per_tonne,operator,route,commodity,observed_at_utc,source_file_checksum_sha256
78,0.48,18.40,rhenus,rotterdam-basel,coal,2025-07-16T06:00:00Z,9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
\`\`\`
`,
  },
  {
    slug: 'nato-summit-notes',
    frontMatter: `title: "Five things to watch at the NATO summit"
date: 2025-07-16T18:00:00+02:00
author: "Claire Dubois"
summary: "Spending targets, air defence and a quiet argument over who pays for the eastern flank."
tags: [NATO, Security]`,
    body: `Leaders meet next week with spending back at the top of the agenda.
`,
  },
  {
    slug: 'baltic-cable-patrols',
    frontMatter: `title: "Navies step up patrols over Baltic undersea cables"
date: 2025-07-15T10:00:00+03:00
author: "Mikko Laine"
summary: "After three cables were cut last winter, a joint task force now shadows every ship that drags an anchor."
tags: [Baltic, Security]
${image('patrol-boat', 320, 200, 'A small grey patrol boat on a calm sea')}`,
    body: `A joint task force of eight navies now watches the Baltic seabed around the clock.
`,
  },
  {
    slug: 'sahel-elections',
    frontMatter: `title: "Sahel juntas postpone elections again, citing security"
date: 2025-07-14T12:00:00+00:00
author: "Awa Diallo"
summary: "Mali, Burkina Faso and Niger have all pushed back their votes; regional mediators are running out of leverage."
tags: [Africa, Politics]
${image('bamako-market', 800, 1000, 'A busy market street in Bamako at dusk', false)}`,
    body: `Three military governments have now postponed promised elections.
`,
  },
  {
    slug: 'wto-fisheries',
    frontMatter: `title: "A fisheries deal at the WTO, twenty years in the making, finally takes effect after a long and surprisingly dramatic final ratification round"
date: 2025-07-13T09:00:00+02:00
author: "Priya Raman"
summary: "The agreement bans subsidies for illegal fishing and for fishing overfished stocks."
tags: [Trade, Oceans]
${image('trawler', 1200, 630, 'A trawler returning to harbour with gulls overhead')}`,
    body: `The WTO's first agreement focused on the environment took effect this week.
`,
  },
  {
    slug: 'arctic-shipping',
    frontMatter: `title: "Arctic shipping season opens early"
date: 2025-07-12T06:00:00+00:00
author: "Erik Solberg"
summary: "Thin ice let the first tankers through the Northern Sea Route three weeks ahead of last year."
tags: [Arctic, Trade]`,
    body: `The first tankers of the season have cleared the Vilkitsky Strait.
`,
  },
  {
    slug: 'andes-lithium',
    frontMatter: `title: "Chile and Argentina court lithium buyers"
date: 2025-07-11T15:00:00-04:00
author: "Lucía Fernández"
summary: "Both governments are rewriting royalty rules to win battery plants, not just mines."
tags: [Latin America, Mining]
${image('salt-flat', 1200, 675, 'Evaporation ponds on a white salt flat under the Andes')}`,
    body: `Royalty reform is back on the agenda in Santiago and Buenos Aires.
`,
  },
  {
    slug: 'asean-water-talks',
    frontMatter: `title: "Mekong states agree to share dam data"
date: 2025-07-10T11:00:00+07:00
author: "Nguyen Thi Lan"
summary: "Upstream operators will publish release schedules a week ahead, a first for the river."
tags: [Asia, Water]
${image('mekong-dam', 1200, 630, 'A concrete dam spanning a wide brown river')}`,
    body: `Release schedules for upstream dams will be published seven days in advance.
`,
  },
];

/** The rendered previews, as HTML. */
const html: Record<'digest' | 'story', string> = { digest: '', story: '' };
let contentDir: string;
let browser: Browser | undefined;
let launchError: unknown;

beforeAll(async () => {
  // A missing Chromium fails every test below with the launcher's message (a throw here would
  // only fail the file and list the tests as skipped).
  try {
    browser = await launchBrowser();
  } catch (error) {
    launchError = error;
  }
  contentDir = await mkdtemp(path.join(os.tmpdir(), 'gazette-email-layout-'));
  await mkdir(path.join(contentDir, 'stories'), { recursive: true });
  await writeFile(path.join(contentDir, 'site.yaml'), await readFile(SITE_YAML, 'utf8'));
  for (const story of STORIES) {
    await writeFile(path.join(contentDir, 'stories', `${story.slug}.md`), `---\n${story.frontMatter.trimEnd()}\n---\n${story.body}`);
  }
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
  await mkdir(ARTIFACTS_DIR, { recursive: true });
});

afterAll(async () => {
  await browser?.close();
  if (contentDir) await rm(contentDir, { recursive: true, force: true });
});

// --- A tiny PNG encoder, so routed image requests get real pixels of the requested size. ---

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(data: Buffer): number {
  let c = 0xffffffff;
  for (const byte of data) c = CRC_TABLE[(c ^ byte) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** An RGB PNG of width × height: a blue-grey gradient with a diagonal band, like a photo placeholder. */
function placeholderPng(width: number, height: number): Buffer {
  const row = 1 + width * 3;
  const raw = Buffer.alloc(row * height);
  for (let y = 0; y < height; y++) {
    raw[y * row] = 0; // filter: none
    for (let x = 0; x < width; x++) {
      const band = Math.abs(((x + y) % 160) - 80) < 12;
      const i = y * row + 1 + x * 3;
      raw[i] = band ? 222 : 70 + Math.round((110 * y) / height);
      raw[i + 1] = band ? 196 : 96 + Math.round((90 * x) / width);
      raw[i + 2] = band ? 140 : 140;
    }
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit, truecolour, deflate, no filter, no interlace
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', header),
    pngChunk('IDAT', deflateSync(raw, { level: 1 })),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

const pngCache = new Map<string, Buffer>();

/**
 * Opens an email in a fresh page of the given width. Image requests (NAME-WxH.png) get a
 * generated PNG of that size; every other request is aborted and recorded, so nothing leaves
 * the machine and a template that starts fetching something shows up.
 */
async function openEmail(source: string, width: number): Promise<{ page: Page; unexpected: string[]; close: () => Promise<void> }> {
  if (!browser) throw launchError;
  const context = await browser.newContext({ viewport: { width, height: 800 }, deviceScaleFactor: 1 });
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
      await page.screenshot({ path: path.join(ARTIFACTS_DIR, `${edition}-${width}.png`), fullPage: true });

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
