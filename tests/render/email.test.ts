import { mkdtemp, readFile, writeFile, cp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { loadContent } from '../../src/content/load-content.ts';
import type { Content } from '../../src/model/content.ts';
import { createMessageSigner } from '../../src/delivery/dkim.ts';
import { prepareMessageTemplate, renderMessage } from '../../src/delivery/mime-message.ts';
import { composeEdition } from '../../src/edition/compose-edition.ts';
import { writePreview } from '../../src/edition/write-preview.ts';
import { RenderError } from '../../src/errors.ts';
import { recipientLinks } from '../../src/links/recipient-links.ts';
import { TokenSigner } from '../../src/links/tokens.ts';
import { compileEdition, compileEmail } from '../../src/render/compile-edition.ts';
import { loadEmailTemplates, type EmailTemplates } from '../../src/render/email-templates.ts';
import { escapeValuesForHtml, fillSlots, recipientValues, slotMarker, type RecipientValues } from '../../src/render/slots.ts';
import { checkEml } from '../helpers/check-eml.ts';
import { storyFile, tempContentDir, TEMPLATES_DIR } from '../helpers/content-dir.ts';

const NOW = new Date('2025-07-10T08:00:00Z');
const signer = new TokenSigner('test-secret-0123456789abcdef');
let content: Content;
let templates: EmailTemplates;

beforeAll(async () => {
  content = await loadContent(await tempContentDir({}, { withGolden: true }));
  templates = await loadEmailTemplates(TEMPLATES_DIR);
});

function valuesFor(id: number, name: string, email: string): RecipientValues {
  const links = recipientLinks(content.site, signer, id);
  return recipientValues({ greeting: `Hello ${name},`, email, unsubscribe_url: links.unsubscribeUrl, preferences_url: links.preferencesUrl });
}

async function goldenEdition(kind: 'story' | 'digest') {
  const list = content.site.lists[0]!;
  return compileEdition(templates, composeEdition(content.site, list, kind, content.stories, NOW));
}

describe('the golden story through the email renderer', () => {
  it('renders the full story HTML and text with every feature, escaped', async () => {
    const edition = await goldenEdition('story');
    const html = fillSlots(edition.html, escapeValuesForHtml(valuesFor(7, 'Ann', 'ann@example.com')));
    // Text from stories is escaped; the body's hostile HTML never survives.
    expect(html).not.toMatch(/<script|onclick|never reaches a reader/);
    expect(html).toContain('Tom &amp; Jerry &lt;script&gt;');
    expect(html).toContain('Привіт, світе 🎉');
    expect(html).toContain('<h2>First section: lists &amp; quotes</h2>');
    expect(html).toContain('Does &lt;markup&gt; in a question stay text?');
    expect(html).toContain('alt="A golden test card with &lt;angle&gt; brackets &amp; an ampersand"');
    expect(html).toContain(content.site.postalAddress);
    expect(html).toContain('name="viewport"');
    const text = fillSlots(edition.text, valuesFor(7, 'Ann', 'ann@example.com'));
    expect(text).toContain('Tom & Jerry <script>alert("x")</script> say “hello”'.toLocaleUpperCase());
    expect(text).toContain('FREQUENTLY ASKED QUESTIONS');
    expect(text).toContain('Що з кирилицею?');
    expect(text).toContain('Unsubscribe: https://gazette.example.org/unsubscribe?token=');
    expect(text).toMatchSnapshot('golden-story.txt');
    expect(edition.html.parts.join('\n--slot--\n')).toMatchSnapshot('golden-story.html');
  });

  it('fills each recipient with their own signed links, and escapes their values', async () => {
    const edition = await goldenEdition('digest');
    const ann = valuesFor(1, 'Ann <b>bold</b>', 'ann@example.com');
    const bob = valuesFor(2, 'Bob', 'bob@example.com');
    const annHtml = fillSlots(edition.html, escapeValuesForHtml(ann));
    const bobHtml = fillSlots(edition.html, escapeValuesForHtml(bob));
    expect(annHtml).toContain(`href="${ann.unsubscribe_url}"`);
    expect(annHtml).not.toContain(bob.unsubscribe_url);
    expect(bobHtml).toContain(`href="${bob.unsubscribe_url}"`);
    expect(annHtml).toContain('Hello Ann &lt;b&gt;bold&lt;/b&gt;,');
    const token = new URL(ann.unsubscribe_url).searchParams.get('token')!;
    expect(signer.verify(token, 'unsubscribe', NOW)).toMatchObject({ ok: true, subscriberId: 1 });
    expect(annHtml).not.toMatch(/%%gz/);
  });

  it('keeps a 10-story digest under Gmail\'s 102 KB clip', async () => {
    const stories: Record<string, string> = {};
    for (let i = 0; i < 10; i++) {
      const image = `'{url: "https://img.example.org/${i}.jpg", alt: "Picture ${i}", width: 1200, height: 600}'`;
      stories[`s${i}.md`] = storyFile(
        { slug: `story-${i}`, title: `"Story ${i}: ${'a rather long headline '.repeat(3)}"`, summary: `"${'A summary sentence that runs on. '.repeat(6)}"`, image: image.slice(1, -1) },
        `${'Paragraph text. '.repeat(80)}\n\n## Part\n\n${'More text. '.repeat(80)}\n`,
      );
    }
    const big = await loadContent(await tempContentDir(stories));
    const edition = await compileEdition(templates, composeEdition(big.site, big.site.lists[0]!, 'digest', big.stories, NOW));
    const html = fillSlots(edition.html, escapeValuesForHtml(valuesFor(1, 'Ann', 'a@example.com')));
    expect(big.stories).toHaveLength(10);
    expect(Buffer.byteLength(html)).toBeLessThan(102 * 1024);
    expect(html.match(/<img /g)).toHaveLength(10);
  });

  it('names the template and line of a template error', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'gazette-templates-'));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    await cp(TEMPLATES_DIR, dir, { recursive: true });
    const file = path.join(dir, 'email', 'partials', 'footer.mjml.hbs');
    await writeFile(file, `${await readFile(file, 'utf8')}\n{{#if broken}}\n`);
    const error = await loadEmailTemplates(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RenderError);
    expect((error as RenderError).message).toMatch(/templates\/email\/partials\/footer\.mjml\.hbs:\d+: /);
  });
});

