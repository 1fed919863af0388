import { createHmac, timingSafeEqual } from 'node:crypto';

/** The two mailboxes Gazette reads at the bounce domain. */
export type InboundRole = 'bounces' | 'unsubscribe';

/** An address at the bounce domain, taken apart. */
export interface InboundAddress {
  role: InboundRole;
  /** The delivery its token names; null when it has no token or one we did not sign. */
  deliveryId: number | null;
  /** Whether a token was there at all (a bare `bounces@` is ours too, a forged token is not trusted). */
  hadToken: boolean;
}

// 80 bits of HMAC is plenty to make a guessed token hopeless and keeps the local part short.
const MAC_HEX = 20;
const TOKEN = /^d([0-9a-z]{1,11})-([0-9a-f]{20})$/;

/**
 * Signs delivery ids into the VERP return path (`bounces+TOKEN@domain`), the mailto unsubscribe
 * address (`unsubscribe+TOKEN@domain`) and the X-Gazette-Delivery header, so a report names its
 * delivery without guessing and a forged one names none. Tokens are lower-case only: mail
 * systems may fold the case of a local part.
 */
export class DeliveryTokens {
  private readonly key: Buffer;

  constructor(secret: string) {
    this.key = Buffer.from(`delivery-token:${secret}`, 'utf8');
  }

  sign(deliveryId: number): string {
    const id = deliveryId.toString(36);
    return `d${id}-${this.mac(id)}`;
  }

  /** The delivery id a token names, or null when it is malformed or not ours. */
  verify(token: string): number | null {
    const match = TOKEN.exec(token.trim().toLowerCase());
    if (!match) return null;
    const expected = Buffer.from(this.mac(match[1]!));
    const given = Buffer.from(match[2]!);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
    const id = parseInt(match[1]!, 36);
    return Number.isSafeInteger(id) && id > 0 ? id : null;
  }

  /** Takes an address apart when it is one of ours at `domain` (any case); undefined otherwise. */
  parse(address: string, domain: string): InboundAddress | undefined {
    const at = address.lastIndexOf('@');
    if (at < 1 || address.slice(at + 1).toLowerCase() !== domain.toLowerCase()) return undefined;
    const local = address.slice(0, at).toLowerCase();
    const plus = local.indexOf('+');
    const role = plus === -1 ? local : local.slice(0, plus);
    if (role !== 'bounces' && role !== 'unsubscribe') return undefined;
    if (plus === -1) return { role, deliveryId: null, hadToken: false };
    return { role, deliveryId: this.verify(local.slice(plus + 1)), hadToken: true };
  }

  private mac(id: string): string {
    return createHmac('sha256', this.key).update(id).digest('hex').slice(0, MAC_HEX);
  }
}

/** The envelope sender (VERP return path) of the message a delivery token names. */
export function returnPath(token: string, domain: string): string {
  return `bounces+${token}@${domain}`;
}

/** The address the List-Unsubscribe mailto: of the message a delivery token names points at. */
export function unsubscribeAddress(token: string, domain: string): string {
  return `unsubscribe+${token}@${domain}`;
}

/** The delivery id in a Message-ID Gazette made (`<d123.e45@domain>`); trusted only from a verified source. */
export function deliveryFromMessageId(messageId: string | null | undefined): number | null {
  const match = /^<?d(\d{1,15})\.e\d{1,15}@[^>\s]+>?$/.exec(messageId?.trim() ?? '');
  return match ? Number(match[1]) : null;
}
