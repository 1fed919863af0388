import { describe, expect, it } from 'vitest';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { escapeMarkup } from '../../src/feed/clean-text.ts';
import { buildRss } from '../../src/feed/rss.ts';
import { makeSite, makeStory } from '../fixtures/feed-stories/make-story.ts';

const RFC_822 = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} (GMT|[+-]\d{4})$/;
const NOW = new Date('2025-06-01T12:00:00Z');
const NASTY = `Tom & Jerry <script>alert("x")</script> "quotes" 'apos' 🎉 Привіт`;

interface XmlNode {
  [key: string]: unknown;
}

/** Checks well-formedness, then parses RSS keeping attributes and every text as a string. */
function parse(xml: string): { channel: XmlNode; items: XmlNode[]; root: XmlNode } {
  expect(XMLValidator.validate(xml)).toBe(true);
  const parser = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: '@_',
    parseTagValue: false,
    parseAttributeValue: false,
    // Character references (&#x26;) are XML; this parser decodes them only when told to.
    htmlEntities: true,
    isArray: (name) => ['item', 'category', 'atom:link', 'enclosure', 'dc:creator', 'author'].includes(name),
  });
  const root = (parser.parse(xml) as { rss: XmlNode }).rss;
  const channel = root.channel as XmlNode;
  return { root, channel, items: (channel.item as XmlNode[] | undefined) ?? [] };
}

const site = makeSite();
const golden = makeStory({
  slug: 'golden',
  title: 'Golden story',
  date: '2025-05-20T10:30:00+03:00',
  author: 'Олена Пчілка',
  tags: ['Energy', 'Україна'],
  image: { url: 'https://img.example.org/pylons.webp?w=1200', alt: 'Pylons' },
  faq: [{ q: 'Why now?', a: 'Because the grid & the <winter> met.' }],
});
const older = makeStory({ slug: 'older', date: '2025-01-02T08:00:00Z', image: { url: 'https://img.example.org/a.PNG', alt: 'A' } });

