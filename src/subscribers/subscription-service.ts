import { type Content, type MailingList, publishedStories, type Site } from '../model/content.ts';
import { prepareMessageTemplate, renderMessage, type MessageTemplate } from '../delivery/mime-message.ts';
import { composeEdition } from '../edition/compose-edition.ts';
import { ConflictError, InputError } from '../errors.ts';
import { confirmUrl, recipientLinks } from '../links/recipient-links.ts';
import type { TokenPurpose, TokenSigner } from '../links/tokens.ts';
import { compileEdition, compileEmail } from '../render/compile-edition.ts';
import type { EmailTemplates } from '../render/email-templates.ts';
import { recipientValues, slotMarker } from '../render/slots.ts';
import type { NewNotice, NoticeKind } from '../model/notice.ts';
import type { Frequency, ListChoice, NewSubscriber, Subscriber, SubscriberStatus } from '../model/subscriber.ts';
import { parseDisplayName } from './display-name.ts';
import { parseEmailAddress } from './email-address.ts';
import { LinkError } from './link-error.ts';
import { parseListChoices, type ListChoiceInput } from './list-choices.ts';
import { mailboxKey } from './mailbox-key.ts';

/** A mailbox gets at most one confirmation (or reminder) per this many milliseconds… */
export const CONFIRMATION_THROTTLE_MS = 10 * 60_000;
/** …and at most this many a day. */
export const CONFIRMATIONS_PER_MAILBOX_PER_DAY = 5;
/** One client IP may ask for at most this many confirmations an hour. */
export const CONFIRMATIONS_PER_IP_PER_HOUR = 20;

/** What a subscribe request asks for, as it arrived. */
export interface SubscribeRequest {
  email: unknown;
  name?: unknown;
  lists?: unknown;
  /** The one frequency for every list without its own. */
  frequency?: unknown;
  /** Each list's own frequency by slug (the `frequency_<slug>` form fields). */
  frequencies?: ReadonlyMap<string, unknown>;
  ip?: string | undefined;
  source?: string;
}

/** What happened, for logs and tests; callers must answer the visitor the same way whatever it is. */
export type SubscribeOutcome = 'confirmation-queued' | 'reminder-queued' | 'throttled' | 'suppressed';

/** Where notices go: the table a worker sends them from, and a nudge for a worker in this process. */
export interface NoticeQueue {
  add(notice: NewNotice): Promise<number>;
  countSince(by: { mailboxKey: string } | { ip: string }, kinds: readonly NoticeKind[], since: Date): Promise<number>;
}

/** The subscribers as the service reads and changes them. */
export interface SubscriberRecords {
  findByEmail(emailKey: string): Promise<Subscriber | undefined>;
  findById(id: number): Promise<Subscriber | undefined>;
  /** Inserts a subscriber and their lists; returns the id. Fails on an address that exists. */
  insert(subscriber: NewSubscriber, now: Date): Promise<number>;
  setStatus(id: number, status: SubscriberStatus, now: Date): Promise<void>;
  refresh(id: number, fields: { name?: string | null; consentIp?: string | null; source?: string; status?: SubscriberStatus }, now: Date): Promise<void>;
  markConfirmationSent(id: number, now: Date): Promise<void>;
  replaceLists(id: number, lists: ListChoice[], now: Date): Promise<void>;
  isSuppressed(emailKey: string): Promise<boolean>;
}

/** What the service needs from the rest of the app. */
export interface SubscriptionDeps {
  repo: SubscriberRecords;
  notices: NoticeQueue;
  /** Tells a worker in this process that a notice is waiting (it would find it at its next poll anyway). */
  wake: () => void;
  content: () => Promise<Content>;
  templates: EmailTemplates;
  tokens: TokenSigner;
  now: () => Date;
}

const NOTICE_KINDS_THROTTLED: readonly NoticeKind[] = ['confirm', 'already-subscribed'];

/**
 * Double opt-in subscription, confirmation, one-click unsubscribe and preferences. Emails are
 * built here and queued as notices for a worker: a request never waits on SMTP, so its answer and
 * its timing are the same whether the address is new, pending or already subscribed.
 */
export class SubscriptionService {
  private readonly welcomeCache = new Map<string, Promise<MessageTemplate>>();
  private readonly noticeCache = new Map<string, Promise<MessageTemplate>>();
  private lastGood: Content | undefined;

  constructor(private readonly deps: SubscriptionDeps) {}

