import { createHash } from 'node:crypto';
import type { DeliveryTokens, InboundAddress } from '../links/delivery-tokens.ts';
import type { TokenSigner } from '../links/tokens.ts';
import type { InboundMail, InboundMailHandler, InboundReport, MailOutcome, ReportHandler } from './inbound-report.ts';
import { readReport, type DsnRecipient, type OriginalHeaders, type ReadMail } from './read-report.ts';

/** What reading mails into reports needs. */
export interface MailReportDeps {
  reports: ReportHandler;
  deliveryTokens: DeliveryTokens;
  /** Checks the subscriber unsubscribe token a welcome email's mailto: carries in its subject. */
  tokens: TokenSigner;
  /** The bounce domains whose `bounces` and `unsubscribe` addresses are ours. */
  domains: string[];
  now: () => Date;
}

/** Whether an address is one Gazette reads mail for (the receiver refuses the rest at RCPT). */
export function isInboundAddress(tokens: DeliveryTokens, domains: string[], address: string): boolean {
  return domains.some((domain) => tokens.parse(address, domain) !== undefined);
}

const DELIVERY_TOKEN = /\bd[0-9a-z]{1,11}-[0-9a-f]{20}\b/i;
const SUBSCRIBER_TOKEN = /\b[0-9a-z]{1,11}\.u\.[0-9a-z]{1,9}\.[A-Za-z0-9_-]{43}\b/;

/**
 * Reads a mail to the bounce or unsubscribe address and hands what it says to the report handler:
 * a DSN's failed recipient is a hard (5.x.x) or soft (4.x.x) bounce, an ARF report a complaint, a
 * mail to the unsubscribe address an unsubscribe whatever its body. The delivery comes from the
 * signed VERP token, else from the X-Gazette-Delivery header of the quoted original; a forged token
 * and an auto-reply are ignored.
 */
export function inboundMailHandler(deps: MailReportDeps): InboundMailHandler {
  return async (mail) => {
    const read = await readReport(mail.raw);
    const addresses = ours(deps, mail, read);
    if (addresses.length === 0) return ignored('not addressed to the bounce or unsubscribe address');
    const reportId = messageIdOf(read) ?? `sha256:${createHash('sha256').update(mail.raw).digest('hex')}`;
    const reports = addresses.some((a) => a.role === 'unsubscribe') && read.kind !== 'delivery-status' && read.kind !== 'feedback'
      ? unsubscribeReports(deps, mail, read, addresses, reportId)
      : bounceReports(deps, mail, read, addresses, reportId);
    if (typeof reports === 'string') return ignored(reports);
    const outcome: MailOutcome = { recorded: 0, duplicates: 0, ignored: null };
    const reasons: string[] = [];
    for (const report of reports) {
      const handled = await deps.reports.handle(report);
      if (handled.result === 'recorded') outcome.recorded++;
      else if (handled.result === 'duplicate') outcome.duplicates++;
      else reasons.push(handled.reason ?? 'ignored');
    }
    if (outcome.recorded === 0 && outcome.duplicates === 0) outcome.ignored = reasons.join('; ') || 'nothing to record';
    return outcome;
  };
}

function ignored(why: string): MailOutcome {
  return { recorded: 0, duplicates: 0, ignored: why };
}

// The envelope's recipients; a mailbox has none, so the headers a delivering MTA adds stand in.
function ours(deps: MailReportDeps, mail: InboundMail, read: ReadMail): InboundAddress[] {
  const candidates = mail.recipients.length > 0 ? mail.recipients : headerRecipients(mail.raw);
  const found: InboundAddress[] = [];
  for (const address of candidates) {
    for (const domain of deps.domains) {
      const parsed = deps.deliveryTokens.parse(address.trim(), domain);
      if (parsed) found.push(parsed);
    }
  }
  // A report read from a mailbox: its headers were not kept apart, so accept it as a bounce.
  if (found.length === 0 && mail.recipients.length === 0 && read.kind !== 'other') found.push({ role: 'bounces', deliveryId: null, hadToken: false });
  return found;
}

const RECIPIENT_HEADERS = /^(delivered-to|x-original-to|envelope-to|to|cc):(.*)$/gim;
const ADDRESS = /[^\s<>,;:"()]+@[^\s<>,;:"()]+/g;

// The addresses a delivering MTA and the sender put in the top headers (folded lines joined).
function headerRecipients(raw: Buffer): string[] {
  const end = raw.indexOf('\r\n\r\n') >= 0 ? raw.indexOf('\r\n\r\n') : raw.indexOf('\n\n');
  const head = raw.subarray(0, end < 0 ? Math.min(raw.length, 65_536) : Math.min(end, 65_536)).toString('latin1').replace(/\r?\n[ \t]+/g, ' ');
  return [...head.matchAll(RECIPIENT_HEADERS)].flatMap((match) => match[2]!.match(ADDRESS) ?? []);
}

