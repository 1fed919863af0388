import { publishedStories } from '../content/load-content.ts';
import type { Content, MailingList } from '../content/model.ts';
import type { MessageSigner } from '../delivery/dkim.ts';
import { prepareMessageTemplate, type MessageTemplate } from '../delivery/mime-message.ts';
import { sendOne } from '../delivery/send-one.ts';
import type { Transport } from '../delivery/transport.ts';
import { composeEdition } from '../edition/compose-edition.ts';
import { ConflictError, InputError } from '../errors.ts';
import { confirmUrl, recipientLinks } from '../links/recipient-links.ts';
import type { TokenPurpose, TokenSigner } from '../links/tokens.ts';
import { compileEdition, compileEmail } from '../render/compile-edition.ts';
import type { EmailTemplates } from '../render/email-templates.ts';
import { recipientValues } from '../render/slots.ts';
import { FREQUENCIES, type Frequency } from '../store/schema.ts';
import type { ListChoice, SubscribersRepo, SubscriberWithLists } from '../store/subscribers-repo.ts';
import { parseEmailAddress } from './email-address.ts';
import { LinkError } from './link-error.ts';

/** A pending address gets at most one confirmation email per this many milliseconds. */
export const CONFIRMATION_THROTTLE_MS = 10 * 60_000;

/** What a subscribe request asks for, as it arrived. */
export interface SubscribeRequest {
  email: unknown;
  name?: unknown;
  lists?: unknown;
  frequency?: unknown;
  ip?: string | undefined;
  source?: string;
}

/** What happened, for logs and tests; callers must answer the visitor the same way whatever it is. */
export type SubscribeOutcome = 'confirmation-sent' | 'throttled' | 'already-active' | 'suppressed';

/** What the service needs from the rest of the app. */
export interface SubscriptionDeps {
  repo: SubscribersRepo;
  transport: Transport;
  content: () => Promise<Content>;
  templates: EmailTemplates;
  tokens: TokenSigner;
  signMessage: MessageSigner;
  now: () => Date;
}

/** Double opt-in subscription, confirmation, one-click unsubscribe and preferences. */
export class SubscriptionService {
  private readonly welcomeCache = new Map<string, Promise<MessageTemplate>>();
  private confirmTemplate: { key: string; template: Promise<MessageTemplate> } | undefined;

  constructor(private readonly deps: SubscriptionDeps) {}

  /** Stores a pending subscriber and sends the confirmation email (at most one per 10 minutes). */
  async subscribe(request: SubscribeRequest): Promise<SubscribeOutcome> {
    const { repo, now } = this.deps;
    const content = await this.deps.content();
    const email = parseEmailAddress(request.email);
    if ('error' in email) throw new InputError(email.error);
    const name = parseName(request.name);
    const lists = parseListChoices(content.site.lists, request.lists, request.frequency);
    if (await repo.isSuppressed(email.key)) return 'suppressed';
    const existing = await repo.findByEmail(email.key);
    const at = now();
    let id: number;
    if (!existing) {
      try {
        id = await repo.insert(
          { email: email.address, emailKey: email.key, name, status: 'pending', source: request.source ?? 'form', consentIp: request.ip ?? null, lists },
          at,
        );
      } catch (error) {
        // Two requests for the same new address at once (a double-submitted form): the other
        // one stored it first, so this one takes the path of a known address.
        if (await repo.findByEmail(email.key)) return this.subscribe(request);
        throw error;
      }
    } else {
      if (existing.status === 'active') return 'already-active';
      if (existing.status === 'bounced' || existing.status === 'complained') return 'suppressed';
      id = existing.id;
      const sentAt = existing.confirmation_sent_at ? Date.parse(existing.confirmation_sent_at) : 0;
      await repo.refresh(id, { name: name ?? existing.name, consentIp: request.ip ?? null, status: 'pending' }, at);
      await repo.replaceLists(id, lists, at);
      if (existing.status === 'pending' && at.getTime() - sentAt < CONFIRMATION_THROTTLE_MS) return 'throttled';
    }
    await this.sendConfirmation(content, id, email.address, name, lists);
    await repo.markConfirmationSent(id, at);
    return 'confirmation-sent';
  }

