import type { Story } from '../model/content.ts';
import { groupByTag, tagSlug, type TagGroup } from '../feed/tags.ts';
import type { SiteSnapshot } from './feed-cache.ts';

/** How many related stories a story page shows. */
const RELATED_STORIES = 3;

/** A story as pages list it, its address ready to use. */
export type StoryCard = Story & { href: string };

/** What the pages look up in a snapshot, worked out once per snapshot. */
export interface SiteIndex {
  /** Stories by tag slug, each group newest first, under the tag as first written. */
  tags: Map<string, TagGroup>;
  /** Where each story sits in the snapshot's newest-first list, by slug. */
  position: Map<string, number>;
}

const indexes = new WeakMap<SiteSnapshot, SiteIndex>();

/** The snapshot's tag groups and story positions (built on first use, dropped with the snapshot). */
export function siteIndex(snapshot: SiteSnapshot): SiteIndex {
  let index = indexes.get(snapshot);
  if (!index) {
    index = { tags: groupByTag(snapshot.stories), position: new Map(snapshot.stories.map((story, i) => [story.slug, i])) };
    indexes.set(snapshot, index);
  }
  return index;
}

/** The story with its page's address. */
export function storyCard(story: Story): StoryCard {
  return { ...story, href: `/stories/${encodeURIComponent(story.slug)}` };
}

/** The published stories just older and just newer than `story`, when there are any. */
export function neighbours(snapshot: SiteSnapshot, story: Story): { older: StoryCard | undefined; newer: StoryCard | undefined } {
  const at = siteIndex(snapshot).position.get(story.slug) ?? -1;
  const older = at < 0 ? undefined : snapshot.stories[at + 1];
  const newer = at <= 0 ? undefined : snapshot.stories[at - 1];
  return { older: older && storyCard(older), newer: newer && storyCard(newer) };
}

/** Other stories sharing a tag with `story`: most tags in common first, then newest. */
export function relatedStories(snapshot: SiteSnapshot, story: Story, limit = RELATED_STORIES): StoryCard[] {
  const { tags, position } = siteIndex(snapshot);
  const shared = new Map<Story, number>();
  for (const slug of new Set(story.tags.map(tagSlug))) {
    for (const other of tags.get(slug)?.stories ?? []) {
      if (other !== story) shared.set(other, (shared.get(other) ?? 0) + 1);
    }
  }
  return [...shared]
    .sort(([a, sa], [b, sb]) => sb - sa || (position.get(a.slug) ?? 0) - (position.get(b.slug) ?? 0))
    .slice(0, limit)
    .map(([other]) => storyCard(other));
}
