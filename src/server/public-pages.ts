import type { FastifyInstance } from 'fastify';
import type { Story } from '../content/model.ts';
import { NotFoundError } from '../errors.ts';
import { cachedFile, type CachedFile, type SiteSnapshot } from './feed-cache.ts';
import { sendCached } from './feed-routes.ts';
import type { ServerContext } from './server.ts';

/** How many stories the home page lists. */
const HOME_STORIES = 10;
const HTML = 'text/html; charset=utf-8';
// Short: pages show the site's look as well as its stories, and conditional GETs make revalidation cheap.
const PAGE_CACHE_CONTROL = 'public, max-age=60';

/** Registers GET / (latest stories and the subscribe form) and GET /stories/:slug, rendered once per snapshot. */
export function registerPublicPages(server: FastifyInstance, context: ServerContext): void {
  const { feeds, web } = context;
  // Rendered pages live as long as their snapshot: a rebuild drops them all at once.
  const rendered = new WeakMap<SiteSnapshot, Map<string, CachedFile>>();
  const page = (snapshot: SiteSnapshot, key: string, render: () => string): CachedFile => {
    let pages = rendered.get(snapshot);
    if (!pages) rendered.set(snapshot, (pages = new Map()));
    let file = pages.get(key);
    if (!file) pages.set(key, (file = cachedFile(Buffer.from(render(), 'utf8'), HTML)));
    return file;
  };

  server.get('/', async (request, reply) => {
    const snapshot = await feeds.current();
    const file = page(snapshot, '/', () =>
      web.render('home', snapshot.content.site, { stories: snapshot.stories.slice(0, HOME_STORIES).map(storyCard) }),
    );
    return sendCached(request, reply, snapshot, file, PAGE_CACHE_CONTROL);
  });

  server.get<{ Params: { slug: string } }>('/stories/:slug', async (request, reply) => {
    const snapshot = await feeds.current();
    const { slug } = request.params;
    // Drafts and stories scheduled for later are not in the snapshot: to a reader they do not exist yet.
    const story = snapshot.storiesBySlug.get(slug);
    if (!story) throw new NotFoundError(`no story called "${slug}"`);
    const file = page(snapshot, `/stories/${slug}`, () =>
      web.render('story', snapshot.content.site, { title: story.title, description: story.summary, story }),
    );
    return sendCached(request, reply, snapshot, file, PAGE_CACHE_CONTROL);
  });
}

/** What the home page shows of a story, with its link ready to use. */
function storyCard(story: Story): Story & { href: string } {
  return { ...story, href: `/stories/${encodeURIComponent(story.slug)}` };
}