describe('the message builder', () => {
  it('builds a message that passes the bulk-sender checks (check-eml.py)', async () => {
    const outDir = await mkdtemp(path.join(os.tmpdir(), 'gazette-preview-'));
    onTestFinished(() => rm(outDir, { recursive: true, force: true }));
    const result = await writePreview({
      content,
      templates,
      tokens: signer,
      signMessage: await createMessageSigner(undefined),
      outDir,
      now: NOW,
      digest: true,
    });
    const report = await checkEml([result.files.eml]);
    expect(report.output).toMatch(/RESULT: PASS/);
    expect(report.code).toBe(0);
    const eml = await readFile(result.files.eml, 'utf8');
    expect(eml).toMatch(/^List-Unsubscribe: <https:\/\/gazette\.example\.org\/unsubscribe\?token=[^>]+>,\r\n <mailto:/m);
    expect(eml.match(/^List-Unsubscribe:/gm)).toHaveLength(1);
    expect(eml).toMatch(/^List-Unsubscribe-Post: List-Unsubscribe=One-Click\r$/m);
    expect(eml).toMatch(/^Subject: The Gazette Dispatch: Tom & Jerry\r\n =\?UTF-8\?Q\?=3Cscript/m);
  });

  it('splices recipient values into quoted-printable without breaking lines', async () => {
    const edition = await goldenEdition('story');
    const template = prepareMessageTemplate(content.site, content.site.lists[0]!, edition);
    const values = valuesFor(99, 'Zoë “Z” Ünal', 'zoe@example.com');
    const raw = renderMessage(template, {
      email: 'zoe@example.com',
      name: 'Zoë “Z” Ünal',
      values,
      unsubscribeUrl: values.unsubscribe_url,
      unsubscribeMailto: 'mailto:u@example.org',
      messageKey: 'd99.e1',
      date: NOW,
    });
    for (const line of raw.split('\r\n')) expect(line.length).toBeLessThanOrEqual(998);
    const body = raw.slice(raw.indexOf('\r\n\r\n'));
    for (const line of body.split('\r\n')) expect(line.length).toBeLessThanOrEqual(76);
    expect(raw).toContain('Date: Thu, 10 Jul 2025 08:00:00 +0000');
    expect(raw).toContain('Message-ID: <d99.e1@gazette.example.org>');
    expect(raw).toMatch(/^To: =\?UTF-8\?Q\?Zo=C3=AB/m);
    const { simpleParser } = await import('mailparser');
    const parsed = await simpleParser(raw);
    expect(parsed.text).toContain('Hello Zoë “Z” Ünal,');
    expect(parsed.html).toContain(`href="${values.unsubscribe_url}"`);
    expect(parsed.html).toBe(fillSlots(edition.html, escapeValuesForHtml(values)));
  });
});

