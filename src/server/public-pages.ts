import type { FastifyInstance } from 'fastify';
import { NotFoundError } from '../errors.ts';
import type { SiteSnapshot } from './feed-cache.ts';
import { pageCache, sendPage } from './page-cache.ts';
import { neighbours, relatedStories, storyCard } from './story-links.ts';
import { formState, subscribeForm, type FormState } from './subscribe-box.ts';
import type { ServerContext } from './server.ts';

/** How many stories the home page lists. */
const HOME_STORIES = 10;

/** Registers GET / (the latest stories, then the subscribe box) and GET /stories/:slug, rendered once per snapshot. */
export function registerPublicPages(server: FastifyInstance, context: ServerContext): void {
  const { feeds } = context;
  const page = pageCache();

  server.get('/', async (request, reply) => {
    const snapshot = await feeds.current();
    return sendPage(request, reply, snapshot, page(snapshot, '/', () => renderHome(context, snapshot)));
  });

  server.get<{ Params: { slug: string } }>('/stories/:slug', async (request, reply) => {
    const snapshot = await feeds.current();
    const { slug } = request.params;
    // Drafts and stories scheduled for later are not in the snapshot: to a reader they do not exist yet.
    if (!snapshot.storiesBySlug.has(slug)) throw new NotFoundError(`no story called "${slug}"`);
    return sendPage(request, reply, snapshot, page(snapshot, `/stories/${slug}`, () => renderStory(context, snapshot, slug)));
  });
}

/**
 * The home page again after a refused subscribe (uncached): what was typed kept, the error beside
 * the field its message names (`email: …`, `lists: …`), the field marked invalid for assistive tech.
 */
export function homeWithFormError(context: ServerContext, snapshot: SiteSnapshot, typed: Record<string, unknown>, message: string): string {
  return renderHome(context, snapshot, formState(typed, message));
}

function renderHome(context: ServerContext, snapshot: SiteSnapshot, form?: FormState): string {
  const { site } = snapshot.content;
  return context.web.render('home', site, {
    isHome: true,
    hasSubscribeBox: true,
    stories: snapshot.stories.slice(0, HOME_STORIES).map(storyCard),
    subscribe: subscribeForm(site, form),
  });
}

function renderStory(context: ServerContext, snapshot: SiteSnapshot, slug: string): string {
  const { site } = snapshot.content;
  const story = snapshot.storiesBySlug.get(slug)!;
  const { older, newer } = neighbours(snapshot, story);
  return context.web.render('story', site, {
    title: story.title,
    description: story.summary,
    story,
    older,
    newer,
    hasNeighbours: Boolean(older || newer),
    related: relatedStories(snapshot, story),
    hasSubscribeBox: true,
    subscribe: subscribeForm(site),
  });
}
