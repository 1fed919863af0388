import { describe, expect, it } from 'vitest';
import { buildJsonFeed } from '../../src/feed/json-feed.ts';
import { makeSite, makeStory } from '../fixtures/feed-stories/make-story.ts';

const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$/;

interface JsonFeed {
  version: string;
  title: string;
  home_page_url: string;
  feed_url: string;
  description: string;
  language: string;
  authors: { name: string }[];
  items: Record<string, unknown>[];
}

const site = makeSite();
const golden = makeStory({
  slug: 'golden',
  title: 'Tom & Jerry <b> "q" 🎉 Привіт',
  date: '2025-05-20T10:30:00+03:00',
  author: 'Олена Пчілка',
  tags: ['Energy', 'Україна'],
  image: { url: 'https://img.example.org/pylons.jpg', alt: 'Pylons' },
  faq: [{ q: 'Why now?', a: 'Because.' }],
});
const plain = makeStory({ slug: 'plain', date: '2025-01-02T08:00:00Z' });

describe('buildJsonFeed', () => {
  const text = buildJsonFeed(site, [golden, plain], { selfUrl: 'https://news.example.org/feed.json' });
  const feed = JSON.parse(text) as JsonFeed;

  it('is pretty-printed JSON Feed 1.1 with the top-level fields', () => {
    expect(text).toMatch(/^\{\n {2}"version": "https:\/\/jsonfeed\.org\/version\/1\.1",\n/);
    expect(feed).toMatchObject({
      version: 'https://jsonfeed.org/version/1.1',
      title: 'Test Gazette',
      home_page_url: 'https://news.example.org/',
      feed_url: 'https://news.example.org/feed.json',
      description: 'Stories for tests & more',
      language: 'en',
      authors: [{ name: 'Test Gazette Desk' }],
    });
  });

  it('writes each story as an item', () => {
    expect(feed.items).toHaveLength(2);
    expect(feed.items[0]).toEqual({
      id: golden.url,
      url: golden.url,
      title: golden.title,
      summary: golden.summary,
      content_html: golden.contentHtml,
      date_published: '2025-05-20T07:30:00.000Z',
      authors: [{ name: 'Олена Пчілка' }],
      tags: ['Energy', 'Україна'],
      image: 'https://img.example.org/pylons.jpg',
    });
    expect(feed.items[0]!.content_html).toContain('Frequently Asked Questions');
    for (const item of feed.items) expect(item.date_published).toMatch(ISO_8601);
  });

  it('leaves out tags and image when a story has none', () => {
    expect(feed.items[1]).not.toHaveProperty('tags');
    expect(feed.items[1]).not.toHaveProperty('image');
  });

  it('respects the limit and the title override', () => {
    const limited = JSON.parse(
      buildJsonFeed(makeSite({ feed: { limit: 1, ttlMinutes: 60 } }), [golden, plain], { selfUrl: 'https://x.example/f.json', title: 'Other' }),
    ) as JsonFeed;
    expect(limited.title).toBe('Other');
    expect(limited.items.map((item) => item.id)).toEqual([golden.url]);
  });

  it('has no items, but is valid, when there are no stories', () => {
    expect((JSON.parse(buildJsonFeed(site, [], { selfUrl: 'https://x.example/f.json' })) as JsonFeed).items).toEqual([]);
  });
});
