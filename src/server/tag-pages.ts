import type { FastifyInstance } from 'fastify';
import { NotFoundError } from '../errors.ts';
import { tagSlug } from '../feed/tags.ts';
import type { SiteSnapshot } from './feed-cache.ts';
import { pageCache, sendPage } from './page-cache.ts';
import { siteIndex, storyCard } from './story-links.ts';
import { subscribeForm } from './subscribe-box.ts';
import type { ServerContext } from './server.ts';

/**
 * Registers GET /tags/:tag, the page of a tag's stories, newest first, with its feed linked and
 * autodiscoverable. The feed itself, /tags/:tag.xml, is feed-routes.ts's: the router tells the two
 * apart by the static `.xml` suffix, whichever is registered first.
 */
export function registerTagPages(server: FastifyInstance, context: ServerContext): void {
  const page = pageCache();
  // The router decodes the parameter, so a Cyrillic tag arrives as letters, not %-escapes.
  server.get<{ Params: { tag: string } }>('/tags/:tag', async (request, reply) => {
    const snapshot = await context.feeds.current();
    const { tag } = request.params;
    const { tags } = siteIndex(snapshot);
    if (!tags.has(tag)) {
      // "Україна" or "C++ & Rust" as written in a story: send the reader to the slug's one address.
      const slug = tagSlug(tag);
      if (slug !== tag && tags.has(slug)) return reply.redirect(`/tags/${encodeURIComponent(slug)}`, 301);
      throw new NotFoundError(`no stories tagged "${tag}"`);
    }
    return sendPage(request, reply, snapshot, page(snapshot, tag, () => renderTag(context, snapshot, tag)));
  });
}

function renderTag(context: ServerContext, snapshot: SiteSnapshot, slug: string): string {
  const { site } = snapshot.content;
  const group = siteIndex(snapshot).tags.get(slug)!;
  const feedPath = `/tags/${encodeURIComponent(slug)}.xml`;
  return context.web.render('tag', site, {
    title: group.tag,
    description: `Stories tagged “${group.tag}” in ${site.title}.`,
    // First, so a feed reader given this page subscribes to the tag rather than the whole site.
    alternates: [{ type: 'application/rss+xml', title: `${site.title} — ${group.tag} (RSS)`, href: `${site.baseUrl}${feedPath}` }],
    tag: group.tag,
    count: group.stories.length,
    one: group.stories.length === 1,
    feedHref: feedPath,
    stories: group.stories.map(storyCard),
    hasSubscribeBox: true,
    subscribe: subscribeForm(site),
  });
}
