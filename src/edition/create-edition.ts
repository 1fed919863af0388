import { bounceDomainOf } from '../links/recipient-links.ts';
import { randomBytes } from 'node:crypto';
import { type Content, type MailingList, publishedStories, type Story } from '../model/content.ts';
import { GazetteError, InputError, NotFoundError } from '../errors.ts';
import { compileEdition, type CompiledEdition } from '../render/compile-edition.ts';
import type { EmailTemplates } from '../render/email-templates.ts';
import type { Audience, Edition, EditionKind } from '../model/edition.ts';
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
  /** For a digest: exactly these stories (slugs), newest first, instead of the latest. */
  stories?: readonly string[] | undefined;
  subject?: string | undefined;
  preheader?: string | undefined;
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
  const rendered = await renderEdition(deps, request);
  const { content, now } = deps;
  const id = await deps.editions.insert(
    {
      listSlug: rendered.list.slug,
      kind: rendered.kind,
      audience: request.audience ?? 'all',
      storySlugs: rendered.stories.map((s) => s.slug),
      compiled: rendered.compiled,
      origin: { baseUrl: content.site.baseUrl, sender: content.site.sender, list: rendered.list, bounceDomain: bounceDomainOf(content.site) },
      htmlBytes: Buffer.byteLength(rendered.compiled.html.parts.join('')),
      coversUntil: now,
      scheduleId: request.scheduleId ?? null,
    },
    now,
    (id) => withEditionId(rendered.compiled, id),
  );
  return { id, stories: rendered.stories };
}

/**
 * Renders a draft again with a new subject or preheader (empty: the default), from the current
 * version of its stories. Only a draft may change: what went out, or is going out, stays as it was.
 */
export async function reviseDraft(
  deps: { content: Content; templates: EmailTemplates; editions: EditionRecords; now: Date },
  edition: Edition,
  changes: { subject?: string | undefined; preheader?: string | undefined },
): Promise<void> {
  if (edition.status !== 'draft') throw new InputError(`edition ${edition.id} is ${edition.status}: only a draft can be edited (make a new edition instead)`);
  // A field left out keeps its text; one given empty goes back to the default made from the stories.
  const subject = changes.subject === undefined ? edition.subject : checkLine('subject', changes.subject, 200);
  const preheader = changes.preheader === undefined ? edition.preheader : checkLine('preheader', changes.preheader, 250);
  const request: EditionRequest =
    edition.kind === 'story'
      ? { list: edition.listSlug, story: edition.storySlugs[0], subject, preheader }
      : { list: edition.listSlug, digest: true, stories: edition.storySlugs, subject, preheader };
  const rendered = await renderEdition(deps, request);
  const compiled = withEditionId(rendered.compiled, edition.id);
  if (!(await deps.editions.replaceDraft(edition.id, compiled))) throw new InputError(`edition ${edition.id} is no longer a draft: it was not changed`);
}

/** The stories an edition takes and its render, checked by the preflight. */
async function renderEdition(
  deps: { content: Content; templates: EmailTemplates; editions: EditionRecords; now: Date; publications?: StoryPublications },
  request: EditionRequest,
): Promise<{ list: MailingList; kind: EditionKind; stories: Story[]; compiled: CompiledEdition }> {
  const { content, now } = deps;
  const list = content.site.lists.find((l) => l.slug === request.list);
  if (!list) throw new NotFoundError(`no list "${request.list}" (known: ${content.site.lists.map((l) => l.slug).join(', ')})`);
  if (!!request.story === !!request.digest) throw new InputError('choose --story SLUG or --digest');
  const published = publishedStories(content, now);
  // A draft being revised is refused too when one of its stories has since been unpublished, naming it.
  const sendable = (story: Story) => published.includes(story);
  let stories: Story[];
  if (request.story) {
    stories = [pickStory(content, request.story, sendable)];
  } else if (request.stories !== undefined) {
    if (request.stories.length === 0) throw new InputError('stories: pick at least one story for the digest');
    const picked = [...new Set(request.stories)].map((slug) => pickStory(content, slug, sendable));
    stories = picked.sort((a, b) => b.date.getTime() - a.date.getTime());
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
  const choices = { subject: request.subject || undefined, preheader: request.preheader || undefined, viewUrl };
  const compiled = await compileEdition(deps.templates, composeEdition(content.site, list, kind, stories, now, choices));
  const problems = preflight(compiled, stories.length, kind);
  if (problems.length > 0) throw new EditionError('PREFLIGHT_FAILED', `preflight check failed:\n- ${problems.join('\n- ')}`);
  return { list, kind, stories, compiled };
}

function pickStory(content: Content, slug: string, sendable: (story: Story) => boolean): Story {
  const story = content.stories.find((s) => s.slug === slug);
  if (!story) throw new NotFoundError(`no story with slug "${slug}"`);
  if (!sendable(story)) throw new InputError(`story "${slug}" is a draft or dated in the future: it cannot be sent yet`);
  return story;
}

function checkLine(field: string, value: string | undefined, max: number): string | undefined {
  const text = value?.trim();
  if (!text) return undefined;
  if (/[\r\n]/.test(text)) throw new InputError(`${field}: must be one line`);
  if ([...text].length > max) throw new InputError(`${field}: at most ${max} characters (got ${[...text].length})`);
  return text;
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
