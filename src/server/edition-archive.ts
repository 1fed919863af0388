import type { Site } from '../model/content.ts';
import type { EditionSummary } from '../model/edition.ts';
import { cachedFile, type CachedFile, type SiteSnapshot } from './feed-cache.ts';
import { HTML } from './page-cache.ts';
import { subscribeForm } from './subscribe-box.ts';
import type { ServerContext } from './server.ts';

/** How many editions the store is asked for; drafts among them are left out. */
const ARCHIVE_EDITIONS = 500;

/** One sent edition as the archive lists it. */
interface ArchiveEntry {
  href: string;
  subject: string;
  preheader: string;
  sentAt: Date;
  listName: string;
  digest: boolean;
  stories: number;
  oneStory: boolean;
}

/**
 * The archive page of sent editions, newest first. The store is asked each time (one query); the
 * page is rendered again only when the snapshot or the editions it lists have changed.
 */
export function editionArchive(context: ServerContext): (snapshot: SiteSnapshot) => Promise<CachedFile> {
  // Only the latest rendering is kept: sends add editions, and old versions of the page are never asked for again.
  let last: { snapshot: SiteSnapshot; key: string; file: CachedFile } | undefined;
  return async (snapshot) => {
    const { site } = snapshot.content;
    const editions = archiveEntries(site, await context.app.editions.list(ARCHIVE_EDITIONS));
    // Everything the page shows of the editions, so a new send renders afresh.
    const key = editions.map((e) => `${e.href} ${e.sentAt.getTime()} ${e.subject} ${e.preheader}`).join('\n');
    if (last?.snapshot === snapshot && last.key === key) return last.file;
    const html = context.web.render('archive', site, {
      title: 'Past editions',
      description: `Every edition of ${site.title} sent so far.`,
      isArchive: true,
      hasSubscribeBox: true,
      editions,
      subscribe: subscribeForm(site),
    });
    last = { snapshot, key, file: cachedFile(Buffer.from(html, 'utf8'), HTML) };
    return last.file;
  };
}

/** Editions readers may open (not drafts), newest send first, with the list's name. */
export function archiveEntries(site: Site, editions: EditionSummary[]): ArchiveEntry[] {
  const listName = (slug: string) => site.lists.find((l) => l.slug === slug)?.name ?? slug;
  return editions
    .filter((e) => e.status !== 'draft')
    .map((e) => ({ e, sentAt: new Date(e.enqueuedAt ?? e.createdAt) }))
    .sort((a, b) => b.sentAt.getTime() - a.sentAt.getTime() || b.e.id - a.e.id)
    .map(({ e, sentAt }) => ({
      href: `/editions/${e.id}`,
      subject: e.subject,
      preheader: e.preheader,
      sentAt,
      listName: listName(e.listSlug),
      digest: e.kind === 'digest',
      stories: e.storySlugs.length,
      oneStory: e.storySlugs.length === 1,
    }));
}
