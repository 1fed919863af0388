import type { Story } from '../model/content.ts';

/** When a story was first seen a draft, and first seen published (either may be unknown). */
export interface Sightings {
  draft?: Date | undefined;
  published?: Date | undefined;
}

/** What is known of when stories became public: what a digest of "the stories since the last one" reads. */
export interface StoryPublications {
  /** Notes each story as seen, draft or published, at `at` (the first time counts); returns what is known of each. */
  observe(stories: readonly { slug: string; published: boolean }[], at: Date): Promise<Map<string, Sightings>>;
}

/**
 * When a story was published, for digests: its date, unless it was seen a draft first, in which
 * case the later of its date and when it was first seen published. A draft made public long after
 * the date it carries then reaches the next digest instead of none.
 */
export function publishedAt(story: Story, seen: Sightings | undefined): Date {
  if (!seen?.draft || !seen.published) return story.date;
  return seen.published.getTime() > story.date.getTime() ? seen.published : story.date;
}