// --- What spam filters and mail clients see in the markup: the hidden preheader, the head styles. ---


/** One element of an HTML document, with its inline style and its ancestors (nearest first). */
interface ParsedElement {
  tag: string;
  attrs: string;
  style: Record<string, string>;
  ancestors: ParsedElement[];
  /** Raw HTML between the end of the opening tag and the matching closing tag. */
  inner: string;
}

const VOID_TAGS = new Set(['area', 'base', 'br', 'col', 'embed', 'hr', 'img', 'input', 'link', 'meta', 'source', 'track', 'wbr']);

/** Every element of `html`, as a browser sees it: comments (and Outlook's conditional markup in them) left out. */
function parseElements(html: string): ParsedElement[] {
  const source = html.replace(/<!--[\s\S]*?-->/g, '');
  const all: ParsedElement[] = [];
  const open: { element: ParsedElement; contentStart: number }[] = [];
  for (const match of source.matchAll(/<(\/?)([a-zA-Z][\w:-]*)((?:"[^"]*"|'[^']*'|[^'">])*)>/g)) {
    const [tagText, closing, name, attrs] = match as unknown as [string, string, string, string];
    const tag = name.toLowerCase();
    if (closing) {
      const at = open.findLastIndex((o) => o.element.tag === tag);
      if (at === -1) continue;
      open[at]!.element.inner = source.slice(open[at]!.contentStart, match.index);
      open.length = at;
      continue;
    }
    const styleText = /\sstyle="([^"]*)"/i.exec(attrs)?.[1] ?? '';
    const style: Record<string, string> = {};
    for (const declaration of styleText.split(';')) {
      const colon = declaration.indexOf(':');
      if (colon > 0) style[declaration.slice(0, colon).trim().toLowerCase()] = declaration.slice(colon + 1).trim().toLowerCase();
    }
    const element: ParsedElement = { tag, attrs, style, ancestors: open.map((o) => o.element).reverse(), inner: '' };
    all.push(element);
    if (!VOID_TAGS.has(tag) && !tagText.endsWith('/>')) open.push({ element, contentStart: match.index + tagText.length });
  }
  return all;
}

const NAMED_COLOURS: Record<string, string> = { white: '#ffffff', black: '#000000', transparent: '' };

