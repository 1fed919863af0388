import { randomBytes } from 'node:crypto';
import { describeLeftOut } from '../content/load-content.ts';
import type { SendQueue } from '../delivery/send-queue.ts';
import type { MessageSigner } from '../delivery/dkim.ts';
import type { Transport } from '../delivery/transport.ts';
import { InputError, NotFoundError } from '../errors.ts';
import type { TokenSigner } from '../links/tokens.ts';
import type { Content, MailingList, Site } from '../model/content.ts';
import type { Edition, EditionSummary } from '../model/edition.ts';
import type { EmailTemplates } from '../render/email-templates.ts';
import { parseEmailAddress } from '../subscribers/email-address.ts';
import { createEdition, reviseDraft, type EditionRequest } from './create-edition.ts';
import type { DeliveryRecords, EditionEventRecords, EditionRecords } from './edition-records.ts';
import { editionStatus, type EditionStatusReport } from './edition-status.ts';
import { preflight } from './preflight.ts';
import { enqueueEdition, type EnqueueOptions, type EnqueueResult } from './enqueue-edition.ts';
import { recentEditions, RECENT_EDITIONS, type RecentEdition } from './recent-editions.ts';
import type { StoryPublications } from './story-publications.ts';
import { compilePreview, SAMPLE_RECIPIENT, sampleMessage, writePreview, writeSample, type PreviewResult } from './write-preview.ts';

/** What the edition use cases are built on; each is opened on first use. */
export interface EditionUseCaseDeps {
  editions: () => Promise<EditionRecords>;
  deliveries: () => Promise<DeliveryRecords & { countEligible(listSlug: string, audience: Edition['audience']): Promise<number> }>;
  events: () => Promise<EditionEventRecords>;
  queue: () => Promise<SendQueue>;
  publications: () => Promise<StoryPublications>;
  content: () => Promise<Content>;
  templates: () => Promise<EmailTemplates>;
  tokens: () => Promise<TokenSigner>;
  signMessage: () => Promise<MessageSigner>;
  transport: () => Promise<Transport>;
  now: () => Date;
}

/** A new edition and what of content/ it had to leave out (invalid story files), in words. */
export interface CreatedEdition {
  edition: Edition;
  leftOut: string | undefined;
}

/** The edition use cases: what the CLI, the admin API, the scheduler and the console do with editions. */
export interface EditionUseCases {
  /** Composes, renders once and stores an edition (a draft); refused with reasons when the preflight check fails. */
  create(request: EditionRequest): Promise<CreatedEdition>;
  /** The first time: a delivery and a job per eligible subscriber. Again: resumes a paused send and retries failed deliveries. */
  send(id: number, options?: EnqueueOptions): Promise<EnqueueResult>;
  /** How many subscribers a first send of the edition would reach now. */
  audienceSize(id: number): Promise<number>;
  /** A draft rendered again with a new subject and preheader (empty or missing: the default). */
  revise(id: number, changes: { subject?: string | undefined; preheader?: string | undefined }): Promise<Edition>;
  /** Stops an edition for good (a draft, a send in progress, a paused one): what has not gone out is skipped. */
  cancel(id: number, reason?: string): Promise<Edition>;
  /** The stored edition as a sample recipient would get it: HTML and text, nothing written. */
  sample(id: number): Promise<{ html: string; text: string; subject: string; preheader: string }>;
  /** Holds a send back by hand (workers give its messages back unsent); `send` resumes it. */
  pause(id: number, reason?: string): Promise<Edition>;
  /** Where a send stands: counts, rate, ETA, why it is paused. */
  status(id: number): Promise<EditionStatusReport>;
  /** The newest editions with their counts. */
  recent(limit?: number): Promise<RecentEdition[]>;
  list(limit?: number): Promise<EditionSummary[]>;
  /** The edition with this id; NotFoundError otherwise. */
  find(id: number): Promise<Edition>;
  /** Renders content/ as an edition would be (a story, or a digest of the latest) for a sample recipient, without storing it. */
  previewContent(request: { story?: string | undefined; digest?: boolean | undefined; list?: string | undefined }, outDir: string): Promise<{ preview: PreviewResult; leftOut: string | undefined }>;
  /** content/ rendered as `previewContent` would (a story, drafts included, or a digest), in memory. */
  sampleContent(request: { story?: string | undefined; digest?: boolean | undefined; list?: string | undefined }): Promise<{ html: string; text: string; subject: string }>;
  /** Writes the stored edition for a sample recipient as NAME.html, .txt and .eml. */
  preview(id: number, outDir: string): Promise<PreviewResult['files']>;
  /** What the preflight check finds wrong with the stored edition (empty: it may be sent). */
  preflight(id: number): Promise<string[]>;
  /** Sends a test to each address (at most 10); every address is checked before any is sent. */
  sendTests(id: number, to: readonly unknown[]): Promise<{ to: string[]; transport: string }>;
  /** Sends the edition to one address, marked as a test and not recorded as a delivery; returns the transport's name. */
  sendTest(id: number, to: unknown): Promise<{ to: string; transport: string }>;
}

