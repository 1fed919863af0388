import { copyFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GOLDEN_DIR, storyFile, tempContentDir } from '../helpers/content-dir.ts';
import { testServer, type TestServer } from '../helpers/server.ts';

const HTML = 'text/html; charset=utf-8';

let clock: Date;
let t: TestServer;

beforeEach(async () => {
  clock = new Date('2025-07-10T00:00:00Z');
  t = await testServer({ now: () => clock });
  // Written before the first request: the snapshot is built from these on first use.
  await copyFile(path.join(GOLDEN_DIR, 'stories', 'golden.md'), path.join(t.contentDir, 'stories', 'golden.md'));
  await writeFile(path.join(t.contentDir, 'stories', 'later.md'), storyFile({ title: '"Not yet"', date: '2025-08-01T08:00:00Z' }));
});

afterEach(async () => t.close());

const get = (url: string, headers: Record<string, string> = {}) => t.server.inject({ method: 'GET', url, headers });

function expectSecurityHeaders(headers: Record<string, unknown>): void {
  expect(headers['x-content-type-options']).toBe('nosniff');
  expect(headers['content-security-policy']).toContain("default-src 'self'");
  expect(headers['referrer-policy']).toBe('no-referrer');
}

describe('GET /', () => {
  it('shows the subscribe form, feed autodiscovery and the latest published stories, newest first', async () => {
    const response = await get('/');
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe(HTML);
    expectSecurityHeaders(response.headers);
    const html = response.body;
    expect(html).toMatch(/<form method="post" action="\/subscribe"/);
    expect(html).toContain('<input id="email" name="email" type="email" required');
    expect(html).toContain('<link rel="alternate" type="application/rss+xml" title="The Gazette Dispatch (RSS)" href="https://gazette.test/rss.xml">');
    expect(html).toContain('<link rel="alternate" type="application/feed+json" title="The Gazette Dispatch (JSON Feed)" href="https://gazette.test/feed.json">');
    const links = [...html.matchAll(/<h3><a href="([^"]+)">/g)].map((match) => match[1]);
    expect(links).toEqual([
      '/stories/ceasefire-monitors-explainer',
      '/stories/golden',
      '/stories/trump-putin-call-yields-no-breakthrough-on-ukraine',
      '/stories/baltic-cable-repairs',
      '/stories/eu-energy-grid',
      '/stories/grain-corridor-shipping',
    ]);
    expect(html).toContain('Satellites, drones and observers on the ground');
    expect(html).toContain('<time datetime="2025-07-05T09:00:00.000Z">');
    expect(html).not.toContain('Sanctions tracker');
    expect(html).not.toContain('Not yet');
    expect(html).not.toMatch(/<script/i);
  });

  it('lists at most the ten newest stories', async () => {
    const stories: Record<string, string> = {};
    for (let day = 1; day <= 12; day++) {
      stories[`day-${day}.md`] = storyFile({ title: `"Day ${day}"`, date: `2025-07-${String(day).padStart(2, '0')}T08:00:00Z` });
    }
    const dir = await tempContentDir(stories);
    const many = await testServer({ content: dir, now: () => new Date('2025-08-01T00:00:00Z') });
    try {
      const html = (await many.server.inject('/')).body;
      const titles = [...html.matchAll(/<h3><a href="[^"]+">([^<]+)<\/a>/g)].map((match) => match[1]);
      expect(titles).toEqual(['Day 12', 'Day 11', 'Day 10', 'Day 9', 'Day 8', 'Day 7', 'Day 6', 'Day 5', 'Day 4', 'Day 3']);
    } finally {
      await many.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('answers a conditional GET with 304', async () => {
    const first = await get('/');
    expect(first.headers.etag).toMatch(/^"[\w-]+"$/);
    expect(first.headers['last-modified']).toBeDefined();
    const again = await get('/', { 'if-none-match': first.headers.etag as string });
    expect(again.statusCode).toBe(304);
    expect(again.body).toBe('');
  });
});

describe('GET /stories/:slug', () => {
  it('renders the golden story with every feature, markup escaped and scripts gone', async () => {
    const response = await get('/stories/golden');
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe(HTML);
    expectSecurityHeaders(response.headers);
    const html = response.body;
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/onclick/i);
    expect(html).toContain('<h1>Tom &amp; Jerry &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; say “hello” — Привіт, світе 🎉</h1>');
    expect(html).toContain('<title>Tom &amp; Jerry &lt;script&gt;');
    expect(html).toContain('By Олена O&#x27;Brien &amp; Co');
    expect(html).toContain('alt="A golden test card with &lt;angle&gt; brackets &amp; an ampersand"');
    expect(html).toContain('<h2>First section: lists &amp; quotes</h2>');
    expect(html).toContain('<h2>Второй раздел — code</h2>');
    expect(html).toContain('<h2>Frequently Asked Questions</h2>');
    expect(html).toContain('Що з кирилицею?');
    expect(html).toContain(`href="/tags/${encodeURIComponent('україна')}"`);
    expect(html).toContain('<form method="post" action="/subscribe" class="subscribe-form">');
  });

  it('answers 404 naming the slug for a draft, a story scheduled for later and an unknown slug', async () => {
    for (const slug of ['draft-sanctions-tracker', 'later', 'no-such-story']) {
      const response = await get(`/stories/${slug}`);
      expect(response.statusCode, slug).toBe(404);
      expect(response.headers['content-type']).toBe(HTML);
      expect(response.body).toContain(`no story called &quot;${slug}&quot;`);
      expect(response.body).not.toContain('Sanctions tracker');
    }
  });

  it('escapes a hostile slug in the 404 page', async () => {
    const response = await get(`/stories/${encodeURIComponent('<b>bold</b>')}`);
    expect(response.statusCode).toBe(404);
    expect(response.body).toContain('no story called &quot;&lt;b&gt;bold&lt;/b&gt;&quot;');
    expect(response.body).not.toContain('<b>bold');
  });

  it('shows a scheduled story once its time has come', async () => {
    expect((await get('/stories/later')).statusCode).toBe(404);
    clock = new Date('2025-08-01T08:00:00Z');
    const response = await get('/stories/later');
    expect(response.statusCode).toBe(200);
    expect(response.body).toContain('<h1>Not yet</h1>');
    expect((await get('/')).body).toContain('href="/stories/later"');
  });
});
