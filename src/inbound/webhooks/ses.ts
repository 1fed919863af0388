import { z } from 'zod';
import { InputError } from '../../errors.ts';
import { deliveryFromMessageId } from '../../links/delivery-tokens.ts';
import type { InboundReport } from '../inbound-report.ts';

const recipient = z.object({
  emailAddress: z.string().min(1),
  status: z.string().nullish(),
  diagnosticCode: z.string().nullish(),
});

const mail = z
  .object({
    headers: z.array(z.object({ name: z.string(), value: z.string() })).nullish(),
    commonHeaders: z.object({ messageId: z.string().nullish() }).nullish(),
  })
  .nullish();

const bounceSchema = z.object({
  bounce: z.object({
    bounceType: z.string(),
    bounceSubType: z.string().nullish(),
    bouncedRecipients: z.array(recipient),
    timestamp: z.string().nullish(),
    feedbackId: z.string().nullish(),
  }),
  mail,
});

const complaintSchema = z.object({
  complaint: z.object({
    complainedRecipients: z.array(recipient.pick({ emailAddress: true })),
    complaintFeedbackType: z.string().nullish(),
    timestamp: z.string().nullish(),
    feedbackId: z.string().nullish(),
  }),
  mail,
});

/** The SNS notification an SES notification came in: its id and time stand in for missing ones. */
export interface SesEnvelope {
  MessageId: string;
  Message: string;
  Timestamp: string;
}

/**
 * Reads an SES notification (or event publishing event) carried by a verified SNS Notification:
 * a report per bounced or complained recipient; deliveries, opens, SES's set-up test message and
 * the like are ignored with a reason. Throws InputError when a Bounce or Complaint is malformed.
 */
export function sesReports(envelope: SesEnvelope, now: Date): { reports: InboundReport[]; ignored: string[] } {
  let body: unknown;
  try {
    body = JSON.parse(envelope.Message);
  } catch {
    return { reports: [], ignored: ['the SNS message is not an SES notification (not JSON)'] };
  }
  const kind = notificationKind(body);
  if (kind === 'Bounce') return { reports: bounceReports(parse(bounceSchema, body), envelope, now), ignored: [] };
  if (kind === 'Complaint') return { reports: complaintReports(parse(complaintSchema, body), envelope, now), ignored: [] };
  return { reports: [], ignored: [kind ? `SES ${kind} notifications are not reports` : 'the SNS message is not an SES notification'] };
}

// Notifications name it notificationType; event publishing (configuration sets) eventType.
function notificationKind(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const { notificationType, eventType } = body as Record<string, unknown>;
  const kind = typeof notificationType === 'string' ? notificationType : eventType;
  return typeof kind === 'string' ? kind.slice(0, 40) : undefined;
}

function bounceReports(body: z.infer<typeof bounceSchema>, envelope: SesEnvelope, now: Date): InboundReport[] {
  const { bounce } = body;
  // Undetermined is SES's word for a bounce it could not read: not proof the address is gone.
  const type = bounce.bounceType === 'Permanent' ? 'hard-bounce' : 'soft-bounce';
  const deliveryId = deliveryOf(body.mail);
  const at = dateOr(bounce.timestamp ?? envelope.Timestamp, now);
  return bounce.bouncedRecipients.map((r) => ({
    type,
    source: 'ses',
    deliveryId,
    email: r.emailAddress.trim(),
    status: r.status ?? null,
    diagnostic: r.diagnosticCode ?? [bounce.bounceType, bounce.bounceSubType].filter(Boolean).join(' '),
    reportId: `${bounce.feedbackId ?? envelope.MessageId}/${r.emailAddress.trim().toLowerCase()}`,
    at,
  }));
}

function complaintReports(body: z.infer<typeof complaintSchema>, envelope: SesEnvelope, now: Date): InboundReport[] {
  const { complaint } = body;
  const deliveryId = deliveryOf(body.mail);
  const at = dateOr(complaint.timestamp ?? envelope.Timestamp, now);
  return complaint.complainedRecipients.map((r) => ({
    type: 'complaint',
    source: 'ses',
    deliveryId,
    email: r.emailAddress.trim(),
    status: complaint.complaintFeedbackType ?? 'abuse',
    diagnostic: null,
    reportId: `${complaint.feedbackId ?? envelope.MessageId}/${r.emailAddress.trim().toLowerCase()}`,
    at,
  }));
}

// SES may put its own Message-ID in commonHeaders while the raw headers keep ours: try every one.
function deliveryOf(mailObject: z.infer<typeof mail>): number | null {
  const candidates = [
    mailObject?.commonHeaders?.messageId,
    ...(mailObject?.headers ?? []).filter((h) => h.name.toLowerCase() === 'message-id').map((h) => h.value),
  ];
  for (const candidate of candidates) {
    const id = deliveryFromMessageId(candidate);
    if (id !== null) return id;
  }
  return null;
}

function dateOr(text: string, fallback: Date): Date {
  const time = Date.parse(text);
  return Number.isNaN(time) ? fallback : new Date(time);
}

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const where = parsed.error.issues.slice(0, 3).map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`);
  throw new InputError(`SES notification: ${where.join('; ')}`);
}
