import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { contrastRatio } from '../../src/server/theme.ts';
import { testServer, type TestServer } from '../helpers/server.ts';

// The public site as a reader finds it, through inject(): the home page, story pages with ways on,
// tag pages, the archive of sent editions, the 404 page, and the one themed stylesheet.

const HTML = 'text/html; charset=utf-8';
const NOW = new Date('2025-07-10T00:00:00Z');

let t: TestServer;
beforeEach(async () => {
  t = await testServer({ now: () => NOW });
});
afterEach(async () => t.close());

const get = (url: string, headers: Record<string, string> = {}) => t.server.inject({ method: 'GET', url, headers });
/** The hrefs of the story cards' headings, in page order. */
const cardLinks = (html: string) => [...html.matchAll(/<h[23]><a href="(\/stories\/[^"]+)">/g)].map((m) => m[1]);

/** Makes an edition of `list` and records it as sent at `sentAt`; returns its id. */
async function sentEdition(list: string, sentAt: Date, story?: string): Promise<number> {
  const { edition } = await t.app.editions.create({ list, digest: story === undefined, story });
  const editions = await t.app.adapters.editions();
  await editions.setStatus(edition.id, 'sending', sentAt);
  await editions.setStatus(edition.id, 'sent', new Date(sentAt.getTime() + 60_000));
  return edition.id;
}

