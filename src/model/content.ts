import type { ContentIssue } from '../errors.ts';

/** A mailing list declared in site.yaml. */
export interface MailingList {
  slug: string;
  name: string;
  description: string;
}

/** The newsletter's identity, from content/site.yaml. */
export interface Site {
  title: string;
  description: string;
  /** Absolute URL of the public site, no trailing slash. */
  baseUrl: string;
  language: string;
  /** IANA zone dates are shown in. */
  timezone: string;
  sender: { name: string; address: string; replyTo: string | undefined };
  postalAddress: string;
  /** Who hears of trouble (a failed scheduled send): site.yaml's editors, else the reply-to, else the sender. */
  editors: string[];
  lists: MailingList[];
  feed: { limit: number; ttlMinutes: number };
  /** The look pages and emails share: the accent colour (#rrggbb) and an optional logo (absolute URL). */
  theme: { accent: string; logoUrl: string | undefined };
  /** Where bounces and unsubscribes by mail go (GAZETTE_BOUNCE_DOMAIN); undefined means the sender's domain. */
  bounceDomain?: string | undefined;
}

/**
 * Who an edition is sent as, to which list, and where its links lead: frozen when the edition is
 * made, so a resend is identical and a worker needs no content/ checkout.
 */
export interface EditionOrigin {
  baseUrl: string;
  sender: Site['sender'];
  list: MailingList;
  /** The bounce domain of its return paths and mailto: unsubscribe; undefined on editions made before it was kept. */
  bounceDomain?: string | undefined;
}

/** An image shown with a story: absolute URL and alt text are required. */
export interface StoryImage {
  url: string;
  alt: string;
  width: number | undefined;
  height: number | undefined;
}

/** One question and answer of a story's FAQ. */
export interface FaqEntry {
  q: string;
  a: string;
}

/** A `##` section of a story body, already rendered to sanitized HTML. */
export interface StorySection {
  heading: string;
  html: string;
}

/** A validated, rendered story: what feeds and emails are made from. */
export interface Story {
  slug: string;
  title: string;
  /** Publication instant. */
  date: Date;
  author: string;
  summary: string;
  tags: string[];
  image: StoryImage | undefined;
  faq: FaqEntry[];
  draft: boolean;
  /** Absolute URL of the story's web page. */
  url: string;
  /** Sanitized HTML of the Markdown body (intro and sections). */
  bodyHtml: string;
  /** Text before the first `##` heading, as sanitized HTML. */
  introHtml: string;
  sections: StorySection[];
  /** Body plus the FAQ, as sanitized HTML: what feed readers get in full. */
  contentHtml: string;
  /** Path of the source file, relative to the content folder. */
  sourceFile: string;
}

/** Everything `content/` holds once loaded and validated. */
export interface Content {
  site: Site;
  /** Every valid story, drafts and future ones included, newest first. */
  stories: Story[];
  /** Problems of the story files left out (empty when every file is valid). */
  problems: ContentIssue[];
}

/** Where a story stands for an editor: a draft, due later (scheduled), or out (published). */
export type StoryState = 'draft' | 'scheduled' | 'published';

/** The story's state at `now`. */
export function storyState(story: Pick<Story, 'draft' | 'date'>, now: Date): StoryState {
  return story.draft ? 'draft' : story.date.getTime() > now.getTime() ? 'scheduled' : 'published';
}

/** Stories a reader may see at `now`: not drafts, not dated in the future; newest first. */
export function publishedStories(content: Content, now: Date): Story[] {
  return content.stories.filter((story) => !story.draft && story.date.getTime() <= now.getTime());
}
