import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { AxeBuilder } from '@axe-core/playwright';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadContent } from '../../src/content/load-content.ts';
import type { Content } from '../../src/model/content.ts';
import { composeEdition } from '../../src/edition/compose-edition.ts';
import { compileEdition, compileEmail, type CompiledEdition } from '../../src/render/compile-edition.ts';
import { emailPalette } from '../../src/render/email-palette.ts';
import { loadEmailTemplates, type EmailTemplates } from '../../src/render/email-templates.ts';
import { slotMarker } from '../../src/render/slots.ts';
import { IMAGE_HOST, placeholderPng, sampleHtml, STRESS_SLUG, storyFiles } from '../fixtures/screens/email-fixtures.ts';
import { fileBrowser } from '../helpers/browser.ts';
import { tempContentDir, TEMPLATES_DIR } from '../helpers/content-dir.ts';

// What the emails are to a reader who cannot see them as designed: every kind (a digest, a single
// story, the confirmation, the welcome) at phone and desktop width, in light and dark mode, checked
// by axe-core against WCAG 2 A and AA; then the parts axe cannot judge: the colour-scheme meta and
// dark-mode CSS that mail clients read, and a site.yaml theme (accent and logo) reaching the email.

const NOW = new Date('2025-07-20T12:00:00Z');
const WIDTHS = [375, 800] as const;
const SCHEMES = ['light', 'dark'] as const;
/** A light accent white text cannot sit on, and a logo: the palette has to adapt both. */
const THEME = { accent: '#e0a800', logoUrl: `${IMAGE_HOST}/logo-400x120.png` };


type EmailName = 'digest' | 'story' | 'confirmation' | 'welcome' | 'themed digest' | 'themed confirmation';

/** Each email's HTML with the recipient slots filled. */
const emails = {} as Record<EmailName, string>;
let themed: Content;
const chromium = fileBrowser();

const filled = sampleHtml;

/** The double opt-in request, with the context SubscriptionService.noticeTemplate gives it. */
function confirmation(templates: EmailTemplates, content: Content): Promise<CompiledEdition> {
  const { site } = content;
  return compileEmail(templates.notice, {
    site,
    subject: `Confirm your subscription to ${site.title}`,
    preheader: 'One click and you are in.',
    lead: `Please confirm that you want to receive ${site.lists[0]!.name} at ${slotMarker('email')}.`,
    button: 'Confirm my subscription',
    note: 'The link works for 7 days. If you did not ask for this, ignore this email: you will not be subscribed.',
  });
}

/** The welcome email: a digest of the latest three stories with an intro, as SubscriptionService.welcomeTemplate makes it. */
function welcome(templates: EmailTemplates, content: Content): Promise<CompiledEdition> {
  const { site } = content;
  const list = site.lists[0]!;
  return compileEdition(
    templates,
    composeEdition(site, list, 'digest', content.stories.slice(0, 3), NOW, {
      subject: `Welcome to ${site.title}`,
      preheader: 'You are subscribed. Here are the latest stories.',
      intro: `You are now subscribed to ${list.name} (a weekly digest). Here are the latest stories.`,
    }),
  );
}

beforeAll(async () => {
  await chromium.launch();
  const templates = await loadEmailTemplates(TEMPLATES_DIR);
  const content = await loadContent(await tempContentDir(storyFiles()));
  expect(content.stories).toHaveLength(10);
  const list = content.site.lists[0]!;
  const stress = content.stories.filter((story) => story.slug === STRESS_SLUG);
  emails.digest = filled(await compileEdition(templates, composeEdition(content.site, list, 'digest', content.stories, NOW)));
  emails.story = filled(await compileEdition(templates, composeEdition(content.site, list, 'story', stress, NOW)));
  emails.confirmation = filled(await confirmation(templates, content));
  emails.welcome = filled(await welcome(templates, content));

  const themedDir = await tempContentDir(storyFiles());
  const siteFile = path.join(themedDir, 'site.yaml');
  await writeFile(siteFile, `${await readFile(siteFile, 'utf8')}theme:\n  accent: "${THEME.accent}"\n  logo_url: "${THEME.logoUrl}"\n`);
  themed = await loadContent(themedDir);
  expect(themed.site.theme).toEqual(THEME);
  emails['themed digest'] = filled(await compileEdition(templates, composeEdition(themed.site, list, 'digest', themed.stories, NOW)));
  emails['themed confirmation'] = filled(await confirmation(templates, themed));
});

