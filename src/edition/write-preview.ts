import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { type Content, type MailingList, publishedStories, type Site, type Story } from '../model/content.ts';
import type { MessageSigner } from '../delivery/dkim.ts';
import { prepareMessageTemplate, renderMessage } from '../delivery/mime-message.ts';
import { InputError, NotFoundError } from '../errors.ts';
import { writeFileAtomic } from '../fs/atomic-write.ts';
import { recipientLinks } from '../links/recipient-links.ts';
import type { TokenSigner } from '../links/tokens.ts';
import { compileEdition, type CompiledEdition } from '../render/compile-edition.ts';
import type { EmailTemplates } from '../render/email-templates.ts';
import { fillSlots, escapeValuesForHtml, recipientValues, type RecipientValues } from '../render/slots.ts';
import { composeEdition, DEFAULT_DIGEST_SIZE } from './compose-edition.ts';

/** What to preview, and where to write it. */
export interface PreviewRequest {
  content: Content;
  templates: EmailTemplates;
  tokens: TokenSigner;
  signMessage: MessageSigner;
  outDir: string;
  now: Date;
  /** Slug of the story to preview; undefined with `digest` previews a digest. */
  story?: string | undefined;
  digest?: boolean | undefined;
  list?: string | undefined;
}

/** The files a preview wrote. */
export interface PreviewResult {
  name: string;
  files: { html: string; text: string; eml: string };
  htmlBytes: number;
}

/** The made-up subscriber previews are addressed to. */
export const SAMPLE_RECIPIENT = { id: 0, email: 'reader@example.com', name: 'Sample Reader' };

/** Renders one edition for the sample recipient and writes NAME.html, NAME.txt and NAME.eml. */
export async function writePreview(request: PreviewRequest): Promise<PreviewResult> {
  const { list, edition, name } = await compilePreview(request);
  return writeSample(request, request.content.site, list, edition, name);
}

/** What a preview shows, compiled: a story (drafts too), or a digest of the latest published stories. */
export async function compilePreview(
  request: Pick<PreviewRequest, 'content' | 'templates' | 'now' | 'story' | 'digest' | 'list'>,
): Promise<{ list: MailingList; edition: CompiledEdition; name: string }> {
  const { content, now } = request;
  const list = pickList(content, request.list);
  const published = publishedStories(content, now);
  let stories: Story[];
  let name: string;
  if (request.story) {
    const story = content.stories.find((s) => s.slug === request.story);
    if (!story) throw new NotFoundError(`no story with slug "${request.story}" in ${content.stories.length} stories`);
    stories = [story];
    name = story.slug;
  } else {
    stories = published.slice(0, DEFAULT_DIGEST_SIZE);
    name = request.digest ? 'digest' : (stories[0]?.slug ?? 'digest');
    if (!request.digest) stories = stories.slice(0, 1);
  }
  if (stories.length === 0) throw new InputError('nothing to preview: no published story (drafts and future stories are left out)');
  const kind = request.story || !request.digest ? 'story' : 'digest';
  const edition = await compileEdition(request.templates, composeEdition(content.site, list, kind, stories, now));
  return { list, edition, name };
}

/** Writes an already compiled edition for the sample recipient as NAME.html, NAME.txt and NAME.eml. */
export async function writeSample(
  request: Pick<PreviewRequest, 'tokens' | 'signMessage' | 'outDir' | 'now'>,
  site: Pick<Site, 'baseUrl' | 'sender'>,
  list: MailingList,
  edition: CompiledEdition,
  name: string,
): Promise<PreviewResult> {
  const sample = sampleMessage(request.tokens, site, list, edition, request.now, SAMPLE_RECIPIENT, { 'X-Gazette-Preview': 'yes' });
  const { html, text, raw } = sample;
  const files = {
    html: path.join(request.outDir, `${name}.html`),
    text: path.join(request.outDir, `${name}.txt`),
    eml: path.join(request.outDir, `${name}.eml`),
  };
  await mkdir(request.outDir, { recursive: true });
  await writeFileAtomic(files.html, html);
  await writeFileAtomic(files.text, text);
  await writeFileAtomic(files.eml, await request.signMessage(raw));
  return { name, files, htmlBytes: Buffer.byteLength(html) };
}

/** An edition rendered for one made-up recipient: the HTML and text parts and the whole message. */
export function sampleMessage(
  tokens: TokenSigner,
  site: Pick<Site, 'baseUrl' | 'sender'>,
  list: MailingList,
  edition: CompiledEdition,
  now: Date,
  recipient: { id: number; email: string; name: string },
  extraHeaders: Record<string, string>,
  subjectPrefix = '',
): { html: string; text: string; raw: string } {
  const links = recipientLinks(site, tokens, recipient.id);
  const values: RecipientValues = recipientValues({
    greeting: `Hello ${recipient.name},`,
    email: recipient.email,
    unsubscribe_url: links.unsubscribeUrl,
    preferences_url: links.preferencesUrl,
  });
  const compiled = subjectPrefix ? { ...edition, subject: `${subjectPrefix}${edition.subject}` } : edition;
  const raw = renderMessage(prepareMessageTemplate(site, list, compiled), {
    email: recipient.email,
    name: recipient.name,
    values,
    unsubscribeUrl: links.unsubscribeUrl,
    unsubscribeMailto: links.unsubscribeMailto,
    messageKey: `sample.${randomBytes(6).toString('hex')}.${now.getTime()}`,
    date: now,
    extraHeaders,
  });
  return { html: fillSlots(edition.html, escapeValuesForHtml(values)), text: fillSlots(edition.text, values), raw };
}

/** The list named by slug, or the first list of site.yaml. */
export function pickList(content: Content, slug: string | undefined): MailingList {
  const lists = content.site.lists;
  const list = slug ? lists.find((l) => l.slug === slug) : lists[0];
  if (!list) throw new NotFoundError(`no list "${slug}" (known: ${lists.map((l) => l.slug).join(', ')})`);
  return list;
}