/** A CSS colour as [r, g, b]; undefined for none or transparent. Fails on a colour it cannot read, so nothing passes unread. */
function parseColour(value: string | undefined): [number, number, number] | undefined {
  if (value === undefined) return undefined;
  const text = NAMED_COLOURS[value] ?? value;
  if (text === '' || text === 'inherit' || text === 'none') return undefined;
  const hex = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(text)?.[1];
  if (hex) {
    const full = hex.length === 3 ? [...hex].map((c) => c + c).join('') : hex;
    return [0, 2, 4].map((i) => parseInt(full.slice(i, i + 2), 16)) as [number, number, number];
  }
  const rgb = /^rgba?\((\d+),\s*(\d+),\s*(\d+)/.exec(text);
  if (rgb) return [Number(rgb[1]), Number(rgb[2]), Number(rgb[3])];
  throw new Error(`colour "${value}" is not one this test can read`);
}

/** The colour an element paints behind its text: its own background, else the nearest ancestor's, else white. */
function backgroundOf(element: ParsedElement): [number, number, number] {
  for (const node of [element, ...element.ancestors]) {
    const fromStyle = node.style['background-color'] ?? /#[0-9a-f]{3,6}\b|rgba?\([^)]*\)/i.exec(node.style.background ?? '')?.[0];
    const colour = parseColour(fromStyle ?? /\sbgcolor="([^"]*)"/i.exec(node.attrs)?.[1]?.toLowerCase());
    if (colour) return colour;
  }
  return [255, 255, 255];
}

/** WCAG contrast ratio of two colours: 1 for the same colour, 21 for black on white. */
function contrast(a: [number, number, number], b: [number, number, number]): number {
  const luminance = (rgb: [number, number, number]) => {
    const [r, g, bl] = rgb.map((v) => (v / 255 <= 0.03928 ? v / 255 / 12.92 : ((v / 255 + 0.055) / 1.055) ** 2.4)) as [number, number, number];
    return 0.2126 * r + 0.7152 * g + 0.0722 * bl;
  };
  const [light, dark] = [luminance(a), luminance(b)].sort((x, y) => y - x) as [number, number];
  return (light + 0.05) / (dark + 0.05);
}

