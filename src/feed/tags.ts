import { createHash } from 'node:crypto';
import type { Story } from '../model/content.ts';

// Keeps file names well under the 255-byte limit even in two-byte scripts.
const MAX_SLUG_LENGTH = 80;

/** A tag's stories, under the tag as first written. */
export interface TagGroup {
  tag: string;
  stories: Story[];
}

/** Turns a tag into a file-name-safe slug: lowercase letters and digits of any script, joined by hyphens. */
export function tagSlug(tag: string): string {
  const slug = tag
    .normalize('NFKD')
    // Accents go from Latin letters only (café → cafe); in Cyrillic the marks make other letters (ї, й).
    .replace(/(\p{Script=Latin})\p{M}+/gu, '$1')
    .normalize('NFC')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, '-')
    .slice(0, MAX_SLUG_LENGTH)
    .replace(/^-+|-+$/g, '');
  return slug || `tag-${createHash('sha256').update(tag).digest('hex').slice(0, 8)}`;
}

/** Groups stories by tag slug, keeping their order; tags that differ only in case or punctuation share a group. */
export function groupByTag(stories: Story[]): Map<string, TagGroup> {
  const groups = new Map<string, TagGroup>();
  for (const story of stories) {
    for (const tag of story.tags) {
      const slug = tagSlug(tag);
      const group = groups.get(slug) ?? { tag, stories: [] };
      if (!group.stories.includes(story)) group.stories.push(story);
      groups.set(slug, group);
    }
  }
  return groups;
}