describe('buildRss', () => {
  const xml = buildRss(site, [golden, older], { selfUrl: 'https://news.example.org/rss.xml', now: NOW });
  const { root, channel, items } = parse(xml);

  it('writes the channel fields', () => {
    expect(root['@_version']).toBe('2.0');
    expect(channel.title).toBe('Test Gazette');
    expect(channel.link).toBe('https://news.example.org/');
    expect(channel.description).toBe('Stories for tests & more');
    expect(channel.language).toBe('en');
    expect(channel.ttl).toBe('60');
    expect(channel.generator).toBe('Gazette');
    expect(channel.lastBuildDate).toMatch(RFC_822);
  });

  it('uses the newest story date as lastBuildDate, so builds are reproducible', () => {
    expect(channel.lastBuildDate).toBe(golden.date.toUTCString());
    expect(buildRss(site, [golden, older], { selfUrl: 'https://x.example/rss.xml', now: new Date() })).toContain(
      `<lastBuildDate>${golden.date.toUTCString()}</lastBuildDate>`,
    );
  });

  it('falls back to now for lastBuildDate when there are no stories', () => {
    const empty = parse(buildRss(site, [], { selfUrl: 'https://news.example.org/rss.xml', now: NOW }));
    expect(empty.channel.lastBuildDate).toBe(NOW.toUTCString());
    expect(empty.items).toHaveLength(0);
  });

  it('links to itself with atom:link rel=self', () => {
    expect(root['@_xmlns:atom']).toBe('http://www.w3.org/2005/Atom');
    const links = channel['atom:link'] as XmlNode[];
    expect(links).toEqual([{ '@_href': 'https://news.example.org/rss.xml', '@_rel': 'self', '@_type': 'application/rss+xml' }]);
  });

  it('writes items with absolute links, permalink guids and RFC 822 dates', () => {
    expect(items.map((item) => item.title)).toEqual(['Golden story', 'Story older']);
    for (const [i, story] of [golden, older].entries()) {
      const item = items[i]!;
      expect(item.link).toBe(story.url);
      expect(item.link).toMatch(/^https:\/\/news\.example\.org\//);
      expect(item.guid).toEqual({ '#text': story.url, '@_isPermaLink': 'true' });
      expect(item.pubDate).toMatch(RFC_822);
      expect(new Date(item.pubDate as string).getTime()).toBe(story.date.getTime());
    }
  });

  it('writes the author as dc:creator, never as a bare-name <author>', () => {
    expect(root['@_xmlns:dc']).toBe('http://purl.org/dc/elements/1.1/');
    expect(items[0]!['dc:creator']).toEqual(['Олена Пчілка']);
    expect(items[0]!.author).toBeUndefined();
    expect(channel.author).toBeUndefined();
  });

  it('writes tags as categories and the summary as description', () => {
    expect(items[0]!.category).toEqual(['Energy', 'Україна']);
    expect(items[1]!.category).toBeUndefined();
    expect(items[0]!.description).toBe(golden.summary);
  });

  it('carries the full HTML, sections and FAQ, in content:encoded', () => {
    expect(root['@_xmlns:content']).toBe('http://purl.org/rss/1.0/modules/content/');
    const html = items[0]!['content:encoded'] as string;
    expect(html).toBe(golden.contentHtml);
    expect(html).toContain('<h2>First section</h2>');
    expect(html).toContain('Section <strong>one</strong> text.');
    expect(html).toContain('<h2>Frequently Asked Questions</h2>');
    expect(html).toContain('<h3>Why now?</h3>');
    expect(html).toContain('Because the grid &amp; the &lt;winter&gt; met.');
  });

  it('attaches the image as an enclosure with a type guessed from its extension', () => {
    expect(items[0]!.enclosure).toEqual([{ '@_url': 'https://img.example.org/pylons.webp?w=1200', '@_type': 'image/webp', '@_length': '0' }]);
    expect((items[1]!.enclosure as XmlNode[])[0]!['@_type']).toBe('image/png');
    const plain = makeStory({ slug: 'plain' });
    expect(parse(buildRss(site, [plain], { selfUrl: 'https://news.example.org/rss.xml', now: NOW })).items[0]!.enclosure).toBeUndefined();
  });

  it('round-trips markup characters, quotes, emoji and Cyrillic exactly', () => {
    const story = makeStory({ slug: 'nasty', title: NASTY, summary: `${NASTY} ]]> end`, author: NASTY, tags: [NASTY] });
    const out = buildRss(makeSite({ title: NASTY, description: NASTY }), [story], { selfUrl: 'https://news.example.org/rss.xml', now: NOW });
    // Inside CDATA the markup is text; outside it nothing may look like a tag.
    expect(out.replace(/<!\[CDATA\[[\s\S]*?\]\]>/g, '')).not.toContain('<script>');
    const parsed = parse(out);
    expect(parsed.channel.title).toBe(NASTY);
    expect(parsed.channel.description).toBe(NASTY);
    const item = parsed.items[0]!;
    // Title and summary are plain text that readers take for HTML: escaped once (see the describe below).
    expect(item.title).toBe(escapeMarkup(NASTY));
    expect(item.description).toBe(escapeMarkup(`${NASTY} ]]> end`));
    expect(item['dc:creator']).toEqual([NASTY]);
    expect(item.category).toEqual([NASTY]);
  });

  it('strips control characters XML cannot carry, keeping tabs and newlines', () => {
    const story = makeStory({ slug: 'ctrl', title: 'Bell\u0007 and\u0000 null\u001B', summary: 'tab\there\nline\u000Bvt' });
    const out = buildRss(site, [story], { selfUrl: 'https://news.example.org/rss.xml', now: NOW });
    expect(out).not.toMatch(/[\u0000-\u0008\u000B\u000C\u000E-\u001F]/);
    const item = parse(out).items[0]!;
    expect(item.title).toBe('Bell and null');
    expect(item.description).toBe('tab\there\nlinevt');
  });

  it('keeps only the newest site.feed.limit stories', () => {
    const stories = Array.from({ length: 5 }, (_, i) => makeStory({ slug: `s${i}`, date: `2025-01-0${9 - i}T00:00:00Z` }));
    const limited = parse(buildRss(makeSite({ feed: { limit: 3, ttlMinutes: 15 } }), stories, { selfUrl: 'https://news.example.org/rss.xml', now: NOW }));
    expect(limited.items.map((item) => item.link)).toEqual(stories.slice(0, 3).map((story) => story.url));
    expect(limited.channel.ttl).toBe('15');
  });

  it('uses the given title instead of the site title', () => {
    const out = parse(buildRss(site, [golden], { selfUrl: 'https://news.example.org/tags/energy.xml', title: 'Test Gazette — Energy', now: NOW }));
    expect(out.channel.title).toBe('Test Gazette — Energy');
  });
});

describe('buildRss on a hostile story, as a feed reader and the W3C validator read it', () => {
  const HOSTILE = 'Tom & Jerry <script>alert("x")</script>';
  const SUMMARY = 'Markup <b>bold</b>, <script>alert(1)</script> & <i>more</i> ]]> end';
  const story = makeStory({ slug: 'hostile', title: HOSTILE, summary: SUMMARY });
  const plain = makeStory({ slug: 'plain', title: 'Costs $& $1 rise, 5 > 3', date: '2025-02-01T09:00:00Z' });
  const xml = buildRss(site, [story, plain], { selfUrl: 'https://news.example.org/rss.xml', now: NOW });
  const { items } = parse(xml);
  /** What a reader shows of a title or description: the XML text read as HTML. */
  const shown = (html: string) => html.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
  /** The raw line each item's <title> is on: the validator looks there for the RSS Profile's &#x marker. */
  const titleLines = xml.split('\n').filter((line) => line.trimStart().startsWith('<title>') && !line.includes('CDATA'));

  it('writes the title escaped once, so the reader shows it as typed: not stripped, not double-escaped', () => {
    expect(items[0]!.title).toBe('Tom &amp; Jerry &lt;script&gt;alert("x")&lt;/script&gt;');
    expect(shown(items[0]!.title as string)).toBe(HOSTILE);
    expect(titleLines[0]).toBe('      <title>Tom &#x26;amp; Jerry &#x26;lt;script&#x26;gt;alert("x")&#x26;lt;/script&#x26;gt;</title>');
    // Nothing in the document is a tag but the feed's own, and no title is left in CDATA.
    expect(xml.replace(/<!\[CDATA\[[\s\S]*?\]\]>/g, '')).not.toMatch(/<script|<\/script/);
    expect(xml).not.toContain('<title><![CDATA[Tom');
  });

  it('escapes the summary once in the description: <…> shows as text, nothing runs', () => {
    expect(items[0]!.description).toBe('Markup &lt;b&gt;bold&lt;/b&gt;, &lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;i&gt;more&lt;/i&gt; ]]&gt; end');
    expect(shown(items[0]!.description as string)).toBe(SUMMARY);
  });

  it('treats & and > in any title the same way, keeps $ patterns intact, and writes a title without them as is', () => {
    expect(shown(items[1]!.title as string)).toBe('Costs $& $1 rise, 5 > 3');
    expect(titleLines[1]).toBe('      <title>Costs $&#x26;amp; $1 rise, 5 &#x26;gt; 3</title>');
    const simple = buildRss(site, [makeStory({ slug: 'simple', title: 'Golden story' })], { selfUrl: 'https://news.example.org/rss.xml', now: NOW });
    expect(simple).toContain('      <title>Golden story</title>\n');
  });

  // The feed validator's rules (w3c/feedvalidator, validators.py): a title is `nonhtml`, a description `safeHtml`.
  it('gives the validator nothing to warn about', () => {
    const HTML_TAGS = ['a', 'b', 'i', 'p', 'em', 'strong', 'script', 'span', 'div'];
    const HTML_ENTITIES = ['amp', 'lt', 'gt', 'quot', 'apos', 'nbsp'];
    items.forEach((item, i) => {
      const title = item.title as string;
      const line = titleLines[i]!;
      // ContainsHTML: an end tag of HTML in the text.
      expect([...title.matchAll(/<\/(\w+)>/g)].filter((m) => HTML_TAGS.includes(m[1]!.toLowerCase())), title).toEqual([]);
      // ContainsHTML: an entity in the text, unless the line says it is meant with a hexadecimal reference.
      const entities = [...title.matchAll(/&(#?\w+)/g)].filter((m) => HTML_ENTITIES.includes(m[1]!) || !/^[a-z]+$/i.test(m[1]!));
      if (entities.length > 0) expect(line, title).toContain('&#x');
      // CharacterData: a character reference or a tag start in the text, same exception.
      if (/&#[x0-9]|<[/a-zA-Z]/.test(title)) expect(line, title).toContain('&#x');
      // SecurityRisk: a script (or any tag) in the description's HTML.
      expect(item.description as string).not.toMatch(/<[a-z/!]/i);
    });
  });
});
