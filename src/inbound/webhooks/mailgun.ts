import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { InputError } from '../../errors.ts';
import { deliveryFromMessageId } from '../../links/delivery-tokens.ts';
import type { SubscriberEventType } from '../../model/subscriber-event.ts';
import type { InboundReport } from '../inbound-report.ts';

const bodySchema = z.object({
  signature: z.object({
    timestamp: z.union([z.string(), z.number()]).transform(String),
    token: z.string().min(1).max(200),
    signature: z.string(),
  }),
  'event-data': z.object({
    id: z.string().min(1),
    event: z.string(),
    timestamp: z.number().nullish(),
    severity: z.string().nullish(),
    reason: z.string().nullish(),
    recipient: z.string().nullish(),
    'delivery-status': z
      .object({
        code: z.union([z.number(), z.string()]).nullish(),
        'enhanced-code': z.string().nullish(),
        message: z.string().nullish(),
        description: z.string().nullish(),
      })
      .nullish(),
    message: z.object({ headers: z.record(z.string(), z.unknown()).nullish() }).nullish(),
  }),
});

/** A Mailgun webhook body: the signature block, and the one event it carries. */
export type MailgunBody = z.infer<typeof bodySchema>;
type MailgunEvent = MailgunBody['event-data'];

/** Reads a parsed JSON body as Mailgun's; throws InputError naming the first wrong field. */
export function parseMailgunBody(body: unknown): MailgunBody {
  const parsed = bodySchema.safeParse(body);
  if (parsed.success) return parsed.data;
  const where = parsed.error.issues.slice(0, 3).map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`);
  throw new InputError(`Mailgun webhook: ${where.join('; ')}`);
}

/** Options of MailgunVerifier, each with its default. */
export interface MailgunVerifierOptions {
  signingKey: string;
  now: () => Date;
  /** How far the signed timestamp may be from now; default 5 minutes. */
  maxSkewMs?: number;
  /** Tokens remembered to refuse a replay; default 10 000. */
  maxTokens?: number;
}

/**
 * Checks Mailgun's webhook signature (hex HMAC-SHA256 of timestamp + token), refusing a stale
 * timestamp and a token seen before. One per process: it remembers the tokens.
 */
export class MailgunVerifier {
  private readonly key: string;
  private readonly now: () => Date;
  private readonly maxSkewMs: number;
  private readonly maxTokens: number;
  /** Token → when it may be forgotten (its timestamp is then too old to pass anyway); oldest first. */
  private readonly seen = new Map<string, number>();

  constructor(options: MailgunVerifierOptions) {
    this.key = options.signingKey;
    this.now = options.now;
    this.maxSkewMs = options.maxSkewMs ?? 5 * 60_000;
    this.maxTokens = options.maxTokens ?? 10_000;
  }

  /** Why the signature is refused, or undefined; a genuine one's token is remembered from now on. */
  refusal(signature: MailgunBody['signature']): string | undefined {
    const expected = createHmac('sha256', this.key).update(signature.timestamp + signature.token).digest();
    const wellFormed = /^[0-9a-f]{64}$/i.test(signature.signature);
    // Compared even when malformed, so a malformed signature and a wrong one take the same time.
    const given = wellFormed ? Buffer.from(signature.signature, 'hex') : Buffer.alloc(expected.length);
    if (!timingSafeEqual(given, expected) || !wellFormed) return 'the signature does not match';
    const now = this.now().getTime();
    const signedAt = Number(signature.timestamp) * 1000;
    if (!Number.isFinite(signedAt) || Math.abs(now - signedAt) > this.maxSkewMs) return `the signed timestamp ${signature.timestamp.slice(0, 20)} is more than 5 minutes off`;
    this.forgetExpired(now);
    if (this.seen.has(signature.token)) return 'this token was used before (a replay)';
    this.seen.set(signature.token, signedAt + this.maxSkewMs);
    if (this.seen.size > this.maxTokens) this.seen.delete(this.seen.keys().next().value!);
    return undefined;
  }

  /** Forgets a token, so Mailgun's retry of a request that could not be recorded is taken. */
  release(token: string): void {
    this.seen.delete(token);
  }

  private forgetExpired(now: number): void {
    for (const [token, until] of this.seen) {
      if (until >= now) break;
      this.seen.delete(token);
    }
  }
}

/**
 * Reads Mailgun's event: a permanent failure is a hard bounce (or the unsubscribe or complaint that
 * put the address on Mailgun's list), a temporary one soft; complained and unsubscribed are
 * reports too; deliveries, opens and clicks are ignored with a reason.
 */
export function mailgunReports(event: MailgunEvent, now: Date): { reports: InboundReport[]; ignored: string[] } {
  const type = reportType(event);
  if (typeof type !== 'string') return { reports: [], ignored: [type.ignored] };
  const email = event.recipient?.trim();
  if (!email) throw new InputError(`Mailgun webhook: event-data.recipient: a ${event.event.slice(0, 40)} event needs one`);
  const status = event['delivery-status'];
  const diagnostic = status?.message?.trim() || status?.description?.trim() || null;
  const headers = event.message?.headers ?? {};
  const messageId = headers['message-id'] ?? headers['Message-Id'];
  return {
    reports: [
      {
        type,
        source: 'mailgun',
        deliveryId: typeof messageId === 'string' ? deliveryFromMessageId(messageId) : null,
        email,
        status: type === 'complaint' ? 'abuse' : (status?.['enhanced-code'] ?? enhancedCode(diagnostic) ?? (status?.code != null ? String(status.code) : null)),
        diagnostic: type === 'complaint' || type === 'unsubscribe' ? null : diagnostic,
        reportId: event.id,
        at: event.timestamp != null && Number.isFinite(event.timestamp) ? new Date(event.timestamp * 1000) : now,
      },
    ],
    ignored: [],
  };
}

function reportType(event: MailgunEvent): SubscriberEventType | { ignored: string } {
  if (event.event === 'complained') return 'complaint';
  if (event.event === 'unsubscribed') return 'unsubscribe';
  if (event.event !== 'failed') return { ignored: `Mailgun ${event.event.slice(0, 40)} events are not reports` };
  if (event.severity === 'temporary') return 'soft-bounce';
  if (event.severity !== 'permanent') return { ignored: `a Mailgun failure of severity ${event.severity?.slice(0, 40) ?? 'none'}` };
  // Mailgun's own suppression list refused the send: the reason it is on the list is the report.
  if (event.reason === 'suppress-unsubscribe') return 'unsubscribe';
  if (event.reason === 'suppress-complaint') return 'complaint';
  // "old": Mailgun gave up after hours of temporary failures, which says little about the address.
  if (event.reason === 'old') return 'soft-bounce';
  return 'hard-bounce';
}

function enhancedCode(text: string | null): string | null {
  return /\b([245]\.\d{1,3}\.\d{1,3})\b/.exec(text ?? '')?.[1] ?? null;
}
