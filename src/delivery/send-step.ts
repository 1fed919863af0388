import type { Content, EditionOrigin, MailingList } from '../model/content.ts';
import { DeliveryFault } from '../errors.ts';
import { returnPath, type DeliveryTokens } from '../links/delivery-tokens.ts';
import { bounceDomainOf, recipientLinks } from '../links/recipient-links.ts';
import type { TokenSigner } from '../links/tokens.ts';
import { recipientValues } from '../render/slots.ts';
import type { DeliveryToSend } from './delivery-ledger.ts';
import type { MessageSigner } from './dkim.ts';
import type { EditionStore } from './edition-store.ts';
import { prepareMessageTemplate, renderMessage, type MessageTemplate } from './mime-message.ts';
import type { RateLimiter } from './rate-limiter.ts';
import type { OutgoingMessage, Transport } from './transport.ts';

// Every part of a built message is 7-bit (quoted-printable bodies, RFC 2047 names) except the
// address itself in To:, which may be internationalized (SMTPUTF8).
const ASCII = /^[\x00-\x7f]*$/;

/** What personalizing and sending need. */
export interface SendStepDeps {
  editions: Pick<EditionStore, 'find'>;
  transport: Transport;
  signMessage: MessageSigner;
  tokens: TokenSigner;
  /** Signs the delivery into its return path (VERP), its mailto: unsubscribe and X-Gazette-Delivery. */
  deliveryTokens: DeliveryTokens;
  limiter: RateLimiter;
  now: () => Date;
  /** site.yaml, read only for editions made before their origin was kept. */
  legacyContent?: () => Promise<Content>;
}

/**
 * Personalize-and-send: fills an edition's pre-encoded message with one recipient's values,
 * signs it and hands it to the transport within the rate limit. Rejects with a DeliveryFault.
 */
export class SendStep {
  private readonly templates = new Map<number, Promise<{ template: MessageTemplate; origin: EditionOrigin }>>();

  constructor(private readonly deps: SendStepDeps) {}

  /** Sends one delivery's message; `signal` cuts it short (the edition was paused). */
  async send(delivery: DeliveryToSend & { email: string }, signal?: AbortSignal): Promise<void> {
    const { template, origin } = await this.template(delivery.editionId);
    // One signature names the delivery everywhere: return path, mailto: and X-Gazette-Delivery.
    const deliveryToken = this.deps.deliveryTokens.sign(delivery.id);
    const links = recipientLinks(origin, this.deps.tokens, delivery.subscriberId, deliveryToken);
    const raw = renderMessage(template, {
      email: delivery.email,
      name: delivery.name ?? undefined,
      values: recipientValues({
        greeting: delivery.name ? `Hello ${delivery.name},` : 'Hello,',
        email: delivery.email,
        unsubscribe_url: links.unsubscribeUrl,
        preferences_url: links.preferencesUrl,
      }),
      unsubscribeUrl: links.unsubscribeUrl,
      unsubscribeMailto: links.unsubscribeMailto,
      messageKey: messageKey(delivery),
      date: this.deps.now(),
      // Names the delivery where a bounce quotes the original's headers but its return path was rewritten.
      extraHeaders: { 'X-Gazette-Delivery': deliveryToken },
    });
    const envelopeFrom = returnPath(deliveryToken, bounceDomainOf(origin));
    await this.deliver({ key: messageKey(delivery), envelopeFrom, to: delivery.email, raw, canonical: ASCII.test(delivery.email) }, signal);
  }

  /** Signs a finished message and sends it within the rate limit (notices come this way too). */
  async deliver(message: OutgoingMessage, signal?: AbortSignal): Promise<void> {
    const raw = await this.deps.signMessage(message.raw);
    await this.deps.limiter.take();
    if (signal?.aborted) throw new DeliveryFault('unreachable', 'not sent: its edition was paused');
    await this.deps.transport.send({ ...message, raw }, signal);
  }

  /** Forgets an edition's prepared parts (it was paused; it may be read afresh when resumed). */
  forget(editionId: number): void {
    this.templates.delete(editionId);
  }

  // The shared, pre-encoded parts of an edition's messages: built once per edition per worker.
  private template(editionId: number): Promise<{ template: MessageTemplate; origin: EditionOrigin }> {
    let prepared = this.templates.get(editionId);
    if (!prepared) {
      prepared = (async () => {
        const edition = await this.deps.editions.find(editionId);
        if (!edition) throw new DeliveryFault('refused', `edition ${editionId} is gone: nothing to send`);
        const origin = edition.origin ?? (await this.legacyOrigin(edition.listSlug));
        return { template: prepareMessageTemplate(origin, origin.list, edition.compiled), origin };
      })();
      prepared.catch(() => this.templates.delete(editionId));
      this.templates.set(editionId, prepared);
    }
    return prepared;
  }

  private async legacyOrigin(listSlug: string): Promise<EditionOrigin> {
    if (!this.deps.legacyContent) throw new DeliveryFault('refused', 'this edition was made before editions kept their sender: send it from a machine with content/');
    const { site } = await this.deps.legacyContent();
    const list: MailingList = site.lists.find((l) => l.slug === listSlug) ?? { slug: listSlug, name: listSlug, description: '' };
    return { baseUrl: site.baseUrl, sender: site.sender, list };
  }
}

/** A delivery's Message-ID left part: stable, so a retried message keeps its id. */
export function messageKey(delivery: { id: number; editionId: number }): string {
  return `d${delivery.id}.e${delivery.editionId}`;
}
