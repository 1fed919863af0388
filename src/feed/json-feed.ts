import type { Site, Story } from '../model/content.ts';
import { cleanText } from './clean-text.ts';

/** Options of buildJsonFeed. */
export interface JsonFeedOptions {
  /** Absolute URL the feed is published at (feed_url). */
  selfUrl: string;
  /** Feed title; default site.title. */
  title?: string | undefined;
}

interface JsonFeedItem {
  id: string;
  url: string;
  title: string;
  summary: string;
  content_html: string;
  date_published: string;
  authors: { name: string }[];
  tags?: string[];
  image?: string;
}

/** Builds a JSON Feed 1.1 document of the newest `site.feed.limit` stories (given published, newest first). */
export function buildJsonFeed(site: Site, stories: Story[], options: JsonFeedOptions): string {
  const feed = {
    version: 'https://jsonfeed.org/version/1.1',
    title: cleanText(options.title ?? site.title),
    home_page_url: `${site.baseUrl}/`,
    feed_url: options.selfUrl,
    description: cleanText(site.description),
    language: site.language,
    authors: [{ name: cleanText(site.sender.name) }],
    items: stories.slice(0, site.feed.limit).map(jsonItem),
  };
  return `${JSON.stringify(feed, null, 2)}\n`;
}

function jsonItem(story: Story): JsonFeedItem {
  const item: JsonFeedItem = {
    id: story.url,
    url: story.url,
    title: cleanText(story.title),
    summary: cleanText(story.summary),
    content_html: cleanText(story.contentHtml),
    date_published: story.date.toISOString(),
    authors: [{ name: cleanText(story.author) }],
  };
  if (story.tags.length > 0) item.tags = story.tags.map(cleanText);
  if (story.image) item.image = story.image.url;
  return item;
}