function unsubscribeReports(deps: MailReportDeps, mail: InboundMail, read: ReadMail, addresses: InboundAddress[], reportId: string): InboundReport[] | string {
  const base = { type: 'unsubscribe' as const, source: mail.source, email: null, status: null, diagnostic: 'unsubscribed by mail', reportId, at: deps.now() };
  const signed = addresses.find((a) => a.role === 'unsubscribe' && a.deliveryId !== null);
  if (signed) return [{ ...base, deliveryId: signed.deliveryId }];
  if (addresses.some((a) => a.role === 'unsubscribe' && a.hadToken)) return 'the unsubscribe address holds a token we did not sign';
  const subject = read.kind === 'other' ? read.subject : '';
  const deliveryToken = DELIVERY_TOKEN.exec(subject)?.[0];
  const deliveryId = deliveryToken ? deps.deliveryTokens.verify(deliveryToken) : null;
  if (deliveryId !== null) return [{ ...base, deliveryId }];
  const subscriberToken = SUBSCRIBER_TOKEN.exec(subject)?.[0];
  const check = subscriberToken ? deps.tokens.verify(subscriberToken, 'unsubscribe', deps.now()) : undefined;
  if (check?.ok) return [{ ...base, deliveryId: null, subscriberId: check.subscriberId }];
  return 'an unsubscribe mail without a token we signed (in the address or the subject)';
}

function bounceReports(deps: MailReportDeps, mail: InboundMail, read: ReadMail, addresses: InboundAddress[], reportId: string): InboundReport[] | string {
  if (read.kind === 'auto-reply') return `an auto-reply (${read.why})`;
  const verp = addresses.find((a) => a.deliveryId !== null);
  if (!verp && addresses.some((a) => a.hadToken)) return 'the return path holds a token we did not sign';
  const deliveryId = verp?.deliveryId ?? quotedDelivery(deps, 'original' in read ? read.original : null);
  if (deliveryId === null) return 'names no delivery we signed (no VERP token, no X-Gazette-Delivery in the quoted original)';
  const at = deps.now();
  switch (read.kind) {
    case 'delivery-status': {
      const failed = worstFailure(read.recipients);
      if (!failed) return 'a delivery status notification without a failed recipient (delayed or delivered)';
      const status = failed.status ?? '5.0.0';
      return [
        {
          type: bounceType(status),
          source: mail.source,
          deliveryId,
          email: failed.finalRecipient ?? failed.originalRecipient,
          status,
          diagnostic: failed.diagnosticCode,
          reportId: `${reportId}:${failed.finalRecipient ?? ''}`,
          at,
        },
      ];
    }
    case 'feedback':
      if (read.feedbackType === 'not-spam') return 'a not-spam feedback report';
      return [{ type: 'complaint', source: mail.source, deliveryId, email: read.originalRcptTo[0] ?? null, status: read.feedbackType, diagnostic: read.userAgent, reportId, at: read.arrivalDate ?? at }];
    case 'other':
      if (!read.bounceGuess) return 'not a delivery report';
      return [
        {
          type: bounceType(read.bounceGuess.status),
          source: mail.source,
          deliveryId,
          email: null,
          status: read.bounceGuess.status,
          diagnostic: read.bounceGuess.diagnostic,
          reportId,
          at,
        },
      ];
  }
}

/**
 * 4.x.x is soft, 5.x.x hard, but for X.2.2 (mailbox full): RFC 3463 calls it transient whatever its
 * class, and a reader who empties their inbox should not be lost for it.
 */
export function bounceType(status: string): 'hard-bounce' | 'soft-bounce' {
  return status.startsWith('4') || /^5\.2\.2$/.test(status) ? 'soft-bounce' : 'hard-bounce';
}

function quotedDelivery(deps: MailReportDeps, original: OriginalHeaders | null): number | null {
  const token = original?.gazetteDelivery;
  return token ? deps.deliveryTokens.verify(token) : null;
}

// Our messages have one recipient; a forwarding address may expand to several: the worst failure counts.
function worstFailure(recipients: DsnRecipient[]): DsnRecipient | undefined {
  const failed = recipients.filter((r) => r.action === 'failed');
  return failed.find((r) => r.status?.startsWith('5')) ?? failed[0];
}

function messageIdOf(read: ReadMail): string | null {
  return read.messageId?.trim() || null;
}