  /**
   * Stores a pending subscriber and queues the confirmation email; an address already subscribed
   * is sent a note with a link to its preferences instead (and nothing about it changes). Mail to
   * one mailbox (+tags and Gmail dots folded) and from one IP is throttled.
   */
  async subscribe(request: SubscribeRequest): Promise<SubscribeOutcome> {
    const { repo, now } = this.deps;
    const content = await this.content();
    const email = parseEmailAddress(request.email);
    if ('error' in email) throw new InputError(email.error);
    const name = nameOrError(request.name);
    const lists = parseListChoices(content.site.lists, request);
    // Every path reads the same and renders a message, so the answer's timing tells nothing about
    // the address (suppressed, throttled, known or new); only the writes differ.
    const suppressed = await repo.isSuppressed(email.key);
    const existing = await repo.findByEmail(email.key);
    const at = now();
    const mailbox = mailboxKey(email.address);
    const throttled = await this.throttled(mailbox, request.ip, at);
    if (suppressed || (existing && (existing.status === 'bounced' || existing.status === 'complained'))) {
      await this.buildNotice(content, 'confirm', existing?.id ?? 0, email.address, lists);
      return 'suppressed';
    }
    if (throttled) {
      await this.buildNotice(content, 'confirm', existing?.id ?? 0, email.address, lists);
      return 'throttled';
    }
    if (existing?.status === 'active') {
      await this.queueNotice(content, 'already-subscribed', existing.id, existing.email, mailbox, request.ip);
      return 'reminder-queued';
    }
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
      id = existing.id;
      // A name already given stays: anyone may type an address into the form, so only its owner's first word counts.
      await repo.refresh(id, { name: existing.name ?? name, consentIp: request.ip ?? null, status: 'pending' }, at);
      await repo.replaceLists(id, lists, at);
    }
    await this.queueNotice(content, 'confirm', id, email.address, mailbox, request.ip, lists);
    await repo.markConfirmationSent(id, at);
    return 'confirmation-queued';
  }

  /**
   * Adds one subscriber on an operator's word (CLI, admin API): active at once when `confirmed`
   * (the operator asserts consent), else pending with a confirmation email. ConflictError when
   * the address is already known or suppressed.
   */
  async add(request: { email: unknown; name?: unknown; lists?: unknown; frequency?: unknown; confirmed: boolean; source: string }): Promise<Subscriber> {
    const { repo } = this.deps;
    const email = parseEmailAddress(request.email);
    if ('error' in email) throw new InputError(email.error);
    const name = nameOrError(request.name);
    const lists = parseListChoices((await this.content()).site.lists, request);
    const existing = await repo.findByEmail(email.key);
    if (existing) throw new ConflictError(`already subscribed: ${existing.email} (${existing.status})`);
    if (await repo.isSuppressed(email.key)) {
      throw new ConflictError(`${email.address} is on the suppression list (it bounced, complained or was removed by hand): lift it with \`gazette subscribers unsuppress ${email.address}\` first`);
    }
    if (request.confirmed) {
      const id = await repo.insert({ email: email.address, emailKey: email.key, name, status: 'active', source: request.source, consentIp: null, lists }, this.deps.now());
      return (await repo.findById(id))!;
    }
    const frequencies = new Map(lists.map((l) => [l.slug, l.frequency]));
    await this.subscribe({ email: email.address, name, lists: lists.map((l) => l.slug), frequencies, source: request.source });
    return (await repo.findByEmail(email.key))!;
  }

  /** Activates the subscriber a confirm token names, and queues the welcome email once. */
  async confirm(token: string): Promise<Subscriber> {
    const subscriber = await this.subscriberFor(token, 'confirm');
    if (subscriber.status === 'active') return subscriber;
    if (subscriber.status !== 'pending') throw new LinkError('not-pending');
    await this.deps.repo.setStatus(subscriber.id, 'active', this.deps.now());
    const active = { ...subscriber, status: 'active' as const };
    await this.queueWelcome(active);
    return active;
  }

  /** Checks a confirm token without using it: the page a link opens shows a button that POSTs. */
  async checkConfirm(token: string): Promise<Subscriber> {
    const subscriber = await this.subscriberFor(token, 'confirm');
    if (subscriber.status !== 'pending' && subscriber.status !== 'active') throw new LinkError('not-pending');
    return subscriber;
  }

  /**
   * Checks an unsubscribe token without using it: a GET shows a button (mail scanners follow links),
   * and a link to the subscriber's preferences, for those who would rather change than leave.
   */
  async checkUnsubscribe(token: string): Promise<{ subscriber: Subscriber; preferencesToken: string }> {
    const subscriber = await this.subscriberFor(token, 'unsubscribe');
    return { subscriber, preferencesToken: this.deps.tokens.sign(subscriber.id, 'preferences') };
  }

  /** Unsubscribes from every list at once (RFC 8058 one-click); repeating it changes nothing. */
  async unsubscribe(token: string): Promise<Subscriber> {
    const subscriber = await this.subscriberFor(token, 'unsubscribe');
    if (subscriber.status === 'active' || subscriber.status === 'pending') {
      await this.deps.repo.setStatus(subscriber.id, 'unsubscribed', this.deps.now());
      await this.deps.repo.replaceLists(subscriber.id, [], this.deps.now());
    }
    return { ...subscriber, status: subscriber.status === 'active' || subscriber.status === 'pending' ? 'unsubscribed' : subscriber.status, lists: [] };
  }

  /** The subscriber a preferences (or unsubscribe) token names. */
  async preferences(token: string): Promise<Subscriber> {
    return this.subscriberFor(token, 'preferences');
  }

  /**
   * Replaces the lists of the subscriber a preferences token names, each at its own frequency;
   * no list left means unsubscribed. A refused choice (InputError) changes nothing.
   */
  async updatePreferences(token: string, choice: ListChoiceInput): Promise<Subscriber> {
    const subscriber = await this.subscriberFor(token, 'preferences');
    const content = await this.deps.content();
    const chosen = parseListChoices(content.site.lists, choice, { current: subscriber.lists, emptyIsNone: true });
    const at = this.deps.now();
    await this.deps.repo.replaceLists(subscriber.id, chosen, at);
    if (chosen.length === 0 && subscriber.status === 'active') await this.deps.repo.setStatus(subscriber.id, 'unsubscribed', at);
    if (chosen.length > 0 && subscriber.status === 'unsubscribed') await this.deps.repo.setStatus(subscriber.id, 'active', at);
    return (await this.deps.repo.findById(subscriber.id))!;
  }

  private async subscriberFor(token: string, purpose: TokenPurpose): Promise<Subscriber> {
    const check = this.deps.tokens.verify(token, purpose, this.deps.now());
    if (!check.ok) throw new LinkError(check.problem);
    const subscriber = await this.deps.repo.findById(check.subscriberId);
    if (!subscriber) throw new LinkError('unknown-subscriber');
    return subscriber;
  }

  /** Site content, or the last good one when content/ is broken right now: a typo in a story must not stop sign-ups. */
  private async content(): Promise<Content> {
    try {
      this.lastGood = await this.deps.content();
    } catch (error) {
      if (!this.lastGood) throw error;
    }
    return this.lastGood;
  }

  private async throttled(mailbox: string, ip: string | undefined, at: Date): Promise<boolean> {
    const { notices } = this.deps;
    const since = (ms: number) => new Date(at.getTime() - ms);
    if ((await notices.countSince({ mailboxKey: mailbox }, NOTICE_KINDS_THROTTLED, since(CONFIRMATION_THROTTLE_MS))) > 0) return true;
    if ((await notices.countSince({ mailboxKey: mailbox }, NOTICE_KINDS_THROTTLED, since(86_400_000))) >= CONFIRMATIONS_PER_MAILBOX_PER_DAY) return true;
    return ip !== undefined && (await notices.countSince({ ip }, NOTICE_KINDS_THROTTLED, since(3_600_000))) >= CONFIRMATIONS_PER_IP_PER_HOUR;
  }

  /**
   * Builds and queues a confirmation request or, for an address already subscribed, a note with
   * its preferences link. Neither echoes anything the request said (no name, in the body or the
   * To: header): what arrives is only ever our own text, so the form cannot relay a message.
   */
  private async queueNotice(content: Content, kind: 'confirm' | 'already-subscribed', id: number, email: string, mailbox: string, ip: string | undefined, lists: ListChoice[] = []): Promise<void> {
    const { raw, messageKey } = await this.buildNotice(content, kind, id, email, lists);
    await this.deps.notices.add({ kind, subscriberId: id, email, mailboxKey: mailbox, ip: ip ?? null, envelopeFrom: content.site.sender.address, messageKey, raw });
    this.deps.wake();
  }

  /**
   * A confirmation request or, for an address already subscribed, a note with its preferences link.
   * Neither echoes anything the request said (no name, in the body or the To: header): what arrives
   * is only ever our own text, so the form cannot relay a message.
   */
  private async buildNotice(content: Content, kind: 'confirm' | 'already-subscribed', id: number, email: string, lists: ListChoice[]): Promise<{ raw: string; messageKey: string }> {
    const { site } = content;
    const now = this.deps.now();
    const listNames = lists.map((l) => listName(site, l.slug)).join(' and ');
    const template = this.noticeTemplate(site, kind, listNames);
    const links = recipientLinks(site, this.deps.tokens, id);
    const actionUrl = kind === 'confirm' ? confirmUrl(site, this.deps.tokens, id, now) : links.preferencesUrl;
    const messageKey = `${kind}.${id}.${now.getTime()}`;
    const raw = renderMessage(await template, {
      email,
      values: recipientValues({ greeting: 'Hello,', email, unsubscribe_url: links.unsubscribeUrl, preferences_url: links.preferencesUrl, action_url: actionUrl }),
      unsubscribeUrl: undefined,
      unsubscribeMailto: undefined,
      messageKey,
      date: now,
    });
    return { raw, messageKey };
  }

  private noticeTemplate(site: Site, kind: 'confirm' | 'already-subscribed', listNames: string): Promise<MessageTemplate> {
    const key = `${kind}|${site.baseUrl}|${site.title}|${site.sender.address}|${listNames}`;
    let template = this.noticeCache.get(key);
    if (!template) {
      const text =
        kind === 'confirm'
          ? {
              subject: `Confirm your subscription to ${site.title}`,
              preheader: 'One click and you are in.',
              lead: `Please confirm that you want to receive ${listNames} at ${slotMarker('email')}.`,
              button: 'Confirm my subscription',
              note: 'The link works for 7 days. If you did not ask for this, ignore this email: you will not be subscribed.',
            }
          : {
              subject: `You are already subscribed to ${site.title}`,
              preheader: 'Your subscription is active; change it any time.',
              lead: `Someone (probably you) asked to subscribe ${slotMarker('email')}, which already gets ${site.title}. To change your lists or how often you hear from us, open your preferences.`,
              button: 'Open my preferences',
              note: 'If you did not ask for this, ignore this email: nothing has changed.',
            };
      template = compileEmail(this.deps.templates.notice, { site, ...text }).then((compiled) => prepareMessageTemplate(site, undefined, compiled));
      template.catch(() => this.noticeCache.delete(key));
      if (this.noticeCache.size > 50) this.noticeCache.clear();
      this.noticeCache.set(key, template);
    }
    return template;
  }

  private async queueWelcome(subscriber: Subscriber): Promise<void> {
    const content = await this.content();
    const { site } = content;
    const now = this.deps.now();
    const list = site.lists.find((l) => l.slug === subscriber.lists[0]?.slug) ?? site.lists[0]!;
    const template = await this.welcomeTemplate(content, list, subscriber.lists);
    const links = recipientLinks(site, this.deps.tokens, subscriber.id);
    const messageKey = `welcome.${subscriber.id}.${now.getTime()}`;
    const raw = renderMessage(template, {
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
      messageKey,
      date: now,
    });
    await this.deps.notices.add({
      kind: 'welcome',
      subscriberId: subscriber.id,
      email: subscriber.email,
      mailboxKey: mailboxKey(subscriber.email),
      ip: null,
      envelopeFrom: site.sender.address,
      messageKey,
      raw,
    });
    this.deps.wake();
  }

  // The welcome email is the same for everyone who joins the same lists while the latest stories
  // stay the same, so it is compiled once per (lists, latest stories).
  private welcomeTemplate(content: Content, list: MailingList, joined: ListChoice[]): Promise<MessageTemplate> {
    const stories = publishedStories(content, this.deps.now()).slice(0, 3);
    const joinedText = joined.map((l) => `${listName(content.site, l.slug)} (${FREQUENCY_WORDS[l.frequency]})`).join(' and ');
    const key = `${content.site.baseUrl}|${joinedText}|${stories.map((s) => s.slug).join(',')}`;
    let template = this.welcomeCache.get(key);
    if (!template) {
      const input = composeEdition(content.site, list, 'digest', stories, this.deps.now(), {
        subject: `Welcome to ${content.site.title}`,
        preheader: stories.length ? 'You are subscribed. Here are the latest stories.' : 'You are subscribed.',
        intro: `You are now subscribed to ${joinedText || list.name}.${stories.length ? ' Here are the latest stories.' : ''}`,
      });
      template = compileEdition(this.deps.templates, input).then((compiled) => prepareMessageTemplate(content.site, list, compiled));
      template.catch(() => this.welcomeCache.delete(key));
      if (this.welcomeCache.size > 20) this.welcomeCache.clear();
      this.welcomeCache.set(key, template);
    }
    return template;
  }
}

/** How the welcome email names a frequency. */
const FREQUENCY_WORDS: Record<Frequency, string> = { instant: 'every story', daily: 'a daily digest', weekly: 'a weekly digest' };

function listName(site: Site, slug: string): string {
  return site.lists.find((l) => l.slug === slug)?.name ?? slug;
}

function nameOrError(input: unknown): string | null {
  const name = parseDisplayName(input);
  if (name !== null && typeof name === 'object') throw new InputError(name.error);
  return name;
}