const decodeEntities = (html: string) =>
  html
    .replace(/&zwnj;/g, '\u200c')
    .replace(/&nbsp;/g, '\u00a0')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#x27;|&#39;/g, "'")
    .replace(/&#x([0-9a-f]+);/gi, (_, hex: string) => String.fromCodePoint(parseInt(hex, 16)))
    .replace(/&amp;/g, '&');

/** The CSS rules of every <style> in the head (inside @media too), as selector lists and declarations. */
function headStyleRules(html: string): { selectors: string[]; declarations: string }[] {
  const head = html.slice(0, html.search(/<body[\s>]/i));
  const css = [...head.matchAll(/<style[^>]*>([\s\S]*?)<\/style>/gi)].map((m) => m[1]!.replace(/\/\*[\s\S]*?\*\//g, '')).join('\n');
  return [...css.matchAll(/([^{}]+)\{([^{}]*)\}/g)].map((m) => ({
    selectors: m[1]!.split(',').map((s) => s.trim()),
    declarations: m[2]!.trim(),
  }));
}

describe('the email markup spam filters and mail clients read', () => {
  async function confirmNotice() {
    return compileEmail(templates.notice, {
      site: content.site,
      subject: `Confirm your subscription to ${content.site.title}`,
      preheader: 'One click and you are in.',
      lead: `Please confirm that you want to receive The Dispatch at ${slotMarker('email')}.`,
      button: 'Confirm my subscription',
      note: 'The link works for 7 days.',
    });
  }

  const emails = {
    'story edition': () => goldenEdition('story'),
    'digest edition': () => goldenEdition('digest'),
    'confirmation notice': confirmNotice,
  };

  it.each(Object.keys(emails) as (keyof typeof emails)[])('hides the %s preheader once, in a colour unlike its background', async (name) => {
    const compiled = await emails[name]();
    const html = fillSlots(compiled.html, escapeValuesForHtml({ ...valuesFor(3, 'Ann', 'ann@example.com'), action_url: 'https://gazette.example.org/confirm?token=t' }));
    const body = parseElements(html.slice(html.search(/<body[\s>]/i)));
    const hidden = body.filter((el) => el.style.display === 'none');
    expect(hidden, 'exactly one hidden element (the preheader): MJML’s <mj-preview> would add a second').toHaveLength(1);
    const preheader = hidden[0]!;
    // HTML_FONT_LOW_CONTRAST: text in (nearly) the colour it sits on. Checked for every coloured element, preheader first.
    for (const el of [preheader, ...body.filter((e) => e.style.color && e !== preheader)]) {
      const colour = parseColour(el.style.color);
      expect(colour, `<${el.tag}${el.attrs.slice(0, 80)}> needs a text colour`).toBeDefined();
      const ratio = contrast(colour!, backgroundOf(el));
      expect(ratio, `<${el.tag}${el.attrs.slice(0, 120)}> has text too close to its background (contrast ${ratio.toFixed(2)})`).toBeGreaterThanOrEqual(3);
    }
    expect(preheader.style).toMatchObject({ 'max-height': '0', overflow: 'hidden', 'mso-hide': 'all', 'font-size': '1px', 'line-height': '1px', opacity: '0' });
    // The preheader, then &zwnj;&nbsp; pairs, so clients fill the rest of the preview with nothing rather than the header.
    expect(decodeEntities(preheader.inner)).toMatch(new RegExp(`^${compiled.preheader.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(\u200c\u00a0){40,}$`));
  });

  it.each(Object.keys(emails) as (keyof typeof emails)[])('scopes every table, row and cell rule of the %s head styles to a class', async (name) => {
    const html = (await emails[name]()).html.parts.join('');
    const rules = headStyleRules(html);
    expect(rules.length).toBeGreaterThan(0);
    // MJML's own reset (`table, td { border-collapse:collapse; mso-table-*: 0pt }`) draws nothing and may stay unscoped.
    const drawsNothing = (declarations: string) =>
      declarations.split(';').every((d) => !d.trim() || /^(border-collapse|mso-[\w-]+)\s*:/i.test(d.trim()));
    const unscoped = rules.flatMap(({ selectors, declarations }) =>
      selectors
        .filter((selector) => /(^|[\s>+~])(table|tr|th|td)(?=$|[:[\s>+~])/i.test(selector) && !selector.includes('.'))
        .filter(() => !drawsNothing(declarations))
        .map((selector) => `${selector} { ${declarations} }`),
    );
    expect(unscoped, 'rules like these land on MJML’s layout tables too').toEqual([]);
  });

  it('keeps the content rules for tables that come from the story', async () => {
    const dir = await tempContentDir({
      'table.md': storyFile({ slug: 'table-story' }, 'Intro.\n\n## Figures\n\n| Port | Tonnes |\n|---|---|\n| Kaub | 120 |\n'),
    });
    try {
      const withTable = await loadContent(dir);
      const edition = await compileEdition(templates, composeEdition(withTable.site, withTable.site.lists[0]!, 'story', withTable.stories, NOW));
      const elements = parseElements(edition.html.parts.join(''));
      const inStoryBody = (el: ParsedElement) => el.ancestors.some((a) => /\sclass="[^"]*\bstory-body\b/.test(a.attrs));
      const tables = elements.filter((el) => el.tag === 'table');
      const content = tables.filter((el) => !/role="presentation"/.test(el.attrs));
      expect(content, 'the Markdown table').toHaveLength(1);
      expect(inStoryBody(content[0]!), 'the Markdown table sits inside .story-body, where the table rules apply').toBe(true);
      expect(tables.filter((el) => /role="presentation"/.test(el.attrs) && inStoryBody(el)), 'MJML layout tables inside .story-body').toEqual([]);
      expect(headStyleRules(edition.html.parts.join('')).some((r) => r.selectors.includes('.story-body td') && /border-bottom/.test(r.declarations))).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
