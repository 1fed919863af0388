import RSS from 'rss';
import type { Site, Story } from '../model/content.ts';
import { cleanText, escapeMarkup } from './clean-text.ts';
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
  items.forEach((story, i) => feed.item(rssItem(story, i)));
  const lastBuild = items[0]?.date ?? options.now;
  return `${withItemTitles(withLastBuildDate(feed.xml({ indent: '  ' }), lastBuild), items)}\n`;
}

function rssItem(story: Story, index: number): RSS.ItemOptions {
  return {
    // Written by withItemTitles: the rss package puts every title in CDATA, which cannot hold the character references needed.
    title: titlePlaceholder(index),
    // A summary is plain text and readers take a description for HTML: escaped once, `<b>` reads as `<b>`.
    description: escapeMarkup(cleanText(story.summary)),
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

// Readers show an item title as HTML, so a story's title is escaped once for that (`<script>` shows as
// text, not run, not dropped), and that escaped text is written with hexadecimal character references
// instead of CDATA: the RSS Profile's sign that the entities are meant, which the W3C validator
// looks for on the same line before it warns that a title "contains HTML".
function withItemTitles(xml: string, stories: Story[]): string {
  return stories.reduce((out, story, i) => out.replace(`<title><![CDATA[${titlePlaceholder(i)}]]></title>`, () => `<title>${hexEscape(escapeMarkup(cleanText(story.title)))}</title>`), xml);
}

// NUL never survives cleanText, so no title can look like a placeholder.
function titlePlaceholder(index: number): string {
  return `\u0000title-${index}\u0000`;
}

function hexEscape(text: string): string {
  return text.replace(/[&<>]/g, (ch) => `&#x${ch.charCodeAt(0).toString(16).toUpperCase()};`);
}

// rss 1.2.2 always stamps lastBuildDate with the wall clock; the newest story's date keeps the
// output byte-identical between builds of the same content (stable ETags, quiet git diffs).
function withLastBuildDate(xml: string, date: Date): string {
  return xml.replace(/<lastBuildDate>[^<]*<\/lastBuildDate>/, `<lastBuildDate>${date.toUTCString()}</lastBuildDate>`);
}
