import RSS from 'rss';
import type { Site, Story } from '../content/model.ts';
import { cleanText } from './clean-text.ts';
import { imageType } from './image-type.ts';

/** Options of buildRss. */
export interface RssOptions {
  /** Absolute URL the feed is published at (atom:link rel=self). */
  selfUrl: string;
  /** Channel title; default site.title. */
  title?: string | undefined;
  /** Build instant, used as lastBuildDate only when there are no stories. */
  now: Date;
}

/** Builds an RSS 2.0 document of the newest `site.feed.limit` stories (given published, newest first). */
export function buildRss(site: Site, stories: Story[], options: RssOptions): string {
  const items = stories.slice(0, site.feed.limit);
  const feed = new RSS({
    title: cleanText(options.title ?? site.title),
    description: cleanText(site.description),
    site_url: `${site.baseUrl}/`,
    feed_url: options.selfUrl,
    language: site.language,
    ttl: site.feed.ttlMinutes,
    generator: 'Gazette',
    // rss 1.2.2 declares content, dc and atom itself; named here so content:encoded never depends on that.
    custom_namespaces: { content: 'http://purl.org/rss/1.0/modules/content/', dc: 'http://purl.org/dc/elements/1.1/' },
  });
  for (const story of items) feed.item(rssItem(story));
  const lastBuild = items[0]?.date ?? options.now;
  return `${withLastBuildDate(feed.xml({ indent: '  ' }), lastBuild)}\n`;
}

function rssItem(story: Story): RSS.ItemOptions {
  return {
    title: cleanText(story.title),
    description: cleanText(story.summary),
    // With a url and no guid, the rss package writes guid = url with isPermaLink="true".
    url: story.url,
    date: story.date,
    // The rss package writes an item's author as dc:creator: RSS <author> must be an email address.
    author: cleanText(story.author),
    categories: story.tags.map(cleanText),
    // The size is unknown without fetching the image; the package then writes length="0", which validators accept.
    enclosure: story.image ? { url: story.image.url, type: imageType(story.image.url) } : undefined,
    custom_elements: [{ 'content:encoded': { _cdata: cleanText(story.contentHtml) } }],
  };
}

// rss 1.2.2 always stamps lastBuildDate with the wall clock; the newest story's date keeps the
// output byte-identical between builds of the same content (stable ETags, quiet git diffs).
function withLastBuildDate(xml: string, date: Date): string {
  return xml.replace(/<lastBuildDate>[^<]*<\/lastBuildDate>/, `<lastBuildDate>${date.toUTCString()}</lastBuildDate>`);
}