afterAll(async () => {
  await chromium.close();
});

const pngCache = new Map<string, Buffer>();

/**
 * Opens an email at `width` px in the given colour scheme. Image requests (NAME-WxH.png) get a
 * generated PNG of that size; every other request is aborted, so nothing leaves the machine.
 */
async function openEmail(html: string, width: number, scheme: 'light' | 'dark'): Promise<{ page: Page; close: () => Promise<void> }> {
  const context = await chromium.get().newContext({ viewport: { width, height: 800 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  await page.emulateMedia({ colorScheme: scheme });
  await page.route('**/*', async (route) => {
    const size = route.request().url().startsWith(`${IMAGE_HOST}/`) ? /-(\d+)x(\d+)\.png$/.exec(route.request().url()) : null;
    if (!size) return route.abort('blockedbyclient');
    const key = `${size[1]}x${size[2]}`;
    let body = pngCache.get(key);
    if (!body) pngCache.set(key, (body = placeholderPng(Number(size[1]), Number(size[2]))));
    return route.fulfill({ status: 200, contentType: 'image/png', body });
  });
  await page.setContent(html, { waitUntil: 'load' });
  return { page, close: () => context.close() };
}

// Each email in both schemes, each scheme at one of the widths: contrast is what the scheme changes, and
// an axe run costs seconds on a busy machine (the other width's layout is checked by email-layout.test.ts).
const cases = (Object.keys({ digest: 0, story: 0, confirmation: 0, welcome: 0, 'themed digest': 0, 'themed confirmation': 0 }) as EmailName[]).flatMap((name) => [
  { name, scheme: SCHEMES[0], width: WIDTHS[0] },
  { name, scheme: SCHEMES[1], width: WIDTHS[1] },
]);

describe('every email, to axe-core (WCAG 2 A and AA)', () => {
  it.each(cases)('the $name email at $width px in $scheme mode has no serious or critical violation', async ({ name, scheme, width }) => {
    const { page, close } = await openEmail(emails[name], width, scheme);
    try {
      const results = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa']).analyze();
      const grave = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
      const described = grave.map(
        (v) => `${v.id} (${v.impact}): ${v.help}\n${v.nodes.slice(0, 5).map((n) => `  ${n.target.join(' ')}: ${n.failureSummary?.replace(/\s+/g, ' ')}`).join('\n')}`,
      );
      expect(described, `axe found in the ${name} email at ${width}px, ${scheme}`).toEqual([]);
      // Axe did run the checks that matter most here (a rule with nothing to check is not a pass).
      expect(results.passes.map((p) => p.id)).toEqual(expect.arrayContaining(['color-contrast', 'html-has-lang', 'document-title']));
    } finally {
      await close();
    }
  });
});

describe('what axe cannot judge', () => {
  it.each(['digest', 'story', 'confirmation', 'welcome'] as const)('the %s email declares both colour schemes, has dark-mode CSS for Apple Mail and Outlook.com, a language and a title', (name) => {
    const html = emails[name];
    const head = html.slice(0, html.indexOf('</head>'));
    expect(head).toContain('<meta name="color-scheme" content="light dark">');
    expect(head).toContain('<meta name="supported-color-schemes" content="light dark">');
    expect(head).toMatch(/@media \(prefers-color-scheme: dark\) \{[^@]*\.gz-paper, \.gz-paper > table \{ background-color: #[0-9a-f]{6} !important/);
    expect(head).toMatch(/\[data-ogsc\] \.gz-text > div[^{]*\{ color: #[0-9a-f]{6} !important/);
    expect(head).toMatch(/\[data-ogsb\] \.gz-paper[^{]*\{ background-color: #[0-9a-f]{6} !important/);
    expect(html).toMatch(/^<!doctype html><html lang="en"/);
    expect(head).toMatch(/<title>[^<]+<\/title>/);
    expect(head).not.toMatch(/<title>\s*<\/title>/);
  });

  it.each(['digest', 'story', 'confirmation', 'welcome'] as const)('the %s email has one h1 and headings that never skip a level', async (name) => {
    const { page, close } = await openEmail(emails[name], 800, 'light');
    try {
      const levels = await page.locator('h1, h2, h3, h4, h5, h6').evaluateAll((hs) => hs.map((h) => Number(h.tagName[1])));
      expect(levels.filter((level) => level === 1), 'h1 headings').toHaveLength(1);
      expect(levels[0]).toBe(1);
      for (const [i, level] of levels.entries()) if (i > 0) expect(level, `heading ${i + 1} after an h${levels[i - 1]}`).toBeLessThanOrEqual(levels[i - 1]! + 1);
    } finally {
      await close();
    }
  });

  it.each(WIDTHS)('in dark mode at %i px, the paper turns dark and text and links light', async (width) => {
    const palette = emailPalette({ accent: '#9c2f1f', logoUrl: undefined });
    for (const scheme of SCHEMES) {
      const { page, close } = await openEmail(emails.story, width, scheme);
      try {
        const seen = await page.evaluate(() => {
          const colour = (el: Element | null, property: 'color' | 'backgroundColor') => (el ? getComputedStyle(el)[property] : 'missing');
          return {
            paper: colour(document.querySelector('.gz-paper'), 'backgroundColor'),
            text: colour(document.querySelector('.story-body > div'), 'color'),
            link: colour(document.querySelector('.story-body a'), 'color'),
            underline: document.querySelector('.story-body a') ? getComputedStyle(document.querySelector('.story-body a')!).textDecorationLine : 'missing',
          };
        });
        const dark = scheme === 'dark';
        expect(seen).toEqual({
          paper: rgb(dark ? palette.darkPaper : palette.paper),
          text: rgb(dark ? palette.darkText : palette.text),
          link: rgb(dark ? palette.darkLink : palette.link),
          underline: 'underline',
        });
      } finally {
        await close();
      }
    }
  });

  it('draws links, buttons and the masthead rule in the theme accent, and the logo with alt text and a size', async () => {
    const palette = emailPalette(themed.site.theme);
    // White on #e0a800 is under 4.5:1: the button keeps the accent with dark text, links darken it.
    expect(palette.button).toBe(THEME.accent);
    expect(palette.buttonText).toBe(palette.text);
    expect(palette.link).not.toBe(THEME.accent);
    for (const name of ['themed digest', 'themed confirmation'] as const) {
      const html = emails[name];
      expect(html).toContain(`a { color: ${palette.link}; text-decoration: underline; }`);
      expect(html).toContain(`border-top:4px solid ${THEME.accent}`);
      const logos = [...html.matchAll(/<img [^>]*class="gz-logo"[^>]*>/g)].map((m) => m[0]);
      expect(logos, `${name}: one logo`).toHaveLength(1);
      expect(logos[0]).toContain(`src="${THEME.logoUrl}"`);
      expect(logos[0]).toContain(`alt="${themed.site.title}"`);
      expect(logos[0]).toMatch(/ width="\d+"/);
      expect(logos[0]).toMatch(/ height="\d+"/);
      // The title is not printed as text beside its logo.
      expect(html).not.toMatch(new RegExp(`text-decoration:none;">${themed.site.title}</a>`));
    }
    expect(emails['themed confirmation']).toMatch(new RegExp(`background:${THEME.accent};color:${palette.buttonText}`));
    expect(emails['themed digest']).toContain(`style="color:${palette.link};">Read the full story →</a>`);

    const { page, close } = await openEmail(emails['themed digest'], 375, 'light');
    try {
      const logo = await page.locator('img.gz-logo').evaluate((img: HTMLImageElement) => ({
        loaded: img.complete && img.naturalWidth > 0,
        width: img.getBoundingClientRect().width,
        height: img.getBoundingClientRect().height,
        heading: img.closest('h1') !== null,
      }));
      // The 400 × 120 logo, drawn in its 200 × 60 box with its own shape, as the digest's h1.
      expect(logo).toEqual({ loaded: true, width: 200, height: 60, heading: true });
    } finally {
      await close();
    }
  });

  it('without a theme, the masthead is the site title in type', () => {
    expect(emails.digest).not.toContain('gz-logo"');
    expect(emails.digest).toMatch(/<h1 [^>]*><a href="[^"]+\/" style="color:#1f2328;text-decoration:none;">The Gazette Dispatch<\/a><\/h1>/);
  });
});

/** A #rrggbb colour as getComputedStyle writes it. */
function rgb(hex: string): string {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  return `rgb(${r}, ${g}, ${b})`;
}
