import type { SiteSnapshot } from './feed-cache.ts';
import { storyCard } from './story-links.ts';
import type { ServerContext } from './server.ts';

/** How many of the latest stories the 404 page offers instead. */
const NOT_FOUND_STORIES = 3;

/** The 404 page in the site's look: what was not found, and ways on (home, archive, the latest stories). */
export function renderNotFound(context: ServerContext, snapshot: SiteSnapshot, detail: string): string {
  return context.web.render('not-found', snapshot.content.site, {
    title: 'Page not found',
    detail,
    stories: snapshot.stories.slice(0, NOT_FOUND_STORIES).map(storyCard),
  });
}
