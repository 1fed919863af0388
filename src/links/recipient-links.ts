import type { Site } from '../model/content.ts';
import { unsubscribeAddress } from './delivery-tokens.ts';
import type { TokenSigner } from './tokens.ts';

/** The links every list message carries for its recipient. */
export interface RecipientLinks {
  unsubscribeUrl: string;
  preferencesUrl: string;
  /** mailto: URI for List-Unsubscribe, for clients that prefer mail. */
  unsubscribeMailto: string;
}

/**
 * Builds a subscriber's signed unsubscribe and preferences links (tokens that never expire). The
 * mailto: goes to `unsubscribe+TOKEN@` the bounce domain when the message is a delivery (the
 * token names it, and so its list), else to `unsubscribe@` with the subscriber's token in the subject.
 */
export function recipientLinks(site: Pick<Site, 'baseUrl' | 'sender' | 'bounceDomain'>, signer: TokenSigner, subscriberId: number, deliveryToken?: string): RecipientLinks {
  const unsubscribe = signer.sign(subscriberId, 'unsubscribe');
  const domain = bounceDomainOf(site);
  return {
    unsubscribeUrl: `${site.baseUrl}/unsubscribe?token=${unsubscribe}`,
    preferencesUrl: `${site.baseUrl}/preferences?token=${signer.sign(subscriberId, 'preferences')}`,
    unsubscribeMailto: deliveryToken
      ? `mailto:${unsubscribeAddress(deliveryToken, domain)}?subject=unsubscribe%20${deliveryToken}`
      : `mailto:unsubscribe@${domain}?subject=unsubscribe%20${unsubscribe}`,
  };
}

/** The domain of the return path and the unsubscribe mailbox: GAZETTE_BOUNCE_DOMAIN, else the sender's. */
export function bounceDomainOf(site: Pick<Site, 'sender' | 'bounceDomain'>): string {
  return site.bounceDomain ?? site.sender.address.slice(site.sender.address.lastIndexOf('@') + 1).toLowerCase();
}

/** A confirmation link, valid for `ttlMs` from `now` (7 days by default). */
export function confirmUrl(site: Pick<Site, 'baseUrl'>, signer: TokenSigner, subscriberId: number, now: Date, ttlMs = 7 * 86_400_000): string {
  return `${site.baseUrl}/confirm?token=${signer.sign(subscriberId, 'confirm', new Date(now.getTime() + ttlMs))}`;
}
