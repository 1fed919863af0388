import type { Site, Story } from '../model/content.ts';
import { buildJsonFeed } from './json-feed.ts';
import { buildRss } from './rss.ts';
import { groupByTag } from './tags.ts';

/** Feed files by path relative to the feeds folder ('rss.xml', 'feed.json', 'tags/<slug>.xml'). */
export type FeedFiles = Map<string, string>;

/** Builds every feed of the site from its published stories, newest first. */
export function buildFeeds(site: Site, stories: Story[], now: Date): FeedFiles {
  const files: FeedFiles = new Map();
  files.set('rss.xml', buildRss(site, stories, { selfUrl: `${site.baseUrl}/rss.xml`, now }));
  files.set('feed.json', buildJsonFeed(site, stories, { selfUrl: `${site.baseUrl}/feed.json` }));
  for (const [slug, group] of groupByTag(stories)) {
    // Slugs may hold non-ASCII letters: the URL carries them percent-encoded, the file name as is.
    const selfUrl = `${site.baseUrl}/tags/${encodeURIComponent(slug)}.xml`;
    files.set(`tags/${slug}.xml`, buildRss(site, group.stories, { selfUrl, title: `${site.title} — ${group.tag}`, now }));
  }
  return files;
}
