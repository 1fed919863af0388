import type { Kysely } from 'kysely';
import type { Sightings, StoryPublications } from '../edition/story-publications.ts';
import type { Database } from './schema.ts';

/** Rows per statement: keeps IN lists far below SQLite's limits. */
const CHUNK = 500;

/** When stories were first seen a draft and first seen published, in the story_publications table. */
export class PublicationsRepo implements StoryPublications {
  constructor(private readonly db: Kysely<Database>) {}

  async observe(stories: readonly { slug: string; published: boolean }[], at: Date): Promise<Map<string, Sightings>> {
    const found = new Map<string, Sightings>();
    const stamp = at.toISOString();
    for (let i = 0; i < stories.length; i += CHUNK) {
      const chunk = stories.slice(i, i + CHUNK);
      for (const published of [false, true]) {
        const slugs = chunk.filter((s) => s.published === published).map((s) => s.slug);
        if (slugs.length === 0) continue;
        const column = published ? 'published_seen_at' : 'draft_seen_at';
        await this.db
          .insertInto('story_publications')
          .values(slugs.map((story_slug) => ({ story_slug, draft_seen_at: null, published_seen_at: null, [column]: stamp })))
          .onConflict((oc) => oc.column('story_slug').doUpdateSet((eb) => ({ [column]: eb.fn.coalesce(`story_publications.${column}`, eb.val(stamp)) })))
          .execute();
      }
      const rows = await this.db.selectFrom('story_publications').selectAll().where('story_slug', 'in', chunk.map((s) => s.slug)).execute();
      for (const row of rows) {
        found.set(row.story_slug, {
          draft: row.draft_seen_at ? new Date(row.draft_seen_at) : undefined,
          published: row.published_seen_at ? new Date(row.published_seen_at) : undefined,
        });
      }
    }
    return found;
  }
}