describe('the home page', () => {
  it('leads with the stories, newest first, with their images sized and their tags linking to tag pages', async () => {
    const response = await get('/');
    expect(response.statusCode).toBe(200);
    const html = response.body;
    expect(cardLinks(html)).toEqual([
      '/stories/ceasefire-monitors-explainer',
      '/stories/trump-putin-call-yields-no-breakthrough-on-ukraine',
      '/stories/baltic-cable-repairs',
      '/stories/eu-energy-grid',
      '/stories/grain-corridor-shipping',
    ]);
    // The stories come before the subscribe box, which asks for the email alone.
    expect(html.indexOf('/stories/ceasefire-monitors-explainer')).toBeLessThan(html.indexOf('<form method="post" action="/subscribe"'));
    expect(html).toMatch(/<img class="card-image" src="https:\/\/images\.gazette\.example\.org\/grid-pylons\.jpg" alt="High-voltage pylons against a winter sky" width="1200" height="630"/);
    expect(html).toContain('<a href="/tags/europe">Europe</a>');
    expect(html).toContain('<a href="/tags/ukraine">Ukraine</a>');
    expect(html).not.toMatch(/href="\/tags\/[^"]+\.xml"/);
    // The site's name once, as the page's one h1.
    expect(html.match(/The Gazette Dispatch/g)?.length, 'outside <head>').toBe((html.match(/<head>[\s\S]*<\/head>/)![0].match(/The Gazette Dispatch/g)?.length ?? 0) + 1);
    expect(html.match(/<h1\b/g)).toHaveLength(1);
    expect(html).toMatch(/<h1 class="brand"><a href="\/" aria-current="page">/);
  });

  it('keeps lists and frequency behind a disclosure that opens when one of them is refused', async () => {
    const html = (await get('/')).body;
    expect(html).toMatch(/<details class="subscribe-options">\s*<summary>Choose lists and frequency<\/summary>/);
    for (const field of ['name="email"', 'name="name"', 'name="lists" value="dispatch"', 'name="lists" value="weekly"', 'name="frequency" value="instant"']) expect(html).toContain(field);
    const post = (payload: string) =>
      t.server.inject({ method: 'POST', url: '/subscribe', headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' }, payload });
    expect((await post('email=ann%40example.com&lists=nope')).body).toContain('<details class="subscribe-options" open>');
    expect((await post('email=nope')).body).toContain('<details class="subscribe-options">');
  });
});

describe('GET /tags/:tag', () => {
  it("lists only that tag's stories and links and autodiscovers the tag's feed", async () => {
    const response = await get('/tags/europe');
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe(HTML);
    const html = response.body;
    expect(html).toContain('<h1>Europe</h1>');
    expect(cardLinks(html)).toEqual(['/stories/baltic-cable-repairs', '/stories/eu-energy-grid']);
    expect(html).toContain('<link rel="alternate" type="application/rss+xml" title="The Gazette Dispatch — Europe (RSS)" href="https://gazette.test/tags/europe.xml">');
    // The tag's feed is the first one offered, before the whole site's.
    expect(html.indexOf('/tags/europe.xml')).toBeLessThan(html.indexOf('/rss.xml'));
    expect(html).toContain('<a href="/tags/europe.xml">RSS feed of this tag</a>');
  });

  it('sends the tag as written to its slug, and leaves /tags/x.xml to the feed', async () => {
    const asWritten = await get('/tags/Europe');
    expect(asWritten.statusCode).toBe(301);
    expect(asWritten.headers.location).toBe('/tags/europe');
    const feed = await get('/tags/europe.xml');
    expect(feed.statusCode).toBe(200);
    expect(feed.headers['content-type']).toBe('application/rss+xml; charset=utf-8');
    expect(feed.body).toContain('<title><![CDATA[The Gazette Dispatch — Europe]]></title>');
    // A tag whose slug is "xml" is a page; its feed is /tags/xml.xml.
    expect((await get('/tags/xml')).body).toContain('no stories tagged &quot;xml&quot;');
  });
});

describe('GET /stories/:slug', () => {
  it('offers the previous and next stories, related stories by shared tag, and a subscribe box at the end', async () => {
    const html = (await get('/stories/eu-energy-grid')).body;
    expect(html).toContain('<a class="prev" rel="prev" href="/stories/grain-corridor-shipping">');
    expect(html).toContain('<a class="next" rel="next" href="/stories/baltic-cable-repairs">');
    const related = html.slice(html.indexOf('<h2>Related stories</h2>'));
    expect(cardLinks(related.slice(0, related.indexOf('</section>')))).toEqual(['/stories/baltic-cable-repairs']);
    expect(html.indexOf('<form method="post" action="/subscribe"')).toBeGreaterThan(html.indexOf('<h2>Related stories</h2>'));
    expect(html).toContain('<a href="/tags/energy">Energy</a>');
    expect(html.match(/<h1\b/g)).toHaveLength(1);
  });

  it('ranks related stories by tags in common, then by date, and has no previous story for the oldest', async () => {
    const html = (await get('/stories/grain-corridor-shipping')).body;
    expect(html).not.toContain('rel="prev"');
    expect(html).toContain('<a class="next" rel="next" href="/stories/eu-energy-grid">');
    const related = html.slice(html.indexOf('<h2>Related stories</h2>'), html.indexOf('id="subscribe"'));
    expect(cardLinks(related)).toEqual(['/stories/ceasefire-monitors-explainer', '/stories/trump-putin-call-yields-no-breakthrough-on-ukraine']);
  });
});

describe('GET /editions, the archive', () => {
  it('lists sent editions only, newest first, each linking to its web version', async () => {
    const older = await sentEdition('weekly', new Date('2025-07-06T07:00:00Z'));
    const draft = (await t.app.editions.create({ list: 'dispatch', story: 'baltic-cable-repairs' })).edition.id;
    const newer = await sentEdition('dispatch', new Date('2025-07-08T07:00:00Z'), 'eu-energy-grid');
    const response = await get('/editions');
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe(HTML);
    const links = [...response.body.matchAll(/<h2><a href="(\/editions\/\d+)">([^<]+)<\/a><\/h2>/g)].map((m) => m[1]);
    expect(links).toEqual([`/editions/${newer}`, `/editions/${older}`]);
    expect(response.body).not.toContain(`/editions/${draft}"`);
    expect(response.body).toContain('<time datetime="2025-07-08T07:00:00.000Z">July 8, 2025</time> · The Dispatch');
    expect(response.body).toContain('Weekly Briefing');
    expect((await get(links[0]!)).statusCode).toBe(200);
  });

  it('says so when nothing has been sent yet', async () => {
    expect((await get('/editions')).body).toContain('No editions have been sent yet.');
  });
});

describe('pages that do not exist', () => {
  it("answer 404 with the site's own page, naming what is missing", async () => {
    for (const [url, detail] of [
      ['/no-such-page', 'no page at /no-such-page'],
      ['/stories/no-such-story', 'no story called &quot;no-such-story&quot;'],
      ['/tags/no-such-tag', 'no stories tagged &quot;no-such-tag&quot;'],
      ['/editions/999', 'no edition 999'],
    ]) {
      const response = await get(url!);
      expect(response.statusCode, url).toBe(404);
      expect(response.headers['content-type'], url).toBe(HTML);
      expect(response.body, url).toContain('<h1>Page not found</h1>');
      expect(response.body, url).toContain(detail!);
      expect(response.body, url).toMatch(/<link rel="stylesheet" href="\/assets\/site\.css\?v=[\w-]+">/);
      expect(response.body, url).toContain('<a href="/stories/ceasefire-monitors-explainer">');
    }
  });

  it('stay JSON under /api and /webhooks (an /api URL asks for a token before it says whether it exists)', async () => {
    for (const [url, status, error] of [['/api/no-such-thing', 401, 'unauthorized'], ['/webhooks/no-such-provider', 404, 'not_found']] as const) {
      const response = await get(url);
      expect(response.statusCode, url).toBe(status);
      expect(response.headers['content-type'], url).toMatch(/^application\/json/);
      expect(response.json().error, url).toBe(error);
    }
  });
});

describe('caching', () => {
  it('answers a conditional GET of every new page with 304', async () => {
    await sentEdition('dispatch', new Date('2025-07-08T07:00:00Z'));
    for (const url of ['/', '/stories/eu-energy-grid', '/tags/europe', '/editions']) {
      const first = await get(url);
      expect(first.headers.etag, url).toMatch(/^"[\w-]+"$/);
      const again = await get(url, { 'if-none-match': first.headers.etag as string });
      expect(again.statusCode, url).toBe(304);
      expect(again.body, url).toBe('');
    }
  });

  it('renders the archive again when an edition is sent', async () => {
    const before = await get('/editions');
    await sentEdition('dispatch', new Date('2025-07-08T07:00:00Z'));
    const after = await get('/editions', { 'if-none-match': before.headers.etag as string });
    expect(after.statusCode).toBe(200);
    expect(after.headers.etag).not.toBe(before.headers.etag);
  });

  it('serves one stylesheet, cached for good at the address pages link, with ETag and 304', async () => {
    const href = /<link rel="stylesheet" href="([^"]+)">/.exec((await get('/')).body)![1]!;
    expect(href).toMatch(/^\/assets\/site\.css\?v=[\w-]+$/);
    const css = await get(href);
    expect(css.statusCode).toBe(200);
    expect(css.headers['content-type']).toBe('text/css; charset=utf-8');
    expect(css.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(css.body).toContain(':root { --accent: #9c2f1f; --button: #9c2f1f; --button-text: #ffffff; }');
    expect(css.body).toContain('prefers-color-scheme: dark');
    expect(css.body).toContain(':focus-visible');
    expect((await get(href, { 'if-none-match': css.headers.etag as string })).statusCode).toBe(304);
    // An old or bare address still gets the stylesheet, for a short while.
    expect((await get('/assets/site.css')).headers['cache-control']).toBe('public, max-age=300');
  });
});

describe("site.yaml's theme", () => {
  it('sets the accent of links and buttons, with readable button text, and puts the logo in the header', async () => {
    const siteFile = path.join(t.contentDir, 'site.yaml');
    await writeFile(siteFile, `${await readFile(siteFile, 'utf8')}\ntheme:\n  accent: "#F5C400"\n  logo_url: "https://gazette.example.org/logo.png"\n`);
    const html = (await get('/')).body;
    expect(html).toContain('<img src="https://gazette.example.org/logo.png" alt="" width="36" height="36"><span>The Gazette Dispatch</span>');
    const css = (await get(/<link rel="stylesheet" href="([^"]+)">/.exec(html)![1]!)).body;
    const [, link, button, text] = /--accent: (#\w+); --button: (#\w+); --button-text: (#\w+);/.exec(css)!;
    expect(button).toBe('#f5c400');
    // A yellow too light for links on the page is darkened for them; buttons keep it, with black text.
    expect(contrastRatio(link!, '#fbfaf7')).toBeGreaterThanOrEqual(4.5);
    expect(text).toBe('#000000');
    expect(contrastRatio(button!, text!)).toBeGreaterThanOrEqual(4.5);
  });
});
