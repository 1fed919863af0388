import type { Site } from '../model/content.ts';
import type { TokenSigner } from './tokens.ts';

/** The links every list message carries for its recipient. */
export interface RecipientLinks {
  unsubscribeUrl: string;
  preferencesUrl: string;
  /** mailto: URI for List-Unsubscribe, for clients that prefer mail. */
  unsubscribeMailto: string;
}

/** Builds a subscriber's signed unsubscribe and preferences links (tokens that never expire). */
export function recipientLinks(site: Pick<Site, 'baseUrl' | 'sender'>, signer: TokenSigner, subscriberId: number): RecipientLinks {
  const unsubscribe = signer.sign(subscriberId, 'unsubscribe');
  return {
    unsubscribeUrl: `${site.baseUrl}/unsubscribe?token=${unsubscribe}`,
    preferencesUrl: `${site.baseUrl}/preferences?token=${signer.sign(subscriberId, 'preferences')}`,
    unsubscribeMailto: `mailto:${unsubscribeAddress(site)}?subject=unsubscribe%20${unsubscribe}`,
  };
}

/** The address unsubscribe mails go to: the reply-to address, else the sender. */
export function unsubscribeAddress(site: Pick<Site, 'sender'>): string {
  return site.sender.replyTo ?? site.sender.address;
}

/** A confirmation link, valid for `ttlMs` from `now` (7 days by default). */
export function confirmUrl(site: Pick<Site, 'baseUrl'>, signer: TokenSigner, subscriberId: number, now: Date, ttlMs = 7 * 86_400_000): string {
  return `${site.baseUrl}/confirm?token=${signer.sign(subscriberId, 'confirm', new Date(now.getTime() + ttlMs))}`;
}
