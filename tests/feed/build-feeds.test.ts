import { describe, expect, it } from 'vitest';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { buildFeeds } from '../../src/feed/build-feeds.ts';
import { makeSite, makeStory } from '../fixtures/feed-stories/make-story.ts';

const NOW = new Date('2025-06-01T12:00:00Z');

interface Channel {
  title: string;
  'atom:link': { '@_href': string; '@_rel': string };
  item?: { link: string }[];
}

function channelOf(xml: string): Channel {
  expect(XMLValidator.validate(xml)).toBe(true);
  const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@_', parseTagValue: false, isArray: (name) => name === 'item' });
  return (parser.parse(xml) as { rss: { channel: Channel } }).rss.channel;
}

describe('buildFeeds', () => {
  const site = makeSite();
  const a = makeStory({ slug: 'a', date: '2025-05-03T00:00:00Z', tags: ['Energy', 'Україна'] });
  const b = makeStory({ slug: 'b', date: '2025-05-02T00:00:00Z', tags: ['C++ & Rust'] });
  const c = makeStory({ slug: 'c', date: '2025-05-01T00:00:00Z', tags: ['Energy'] });
  const files = buildFeeds(site, [a, b, c], NOW);

  it('builds the main feeds and one RSS feed per tag', () => {
    expect([...files.keys()].sort()).toEqual(['feed.json', 'rss.xml', 'tags/c-rust.xml', 'tags/energy.xml', 'tags/україна.xml']);
  });

  it('points each main feed at its own URL', () => {
    const rss = channelOf(files.get('rss.xml')!);
    expect(rss['atom:link']['@_href']).toBe('https://news.example.org/rss.xml');
    expect(rss.item?.map((item) => item.link)).toEqual([a.url, b.url, c.url]);
    const json = JSON.parse(files.get('feed.json')!) as { feed_url: string; items: unknown[] };
    expect(json.feed_url).toBe('https://news.example.org/feed.json');
    expect(json.items).toHaveLength(3);
  });

  it('puts only a tag\'s stories in its feed, titled after the tag', () => {
    const energy = channelOf(files.get('tags/energy.xml')!);
    expect(energy.title).toBe('Test Gazette — Energy');
    expect(energy['atom:link']['@_href']).toBe('https://news.example.org/tags/energy.xml');
    expect(energy.item?.map((item) => item.link)).toEqual([a.url, c.url]);

    const rust = channelOf(files.get('tags/c-rust.xml')!);
    expect(rust.title).toBe('Test Gazette — C++ & Rust');
    expect(rust.item?.map((item) => item.link)).toEqual([b.url]);
  });

  it('percent-encodes non-ASCII tag slugs in the self URL', () => {
    const ukraine = channelOf(files.get('tags/україна.xml')!);
    expect(ukraine['atom:link']['@_href']).toBe(`https://news.example.org/tags/${encodeURIComponent('україна')}.xml`);
    expect(ukraine.title).toBe('Test Gazette — Україна');
    expect(ukraine.item?.map((item) => item.link)).toEqual([a.url]);
  });

  it('is deterministic: the same stories give byte-identical files whatever the clock', () => {
    expect(buildFeeds(site, [a, b, c], new Date('2030-01-01T00:00:00Z'))).toEqual(files);
  });

  it('builds empty main feeds and no tag feeds from no stories', () => {
    expect([...buildFeeds(site, [], NOW).keys()]).toEqual(['rss.xml', 'feed.json']);
  });
});
