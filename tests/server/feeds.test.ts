import { copyFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createApp, type App } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { FeedCache } from '../../src/server/feed-cache.ts';
import { backdate, GOLDEN_DIR, storyFile, tempContentDir, TEMPLATES_DIR } from '../helpers/content-dir.ts';
import { testServer, type TestServer } from '../helpers/server.ts';

const RSS_TYPE = 'application/rss+xml; charset=utf-8';
const JSON_FEED_TYPE = 'application/feed+json; charset=utf-8';
// The newest published story of the repo's content/ (ceasefire-monitors-explainer).
const NEWEST = new Date('2025-07-05T09:00:00Z');

let clock: Date;
let t: TestServer;

beforeEach(async () => {
  clock = new Date('2025-07-10T00:00:00Z');
  t = await testServer({ now: () => clock });
});

afterEach(async () => t.close());

const get = (url: string, headers: Record<string, string> = {}) => t.server.inject({ method: 'GET', url, headers });

/** Polls `probe` until it returns a value, for at most `ms`. */
async function eventually<T>(probe: () => Promise<T | undefined>, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const rssTitles = (xml: string): string[] => {
  const items: unknown = new XMLParser().parse(xml).rss.channel.item ?? [];
  return (Array.isArray(items) ? items : [items]).map((item: { title: string }) => item.title);
};

describe('GET /rss.xml and /feed.json', () => {
  it('serves RSS 2.0 with its content type, validators and Cache-Control', async () => {
    const response = await get('/rss.xml');
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe(RSS_TYPE);
    expect(XMLValidator.validate(response.body)).toBe(true);
    expect(rssTitles(response.body)).toContain('Explainer: how a ceasefire would actually be monitored');
    expect(response.body).not.toContain('Sanctions tracker');
    expect(response.body).toContain('https://gazette.test/rss.xml');
    expect(response.headers.etag).toMatch(/^"[\w-]+"$/);
    expect(response.headers['last-modified']).toBe(NEWEST.toUTCString());
    expect(response.headers['cache-control']).toBe('public, max-age=300');
  });

  it('serves JSON Feed 1.1 with its own ETag', async () => {
    const response = await get('/feed.json');
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe(JSON_FEED_TYPE);
    const feed = JSON.parse(response.body) as { version: string; items: { title: string }[] };
    expect(feed.version).toBe('https://jsonfeed.org/version/1.1');
    expect(feed.items.map((item) => item.title)).toContain('Europe\'s grid links hold through the cold snap');
    expect(response.headers.etag).toMatch(/^"[\w-]+"$/);
    expect(response.headers.etag).not.toBe((await get('/rss.xml')).headers.etag);
    expect(response.headers['last-modified']).toBe(NEWEST.toUTCString());
  });

  it('answers HEAD with the headers and no body', async () => {
    const response = await t.server.inject({ method: 'HEAD', url: '/rss.xml' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe(RSS_TYPE);
    expect(response.headers.etag).toMatch(/^"/);
    expect(response.body).toBe('');
  });
});

describe('conditional GET', () => {
  it('answers 304 with an empty body when If-None-Match names the ETag: exactly, in a list, weak, or *', async () => {
    const { etag } = (await get('/rss.xml')).headers as { etag: string };
    for (const ifNoneMatch of [etag, `"other", ${etag}`, `W/${etag}`, `W/"x" ,W/${etag}`, '*']) {
      const response = await get('/rss.xml', { 'if-none-match': ifNoneMatch });
      expect(response.statusCode, ifNoneMatch).toBe(304);
      expect(response.body).toBe('');
      expect(response.headers.etag).toBe(etag);
      expect(response.headers['cache-control']).toBe('public, max-age=300');
    }
  });

  it('answers 200 when the ETag differs, even if If-Modified-Since alone would allow 304', async () => {
    const response = await get('/rss.xml', { 'if-none-match': '"stale", W/"older"', 'if-modified-since': clock.toUTCString() });
    expect(response.statusCode).toBe(200);
    expect(XMLValidator.validate(response.body)).toBe(true);
  });

  it('answers 304 when If-Modified-Since is the Last-Modified or later, 200 when earlier', async () => {
    const { 'last-modified': lastModified } = (await get('/feed.json')).headers as { 'last-modified': string };
    expect((await get('/feed.json', { 'if-modified-since': lastModified })).statusCode).toBe(304);
    expect((await get('/feed.json', { 'if-modified-since': new Date(NEWEST.getTime() + 60_000).toUTCString() })).statusCode).toBe(304);
    expect((await get('/feed.json', { 'if-modified-since': new Date(NEWEST.getTime() - 1000).toUTCString() })).statusCode).toBe(200);
    expect((await get('/feed.json', { 'if-modified-since': 'not a date' })).statusCode).toBe(200);
  });
});

describe('GET /tags/<tag>.xml', () => {
  it('serves a tag feed holding only that tag\'s stories', async () => {
    const response = await get('/tags/energy.xml');
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe(RSS_TYPE);
    expect(rssTitles(response.body)).toEqual(["Europe's grid links hold through the cold snap"]);
  });

  it('answers an unknown tag with 404 naming it', async () => {
    const page = await get('/tags/no-such-tag.xml');
    expect(page.statusCode).toBe(404);
    expect(page.body).toContain('no feed for the tag &quot;no-such-tag&quot;');
    const json = await get('/tags/no-such-tag.xml', { accept: 'application/json' });
    expect(json.statusCode).toBe(404);
    expect(JSON.parse(json.body)).toEqual({ error: 'not_found', message: 'no feed for the tag "no-such-tag"' });
  });

  it('serves a Cyrillic tag at its percent-encoded URL and redirects the tag as written to it', async () => {
    await copyFile(path.join(GOLDEN_DIR, 'stories', 'golden.md'), path.join(t.contentDir, 'stories', 'golden.md'));
    const url = `/tags/${encodeURIComponent('україна')}.xml`;
    const response = await get(url);
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe(RSS_TYPE);
    expect(XMLValidator.validate(response.body)).toBe(true);
    expect(new XMLParser().parse(response.body).rss.channel.title).toContain('Україна');
    const asWritten = await get(`/tags/${encodeURIComponent('Україна')}.xml`);
    expect(asWritten.statusCode).toBe(301);
    expect(asWritten.headers.location).toBe(url);
  });
});

describe('content changes while the server runs', () => {
  it('serves a story written to content/ within a few seconds, under a new ETag', async () => {
    const before = await get('/rss.xml');
    await writeFile(path.join(t.contentDir, 'stories', 'fresh.md'), storyFile({ title: '"Fresh off the press"', date: '2025-07-09T08:00:00Z' }));
    const after = await eventually(async () => {
      const r = await get('/rss.xml');
      return r.body.includes('Fresh off the press') ? r : undefined;
    });
    expect(after.headers.etag).not.toBe(before.headers.etag);
    // The edit happened "now" (after the newest story's date), so it is the last modification.
    expect(after.headers['last-modified']).toBe(clock.toUTCString());
    expect((await get('/rss.xml', { 'if-none-match': before.headers.etag as string })).statusCode).toBe(200);
  });

  it('keeps serving the last good feed while content is invalid, and recovers when it is fixed', async () => {
    const before = await get('/rss.xml');
    const broken = path.join(t.contentDir, 'stories', 'broken.md');
    // Quiet the warning the server's FeedCache prints about the broken file.
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      await writeFile(broken, '---\ntitle: "No date"\n---\nBody.\n');
      // For a second (the watcher reacts within ~100 ms), every answer is the last good feed.
      for (const deadline = Date.now() + 1000; Date.now() < deadline; ) {
        const response = await get('/rss.xml');
        expect(response.statusCode).toBe(200);
        expect(response.headers.etag).toBe(before.headers.etag);
        expect(response.body).toBe(before.body);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await rm(broken);
      await writeFile(path.join(t.contentDir, 'stories', 'fixed.md'), storyFile({ title: '"Fixed at last"', date: '2025-07-09T08:00:00Z' }));
      await eventually(async () => ((await get('/rss.xml')).body.includes('Fixed at last') ? true : undefined));
    } finally {
      warn.mockRestore();
    }
  });

  it('publishes a scheduled story once the clock passes its date, without a restart', async () => {
    const due = new Date('2025-07-11T06:00:00Z');
    await writeFile(path.join(t.contentDir, 'stories', 'scheduled.md'), storyFile({ title: '"Scheduled for later"', date: due.toISOString() }));
    await backdate(t.contentDir); // written long ago: only its date should matter here
    // Written before the first request, so only the clock (not the watcher) can bring it in.
    const before = await get('/rss.xml');
    expect(before.body).not.toContain('Scheduled for later');
    expect((await get('/stories/scheduled')).statusCode).toBe(404);
    expect(before.headers['last-modified']).toBe(NEWEST.toUTCString());
    clock = new Date(due.getTime() + 1000);
    const after = await get('/rss.xml');
    expect(rssTitles(after.body)[0]).toBe('Scheduled for later');
    expect(after.headers['last-modified']).toBe(due.toUTCString());
    expect(after.headers.etag).not.toBe(before.headers.etag);
    expect((await get('/stories/scheduled')).statusCode).toBe(200);
  });
});

describe('content that was never valid', () => {
  it('answers 503 until it is fixed', async () => {
    const dir = await tempContentDir({ 'bad.md': storyFile({ date: '"yesterday"' }) });
    const broken = await testServer({ content: dir, now: () => clock });
    try {
      const response = await broken.server.inject('/rss.xml');
      expect(response.statusCode).toBe(503);
    } finally {
      await broken.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('FeedCache', () => {
  let dir: string;
  let app: App;
  let loads: number;

  beforeEach(async () => {
    dir = await tempContentDir({ 'one.md': storyFile({ title: '"One"' }) });
    const base = createApp(loadConfig({ GAZETTE_CONTENT_DIR: dir, GAZETTE_TEMPLATES_DIR: TEMPLATES_DIR, BASE_URL: 'https://gazette.test' }), {
      now: () => clock,
    });
    loads = 0;
    app = {
      ...base,
      freshContent: () => {
        loads++;
        return base.freshContent();
      },
    };
  });

  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it('shares one build between concurrent callers and then serves from memory', async () => {
    const cache = new FeedCache(app);
    const snapshots = await Promise.all([cache.current(), cache.current(), cache.current()]);
    expect(new Set(snapshots).size).toBe(1);
    expect(await cache.current()).toBe(snapshots[0]);
    expect(loads).toBe(1);
    cache.close();
  });

  it('notices changes by mtime when not watching, at most once per poll interval', async () => {
    const errors: unknown[] = [];
    const cache = new FeedCache(app, { watch: false, pollIntervalMs: 50, onError: (error) => errors.push(error) });
    const first = await cache.current();
    expect(first.stories.map((s) => s.title)).toEqual(['One']);
    await writeFile(path.join(dir, 'stories', 'two.md'), storyFile({ title: '"Two"', date: '2025-07-02T08:00:00Z' }));
    const second = await eventually(async () => {
      const snapshot = await cache.current();
      return snapshot.stories.length === 2 ? snapshot : undefined;
    }, 2000);
    expect(second.stories.map((s) => s.title)).toEqual(['Two', 'One']);
    expect(second.files.get('rss.xml')!.etag).not.toBe(first.files.get('rss.xml')!.etag);
    await writeFile(path.join(dir, 'stories', 'three.md'), 'no front matter');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await cache.current()).toBe(second);
    expect(errors).toHaveLength(1);
    cache.close();
  });
});