  /**
   * Adds one subscriber on an operator's word (CLI, admin API): active at once when `confirmed`
   * (the operator asserts consent), else pending with a confirmation email. ConflictError when
   * the address is already known or suppressed.
   */
  async add(request: { email: unknown; name?: unknown; lists?: unknown; frequency?: unknown; confirmed: boolean; source: string }): Promise<SubscriberWithLists> {
    const { repo } = this.deps;
    const email = parseEmailAddress(request.email);
    if ('error' in email) throw new InputError(email.error);
    const name = parseName(request.name);
    const lists = parseListChoices((await this.deps.content()).site.lists, request.lists, request.frequency);
    const existing = await repo.findByEmail(email.key);
    if (existing) throw new ConflictError(`already subscribed: ${existing.email} (${existing.status})`);
    if (await repo.isSuppressed(email.key)) {
      throw new ConflictError(`${email.address} is on the suppression list (it bounced, complained or was removed by hand)`);
    }
    if (request.confirmed) {
      const id = await repo.insert({ email: email.address, emailKey: email.key, name, status: 'active', source: request.source, consentIp: null, lists }, this.deps.now());
      return (await repo.findById(id))!;
    }
    await this.subscribe({ email: email.address, name, lists: lists.map((l) => l.slug), frequency: lists[0]?.frequency, source: request.source });
    return (await repo.findByEmail(email.key))!;
  }

  /** Activates the subscriber a confirm token names, and sends the welcome email once. */
  async confirm(token: string): Promise<SubscriberWithLists> {
    const subscriber = await this.subscriberFor(token, 'confirm');
    if (subscriber.status === 'active') return subscriber;
    if (subscriber.status !== 'pending') throw new LinkError('not-pending');
    await this.deps.repo.setStatus(subscriber.id, 'active', this.deps.now());
    const active = { ...subscriber, status: 'active' as const };
    await this.sendWelcome(active);
    return active;
  }

  /** Unsubscribes from every list at once (RFC 8058 one-click); repeating it changes nothing. */
  async unsubscribe(token: string): Promise<SubscriberWithLists> {
    const subscriber = await this.subscriberFor(token, 'unsubscribe');
    if (subscriber.status === 'active' || subscriber.status === 'pending') {
      await this.deps.repo.setStatus(subscriber.id, 'unsubscribed', this.deps.now());
      await this.deps.repo.replaceLists(subscriber.id, [], this.deps.now());
    }
    return { ...subscriber, status: subscriber.status === 'active' || subscriber.status === 'pending' ? 'unsubscribed' : subscriber.status, lists: [] };
  }

  /** The subscriber a preferences (or unsubscribe) token names. */
  async preferences(token: string): Promise<SubscriberWithLists> {
    return this.subscriberFor(token, 'preferences');
  }

  /** Replaces the lists of the subscriber a preferences token names; no list left means unsubscribed. */
  async updatePreferences(token: string, lists: unknown, frequency: unknown): Promise<SubscriberWithLists> {
    const subscriber = await this.subscriberFor(token, 'preferences');
    const content = await this.deps.content();
    const chosen = lists === undefined || lists === '' || (Array.isArray(lists) && lists.length === 0) ? [] : parseListChoices(content.site.lists, lists, frequency);
    const at = this.deps.now();
    await this.deps.repo.replaceLists(subscriber.id, chosen, at);
    if (chosen.length === 0 && subscriber.status === 'active') await this.deps.repo.setStatus(subscriber.id, 'unsubscribed', at);
    if (chosen.length > 0 && subscriber.status === 'unsubscribed') await this.deps.repo.setStatus(subscriber.id, 'active', at);
    return (await this.deps.repo.findById(subscriber.id))!;
  }

  private async subscriberFor(token: string, purpose: TokenPurpose): Promise<SubscriberWithLists> {
    const check = this.deps.tokens.verify(token, purpose, this.deps.now());
    if (!check.ok) throw new LinkError(check.problem);
    const subscriber = await this.deps.repo.findById(check.subscriberId);
    if (!subscriber) throw new LinkError('unknown-subscriber');
    return subscriber;
  }