/** Most addresses one test send goes to: a test is for the editors, not a list. */
export const MAX_TEST_ADDRESSES = 10;

/** Builds the edition use cases over their ports. */
export function editionUseCases(deps: EditionUseCaseDeps): EditionUseCases {
  const find = async (id: number): Promise<Edition> => {
    const edition = await (await deps.editions()).find(id);
    if (!edition) throw new NotFoundError(`no edition ${id}`);
    return edition;
  };
  // Who an edition is sent as: its own frozen origin, or (made before origins were kept) site.yaml's.
  const originOf = async (edition: Edition): Promise<{ site: Pick<Site, 'baseUrl' | 'sender'>; list: MailingList }> => {
    if (edition.origin) return { site: edition.origin, list: edition.origin.list };
    const { site } = await deps.content();
    return { site, list: site.lists.find((l) => l.slug === edition.listSlug) ?? { slug: edition.listSlug, name: edition.listSlug, description: '' } };
  };
  const records = async () => ({ editions: await deps.editions(), deliveries: await deps.deliveries(), events: await deps.events() });

  return {
    async create(request) {
      const content = await deps.content();
      const made = await createEdition(
        { content, templates: await deps.templates(), editions: await deps.editions(), now: deps.now(), publications: await deps.publications() },
        request,
      );
      return { edition: await find(made.id), leftOut: describeLeftOut(content) };
    },
    async send(id, options = {}) {
      return enqueueEdition({ ...(await records()), queue: await deps.queue(), now: deps.now }, id, options);
    },
    async audienceSize(id) {
      const edition = await find(id);
      return (await deps.deliveries()).countEligible(edition.listSlug, edition.audience);
    },
    async pause(id, reason = `paused by an operator: \`gazette send ${id}\` resumes it`) {
      const editions = await deps.editions();
      const edition = await find(id);
      if (edition.status !== 'sending') {
        throw new InputError(`edition ${id} is ${edition.status}${edition.pauseKind ? ` (${edition.pauseKind})` : ''}: only a sending edition can be paused`);
      }
      // The queue holds its jobs back first, so no worker takes one once the pause is recorded.
      const queue = await deps.queue();
      await queue.hold(id, true);
      if (!(await editions.pause(id, 'operator', reason))) {
        await queue.hold(id, false);
        throw new InputError(`edition ${id} is no longer sending: nothing to pause`);
      }
      return find(id);
    },
    async revise(id, changes) {
      const edition = await find(id);
      await reviseDraft({ content: await deps.content(), templates: await deps.templates(), editions: await deps.editions(), now: deps.now() }, edition, changes);
      return find(id);
    },
    async cancel(id, reason = 'cancelled by an operator') {
      const edition = await find(id);
      if (!['draft', 'sending', 'paused'].includes(edition.status)) throw new InputError(`edition ${id} is ${edition.status}: only a draft, a send in progress or a paused send can be cancelled`);
      // Held first, as for a pause: no worker takes another of its messages once it is cancelled.
      const queue = await deps.queue();
      await queue.hold(id, true);
      if (!(await (await deps.editions()).cancel(id, reason, deps.now()))) {
        await queue.hold(id, false);
        throw new InputError(`edition ${id} finished meanwhile: nothing to cancel`);
      }
      return find(id);
    },
    async sample(id) {
      const edition = await find(id);
      const { site, list } = await originOf(edition);
      const { html, text } = sampleMessage(await deps.tokens(), site, list, edition.compiled, deps.now(), SAMPLE_RECIPIENT, {});
      return { html, text, subject: edition.compiled.subject, preheader: edition.compiled.preheader };
    },
    async status(id) {
      return editionStatus(await records(), id, deps.now());
    },
    async recent(limit = RECENT_EDITIONS) {
      return recentEditions(await records(), limit);
    },
    async list(limit) {
      return (await deps.editions()).list(limit);
    },
    find,
    async previewContent(request, outDir) {
      const content = await deps.content();
      const preview = await writePreview({ ...request, content, templates: await deps.templates(), tokens: await deps.tokens(), signMessage: await deps.signMessage(), outDir, now: deps.now() });
      return { preview, leftOut: describeLeftOut(content) };
    },
    async sampleContent(request) {
      const content = await deps.content();
      const { list, edition } = await compilePreview({ ...request, content, templates: await deps.templates(), now: deps.now() });
      const { html, text } = sampleMessage(await deps.tokens(), content.site, list, edition, deps.now(), SAMPLE_RECIPIENT, {});
      return { html, text, subject: edition.subject };
    },
    async preview(id, outDir) {
      const edition = await find(id);
      const { site, list } = await originOf(edition);
      const result = await writeSample({ tokens: await deps.tokens(), signMessage: await deps.signMessage(), outDir, now: deps.now() }, site, list, edition.compiled, `edition-${edition.id}`);
      return result.files;
    },
    async preflight(id) {
      const edition = await find(id);
      return preflight(edition.compiled, edition.storySlugs.length, edition.kind);
    },
    async sendTests(id, to) {
      if (to.length === 0) throw new InputError('to: give at least one address to send the test to');
      if (to.length > MAX_TEST_ADDRESSES) throw new InputError(`to: at most ${MAX_TEST_ADDRESSES} addresses per test (got ${to.length})`);
      const addresses = to.map((each) => {
        const address = parseEmailAddress(each);
        if ('error' in address) throw new InputError(`to: ${address.error.replace(/^email: /, '')}`);
        return address.address;
      });
      let transport = '';
      for (const address of new Set(addresses)) transport = (await this.sendTest(id, address)).transport;
      return { to: [...new Set(addresses)], transport };
    },
    async sendTest(id, to) {
      const address = parseEmailAddress(to);
      if ('error' in address) throw new InputError(`--to: ${address.error.replace(/^email: /, '')}`);
      const edition = await find(id);
      const { site, list } = await originOf(edition);
      const now = deps.now();
      const { raw } = sampleMessage(await deps.tokens(), site, list, edition.compiled, now, { id: 0, email: address.address, name: 'Test reader' }, { 'X-Gazette-Test': 'yes' }, '[TEST] ');
      const transport = await deps.transport();
      // Random, so tests sent in the same millisecond (to several addresses) never share a key.
      await transport.send({ key: `test.e${edition.id}.${now.getTime()}.${randomBytes(4).toString('hex')}`, envelopeFrom: site.sender.address, to: address.address, raw: await (await deps.signMessage())(raw) });
      return { to: address.address, transport: transport.name };
    },
  };
}
