import type { FastifyInstance } from 'fastify';
import type { Site, Story } from '../model/content.ts';
import { NotFoundError } from '../errors.ts';
import { FREQUENCIES } from '../model/subscriber.ts';
import { cachedFile, type CachedFile, type SiteSnapshot } from './feed-cache.ts';
import { sendCached } from './feed-routes.ts';
import type { ServerContext } from './server.ts';

/** How many stories the home page lists. */
const HOME_STORIES = 10;
const HTML = 'text/html; charset=utf-8';
// Short: pages show the site's look as well as its stories, and conditional GETs make revalidation cheap.
const PAGE_CACHE_CONTROL = 'public, max-age=60';
const FREQUENCY_LABELS: Record<string, string> = { instant: 'Every story, as it is published', daily: 'A daily digest', weekly: 'A weekly digest' };
/** The subscribe form's fields, as the core names them at the start of its InputError messages. */
const FIELDS = ['email', 'name', 'lists', 'frequency'] as const;
type Field = (typeof FIELDS)[number];

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
    const file = page(snapshot, '/', () => renderHome(context, snapshot));
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

/**
 * The home page again after a refused subscribe (uncached): what was typed kept, the error beside
 * the field its message names (`email: …`, `lists: …`), the field marked invalid for assistive tech.
 */
export function homeWithFormError(context: ServerContext, snapshot: SiteSnapshot, typed: Record<string, unknown>, message: string): string {
  // Shown as the core says it (`email: required`): the field's name in it says which field, to screen readers too.
  const field = FIELDS.find((f) => message.startsWith(`${f}: `));
  return renderHome(context, snapshot, { typed, error: { field, message } });
}

interface FormState {
  typed: Record<string, unknown>;
  error: { field: Field | undefined; message: string };
}

function renderHome(context: ServerContext, snapshot: SiteSnapshot, form?: FormState): string {
  const { site } = snapshot.content;
  return context.web.render('home', site, { stories: snapshot.stories.slice(0, HOME_STORIES).map(storyCard), subscribe: subscribeForm(site, form) });
}

/** The subscribe form's template data: each field's value, its error, and the choices checked. */
function subscribeForm(site: Site, form: FormState | undefined) {
  const text = (value: unknown): string => (typeof value === 'string' ? value : Array.isArray(value) && typeof value[0] === 'string' ? value[0] : '');
  const errorOf = (field: Field) => (form?.error.field === field ? form.error.message : undefined);
  const rawLists = form?.typed.lists;
  const lists = form ? (Array.isArray(rawLists) ? rawLists : [rawLists]).filter((l): l is string => typeof l === 'string').flatMap((l) => l.split(',')).map((l) => l.trim()) : [];
  const typedFrequency = text(form?.typed.frequency);
  const frequency = FREQUENCIES.includes(typedFrequency as (typeof FREQUENCIES)[number]) ? typedFrequency : 'instant';
  return {
    error: form && !form.error.field ? form.error.message : undefined,
    email: { value: text(form?.typed.email), error: errorOf('email') },
    name: { value: text(form?.typed.name), error: errorOf('name') },
    lists: {
      error: errorOf('lists'),
      // A fresh form ticks the first list; a refused one shows the boxes as they were sent.
      options: site.lists.map((l, i) => ({ ...l, checked: form ? lists.includes(l.slug) : i === 0 })),
    },
    frequency: { error: errorOf('frequency'), options: FREQUENCIES.map((value) => ({ value, label: FREQUENCY_LABELS[value], checked: value === frequency })) },
  };
}
