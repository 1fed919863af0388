import { bounceDomainOf } from '../links/recipient-links.ts';
import { randomBytes } from 'node:crypto';
import { type Content, publishedStories, type Story } from '../model/content.ts';
import { GazetteError, InputError, NotFoundError } from '../errors.ts';
import { compileEdition, type CompiledEdition } from '../render/compile-edition.ts';
import type { EmailTemplates } from '../render/email-templates.ts';
import type { Audience } from '../model/edition.ts';
import { composeEdition, DEFAULT_DIGEST_SIZE } from './compose-edition.ts';
import { preflight } from './preflight.ts';
import { publishedAt, type Sightings, type StoryPublications } from './story-publications.ts';
import type { EditionRecords } from './edition-records.ts';

/** What an editor asks for. */
export interface EditionRequest {
  list: string;
  /** A story slug for a single-story edition. */
  story?: string | undefined;
  /** A digest of the latest stories; with `sinceLast`, of those published since the list's last sent edition. */
  digest?: boolean | undefined;
  sinceLast?: boolean | undefined;
  subject?: string | undefined;
  audience?: Audience | undefined;
  scheduleId?: number | null | undefined;
}

/** An edition could not be made: nothing to send, or the preflight check failed. */
export class EditionError extends GazetteError {
  constructor(code: 'EDITION_EMPTY' | 'PREFLIGHT_FAILED', message: string) {
    super(code, message);
  }
}

/** Composes, renders once and stores an edition; refuses with reasons when the preflight check fails. */
export async function createEdition(
  deps: { content: Content; templates: EmailTemplates; editions: EditionRecords; now: Date; publications?: StoryPublications },
  request: EditionRequest,
): Promise<{ id: number; stories: Story[] }> {
  const { content, now } = deps;
  const list = content.site.lists.find((l) => l.slug === request.list);
  if (!list) throw new NotFoundError(`no list "${request.list}" (known: ${content.site.lists.map((l) => l.slug).join(', ')})`);
  if (!!request.story === !!request.digest) throw new InputError('choose --story SLUG or --digest');
  const published = publishedStories(content, now);
  let stories: Story[];
  if (request.story) {
    const story = content.stories.find((s) => s.slug === request.story);
    if (!story) throw new NotFoundError(`no story with slug "${request.story}"`);
    if (!published.includes(story)) throw new InputError(`story "${request.story}" is a draft or dated in the future: it cannot be sent yet`);
    stories = [story];
  } else if (request.sinceLast) {
    const last = await deps.editions.lastSent(list.slug, request.audience);
    const since = last ? new Date(last.coversUntil) : new Date(0);
    const isPublished = new Set(published);
    const seen = deps.publications
      ? await deps.publications.observe(content.stories.map((s) => ({ slug: s.slug, published: isPublished.has(s) })), now)
      : new Map<string, Sightings>();
    stories = published.filter((s) => publishedAt(s, seen.get(s.slug)).getTime() > since.getTime()).slice(0, DEFAULT_DIGEST_SIZE * 3);
    if (stories.length === 0) {
      throw new EditionError('EDITION_EMPTY', `no stories published for ${list.slug} since ${last ? `edition ${last.id} (${last.coversUntil})` : 'the start'}: nothing to send`);
    }
  } else {
    stories = published.slice(0, DEFAULT_DIGEST_SIZE);
  }
  const kind = request.story ? 'story' : 'digest';
  // A story's web version is its page; a digest's is its own, /editions/ID, known once it is stored.
  const viewUrl = kind === 'digest' ? editionUrl(content.site.baseUrl, EDITION_ID) : undefined;
  const compiled = await compileEdition(deps.templates, composeEdition(content.site, list, kind, stories, now, { subject: request.subject, viewUrl }));
  const problems = preflight(compiled, stories.length, kind);
  if (problems.length > 0) throw new EditionError('PREFLIGHT_FAILED', `preflight check failed:\n- ${problems.join('\n- ')}`);
  const id = await deps.editions.insert(
    {
      listSlug: list.slug,
      kind,
      audience: request.audience ?? 'all',
      storySlugs: stories.map((s) => s.slug),
      compiled,
      origin: { baseUrl: content.site.baseUrl, sender: content.site.sender, list, bounceDomain: bounceDomainOf(content.site) },
      htmlBytes: Buffer.byteLength(compiled.html.parts.join('')),
      coversUntil: now,
      scheduleId: request.scheduleId ?? null,
    },
    now,
    (id) => withEditionId(compiled, id),
  );
  return { id, stories };
}

// Stands for the edition's id in its links until it is stored; random, so no story can hold it.
const EDITION_ID = `gz-edition-${randomBytes(6).toString('hex')}`;

/** The web version of an edition: the page every "view in browser" link of a digest leads to. */
export function editionUrl(baseUrl: string, id: number | string): string {
  return `${baseUrl}/editions/${id}`;
}

function withEditionId(compiled: CompiledEdition, id: number): CompiledEdition {
  const fill = (parts: string[]) => parts.map((part) => part.replaceAll(EDITION_ID, String(id)));
  return { ...compiled, html: { ...compiled.html, parts: fill(compiled.html.parts) }, text: { ...compiled.text, parts: fill(compiled.text.parts) } };
}
