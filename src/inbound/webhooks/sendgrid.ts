import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { ConfigError } from '../../errors.ts';
import { deliveryFromMessageId } from '../../links/delivery-tokens.ts';
import type { SubscriberEventType } from '../../model/subscriber-event.ts';
import type { InboundReport } from '../inbound-report.ts';

/** The header of SendGrid's signed event webhook that holds the base64 ECDSA signature. */
export const SENDGRID_SIGNATURE_HEADER = 'x-twilio-email-event-webhook-signature';
/** The header holding the signed timestamp, which is signed with the body. */
export const SENDGRID_TIMESTAMP_HEADER = 'x-twilio-email-event-webhook-timestamp';

const eventSchema = z.object({
  event: z.string(),
  email: z.string().min(1),
  timestamp: z.number().nullish(),
  sg_event_id: z.string().nullish(),
  sg_message_id: z.string().nullish(),
  'smtp-id': z.string().nullish(),
  type: z.string().nullish(),
  status: z.union([z.string(), z.number()]).nullish(),
  reason: z.string().nullish(),
});

type SendgridEvent = z.infer<typeof eventSchema>;

/**
 * The verification key as SendGrid's settings show it (base64 DER SubjectPublicKeyInfo) or as PEM;
 * throws ConfigError naming GAZETTE_SENDGRID_PUBLIC_KEY when it is not an elliptic-curve public key.
 */
export function sendgridPublicKey(configured: string): KeyObject {
  const text = configured.trim();
  let key: KeyObject;
  try {
    key = text.includes('-----BEGIN')
      ? createPublicKey(text)
      : createPublicKey({ key: Buffer.from(text.replace(/\s+/g, ''), 'base64'), format: 'der', type: 'spki' });
  } catch (error) {
    throw new ConfigError(`GAZETTE_SENDGRID_PUBLIC_KEY: not a public key (${(error as Error).message})`);
  }
  if (key.asymmetricKeyType !== 'ec') throw new ConfigError(`GAZETTE_SENDGRID_PUBLIC_KEY: expected an elliptic-curve (P-256) key, got ${key.asymmetricKeyType}`);
  return key;
}

/** Why a SendGrid request is refused (no or bad ECDSA signature over timestamp + body), or undefined. */
export function sendgridRefusal(key: KeyObject, signature: string | undefined, timestamp: string | undefined, rawBody: Buffer): string | undefined {
  if (!signature || !timestamp) return 'missing X-Twilio-Email-Event-Webhook-Signature or X-Twilio-Email-Event-Webhook-Timestamp';
  let genuine = false;
  try {
    genuine = verify('sha256', Buffer.concat([Buffer.from(timestamp, 'utf8'), rawBody]), key, Buffer.from(signature, 'base64'));
  } catch {
    // A signature that is not DER at all: as wrong as any other.
  }
  return genuine ? undefined : 'the signature does not match the body';
}

/**
 * Reads SendGrid's batch of events: bounces (blocked ones soft), spam reports and unsubscribes
 * are reports, as is a drop for an address SendGrid knows bounced; the rest, and any event not
 * shaped like one, are ignored with a reason (a 4xx would make SendGrid resend the whole batch).
 */
export function sendgridReports(events: unknown[], now: Date): { reports: InboundReport[]; ignored: string[] } {
  const reports: InboundReport[] = [];
  const ignored: string[] = [];
  events.forEach((raw, index) => {
    const parsed = eventSchema.safeParse(raw);
    if (!parsed.success) {
      ignored.push(`event ${index}: ${parsed.error.issues[0]?.path.join('.') || 'event'}: ${parsed.error.issues[0]?.message ?? 'malformed'}`);
      return;
    }
    const type = reportType(parsed.data);
    if (typeof type === 'string') reports.push(toReport(parsed.data, type, now));
    else ignored.push(type.ignored);
  });
  return { reports, ignored };
}

function reportType(event: SendgridEvent): SubscriberEventType | { ignored: string } {
  switch (event.event) {
    case 'bounce':
      // A block is the receiving server refusing us (reputation, content), not the address failing.
      return event.type === 'blocked' ? 'soft-bounce' : 'hard-bounce';
    case 'dropped':
      return /bounced address/i.test(event.reason ?? '') ? 'hard-bounce' : { ignored: `a SendGrid drop for ${event.reason?.slice(0, 40) ?? 'no reason'}` };
    case 'spamreport':
      return 'complaint';
    case 'unsubscribe':
    case 'group_unsubscribe':
      return 'unsubscribe';
    default:
      return { ignored: `SendGrid ${event.event.slice(0, 40)} events are not reports` };
  }
}

function toReport(event: SendgridEvent, type: SubscriberEventType, now: Date): InboundReport {
  const email = event.email.trim();
  const bounce = type === 'hard-bounce' || type === 'soft-bounce';
  return {
    type,
    source: 'sendgrid',
    deliveryId: deliveryFromMessageId(event['smtp-id']),
    email,
    status: type === 'complaint' ? 'abuse' : bounce && event.status != null ? String(event.status) : null,
    diagnostic: bounce ? event.reason?.trim() || null : null,
    reportId: event.sg_event_id ?? `${event.sg_message_id ?? event['smtp-id'] ?? ''}/${event.event}/${email.toLowerCase()}`,
    at: event.timestamp != null && Number.isFinite(event.timestamp) ? new Date(event.timestamp * 1000) : now,
  };
}