  private async sendConfirmation(content: Content, id: number, email: string, name: string | null, lists: ListChoice[]): Promise<void> {
    const { site } = content;
    const listNames = lists.map((l) => site.lists.find((s) => s.slug === l.slug)?.name ?? l.slug).join(' and ');
    const key = `${site.baseUrl}|${listNames}`;
    if (this.confirmTemplate?.key !== key) {
      const subject = `Confirm your subscription to ${site.title}`;
      const template = compileEmail(this.deps.templates.confirm, { site, listNames, subject, preheader: 'One click and you are in.' }).then(
        (compiled) => prepareMessageTemplate(site, undefined, compiled),
      );
      this.confirmTemplate = { key, template };
    }
    const links = recipientLinks(site, this.deps.tokens, id);
    await sendOne(this.deps.transport, this.deps.signMessage, await this.confirmTemplate.template, {
      email,
      name: name ?? undefined,
      values: recipientValues({
        greeting: name ? `Hello ${name},` : 'Hello,',
        email,
        unsubscribe_url: links.unsubscribeUrl,
        preferences_url: links.preferencesUrl,
        action_url: confirmUrl(site, this.deps.tokens, id, this.deps.now()),
      }),
      unsubscribeUrl: undefined,
      unsubscribeMailto: undefined,
      messageKey: `confirm.${id}.${this.deps.now().getTime()}`,
      date: this.deps.now(),
    });
  }

  private async sendWelcome(subscriber: SubscriberWithLists): Promise<void> {
    const content = await this.deps.content();
    const list = content.site.lists.find((l) => l.slug === subscriber.lists[0]?.slug) ?? content.site.lists[0]!;
    const template = await this.welcomeTemplate(content, list);
    const links = recipientLinks(content.site, this.deps.tokens, subscriber.id);
    await sendOne(this.deps.transport, this.deps.signMessage, template, {
      email: subscriber.email,
      name: subscriber.name ?? undefined,
      values: recipientValues({
        greeting: subscriber.name ? `Hello ${subscriber.name},` : 'Hello,',
        email: subscriber.email,
        unsubscribe_url: links.unsubscribeUrl,
        preferences_url: links.preferencesUrl,
      }),
      unsubscribeUrl: links.unsubscribeUrl,
      unsubscribeMailto: links.unsubscribeMailto,
      messageKey: `welcome.${subscriber.id}.${this.deps.now().getTime()}`,
      date: this.deps.now(),
    });
  }

  // The welcome email is the same for everyone who joins a list while the latest stories
  // stay the same, so it is compiled once per (list, latest stories).
  private welcomeTemplate(content: Content, list: MailingList): Promise<MessageTemplate> {
    const stories = publishedStories(content, this.deps.now()).slice(0, 3);
    const key = `${content.site.baseUrl}|${list.slug}|${stories.map((s) => s.slug).join(',')}`;
    let template = this.welcomeCache.get(key);
    if (!template) {
      const input = composeEdition(content.site, list, 'digest', stories, this.deps.now(), {
        subject: `Welcome to ${content.site.title}`,
        preheader: stories.length ? 'You are subscribed. Here are the latest stories.' : 'You are subscribed.',
        intro: `You are now subscribed to ${list.name}.${stories.length ? ' Here are the latest stories.' : ''}`,
      });
      template = compileEdition(this.deps.templates, input).then((compiled) => prepareMessageTemplate(content.site, list, compiled));
      template.catch(() => this.welcomeCache.delete(key));
      if (this.welcomeCache.size > 20) this.welcomeCache.clear();
      this.welcomeCache.set(key, template);
    }
    return template;
  }
}

function parseName(input: unknown): string | null {
  if (input === undefined || input === null || input === '') return null;
  if (typeof input !== 'string') throw new InputError('name: expected text');
  if (/[\r\n]/.test(input)) throw new InputError('name: must not contain line breaks');
  const name = input.trim();
  if (name.length > 100) throw new InputError(`name: at most 100 characters (got ${name.length})`);
  return name || null;
}

/** Checks requested list slugs and frequency against site.yaml; no list given means the first list. */
export function parseListChoices(known: MailingList[], lists: unknown, frequency: unknown): ListChoice[] {
  const freq = frequency === undefined || frequency === '' ? 'instant' : frequency;
  if (typeof freq !== 'string' || !FREQUENCIES.includes(freq as Frequency)) {
    throw new InputError(`frequency: expected one of ${FREQUENCIES.join(', ')}, got ${JSON.stringify(frequency)}`);
  }
  const raw = lists === undefined || lists === '' ? [known[0]!.slug] : Array.isArray(lists) ? lists : String(lists).split(',');
  const slugs = [...new Set(raw.map((l) => String(l).trim()).filter(Boolean))];
  if (slugs.length === 0) throw new InputError('lists: choose at least one list');
  for (const slug of slugs) {
    if (!known.some((l) => l.slug === slug)) {
      throw new InputError(`lists: unknown list "${slug.slice(0, 60)}" (known: ${known.map((l) => l.slug).join(', ')})`);
    }
  }
  return slugs.map((slug) => ({ slug, frequency: freq as Frequency }));
}
