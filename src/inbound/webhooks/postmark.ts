import { createHash, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { InputError } from '../../errors.ts';
import { deliveryFromMessageId } from '../../links/delivery-tokens.ts';
import type { SubscriberEventType } from '../../model/subscriber-event.ts';
import type { InboundReport } from '../inbound-report.ts';

const recordSchema = z.object({
  RecordType: z.string(),
  ID: z.union([z.number(), z.string()]).nullish(),
  Type: z.string().nullish(),
  MessageID: z.string().nullish(),
  Email: z.string().nullish(),
  Recipient: z.string().nullish(),
  Description: z.string().nullish(),
  Details: z.string().nullish(),
  BouncedAt: z.string().nullish(),
  ChangedAt: z.string().nullish(),
  SuppressSending: z.boolean().nullish(),
  SuppressionReason: z.string().nullish(),
  Metadata: z.record(z.string(), z.unknown()).nullish(),
  Headers: z.array(z.object({ Name: z.string(), Value: z.string() })).nullish(),
});

type PostmarkRecord = z.infer<typeof recordSchema>;

// Postmark's bounce types that say something about the address. The rest (AutoResponder,
// SpamNotification, DMARCPolicy, ManuallyDeactivated, …) are about the message, or about us.
const BOUNCE_TYPES: Record<string, SubscriberEventType> = {
  HardBounce: 'hard-bounce',
  BadEmailAddress: 'hard-bounce',
  SoftBounce: 'soft-bounce',
  Transient: 'soft-bounce',
  DnsError: 'soft-bounce',
  // Blocked by the receiving server: counted like a temporary failure, as SendGrid's 'blocked' is.
  Blocked: 'soft-bounce',
  // A reply Postmark read as "unsubscribe me".
  Unsubscribe: 'unsubscribe',
};

/** True when an Authorization header carries Postmark's configured Basic credentials; constant-time. */
export function postmarkAuthorized(header: string | undefined, auth: { user: string; password: string }): boolean {
  const match = /^Basic[ \t]+([A-Za-z0-9+/=]+)[ \t]*$/i.exec(header ?? '');
  const decoded = Buffer.from(match?.[1] ?? '', 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const [user, password] = colon === -1 ? ['', ''] : [decoded.slice(0, colon), decoded.slice(colon + 1)];
  // Both compared whatever the first gives, so the time tells nothing about which was wrong.
  const userRight = sameSecret(user, auth.user);
  const passwordRight = sameSecret(password, auth.password);
  return match !== null && colon !== -1 && userRight && passwordRight;
}

/**
 * Reads one Postmark webhook record: a Bounce, a SpamComplaint, or a SubscriptionChange that
 * suppresses by hand (the recipient's unsubscribe) is a report; everything else is ignored with a
 * reason. Throws InputError when the body is not a Postmark record.
 */
export function postmarkReports(body: unknown, now: Date): { reports: InboundReport[]; ignored: string[] } {
  const parsed = recordSchema.safeParse(body);
  if (!parsed.success) {
    const where = parsed.error.issues.slice(0, 3).map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`);
    throw new InputError(`Postmark record: ${where.join('; ')}`);
  }
  const record = parsed.data;
  const type = reportType(record);
  if (typeof type !== 'string') return { reports: [], ignored: [type.ignored] };
  const email = (record.Email ?? record.Recipient ?? '').trim();
  if (!email) throw new InputError(`Postmark record: a ${record.RecordType} needs Email or Recipient`);
  return { reports: [toReport(record, type, email, now)], ignored: [] };
}

function reportType(record: PostmarkRecord): SubscriberEventType | { ignored: string } {
  const kind = record.Type ?? '';
  switch (record.RecordType) {
    case 'Bounce':
      return BOUNCE_TYPES[kind] ?? { ignored: `Postmark ${kind.slice(0, 40) || 'untyped'} bounces are not about the address` };
    case 'SpamComplaint':
      return 'complaint';
    case 'SubscriptionChange':
      // Postmark's own suppressions after a hard bounce or complaint came as those records already.
      if (record.SuppressSending !== true) return { ignored: 'a Postmark reactivation is not a report' };
      if (record.SuppressionReason !== 'ManualSuppression') return { ignored: `Postmark suppressions for ${record.SuppressionReason?.slice(0, 40) ?? 'no reason'} came as their own records` };
      return 'unsubscribe';
    default:
      return { ignored: `Postmark ${record.RecordType.slice(0, 40)} records are not reports` };
  }
}

function toReport(record: PostmarkRecord, type: SubscriberEventType, email: string, now: Date): InboundReport {
  const details = record.Details?.trim() || null;
  const when = Date.parse(record.BouncedAt ?? record.ChangedAt ?? '');
  return {
    type,
    source: 'postmark',
    deliveryId: deliveryOf(record),
    email,
    status: type === 'complaint' ? 'abuse' : (/\b([245]\.\d{1,3}\.\d{1,3})\b/.exec(details ?? '')?.[1] ?? null),
    diagnostic: details ?? (record.Description?.trim() || null),
    // Bounces and complaints have an ID of their own; a subscription change is one per message and address.
    reportId: record.ID != null ? `${record.RecordType}/${record.ID}` : `${record.RecordType}/${record.MessageID ?? record.ChangedAt ?? ''}/${email.toLowerCase()}`,
    at: Number.isNaN(when) ? now : new Date(when),
  };
}

// Postmark's MessageID is its own; ours travels in the Headers, or in Metadata when the sender put it there.
function deliveryOf(record: PostmarkRecord): number | null {
  const fromMetadata = Object.entries(record.Metadata ?? {})
    .filter(([key, value]) => /^message-?id$/i.test(key) && typeof value === 'string')
    .map(([, value]) => value as string);
  const fromHeaders = (record.Headers ?? []).filter((h) => h.Name.toLowerCase() === 'message-id').map((h) => h.Value);
  for (const candidate of [...fromMetadata, ...fromHeaders]) {
    const id = deliveryFromMessageId(candidate);
    if (id !== null) return id;
  }
  return null;
}

// Hashing both sides first makes the comparison constant-time whatever the lengths.
function sameSecret(given: string, expected: string): boolean {
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(given), digest(expected));
}
