import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { loadContent } from '../../src/content/load-content.ts';
import { buildFeeds } from '../../src/feed/build-feeds.ts';
import { tempContentDir } from '../helpers/content-dir.ts';

describe('the golden story through the feeds', () => {
  it('comes out well-formed, escaped and stable', async () => {
    const content = await loadContent(await tempContentDir({}, { withGolden: true }));
    const files = buildFeeds(content.site, content.stories, new Date('2025-07-10T00:00:00Z'));
    const rss = files.get('rss.xml')!;
    expect(XMLValidator.validate(rss)).toBe(true);
    const item = new XMLParser({ ignoreAttributes: false, htmlEntities: true }).parse(rss).rss.channel.item;
    // Escaped once more than XML needs: readers that take the title as HTML show the tags as text,
    // and the W3C validator sees no markup in it.
    expect(item.title).toBe('Tom &amp; Jerry &lt;script&gt;alert("x")&lt;/script&gt; say “hello” — Привіт, світе 🎉');
    expect(item['content:encoded']).toContain('<h2>Frequently Asked Questions</h2>');
    expect(item['content:encoded']).not.toMatch(/<script|onclick/);
    expect([...files.keys()].sort()).toEqual(['feed.json', 'rss.xml', 'tags/c-rust.xml', 'tags/golden.xml', 'tags/україна.xml']);
    expect(rss).toMatchSnapshot('golden-rss.xml');
    expect(files.get('feed.json')).toMatchSnapshot('golden-feed.json');
  });
});
