import type { ReportSource, SubscriberEventType } from '../model/subscriber-event.ts';

/**
 * One thing a report says about one recipient of one message, from whichever way it came in
 * (a DSN or an ARF report by mail, a provider's webhook, a mail to the unsubscribe address).
 */
export interface InboundReport {
  type: SubscriberEventType;
  source: ReportSource;
  /**
   * The delivery it concerns: from a VERP address or X-Gazette-Delivery header we signed, or, for
   * a verified webhook, from the Message-ID we gave the message. Null when only the address is known.
   */
  deliveryId: number | null;
  /**
   * The subscriber a signed unsubscribe token names (the mailto: of a welcome email, which belongs
   * to no delivery); undefined otherwise.
   */
  subscriberId?: number | undefined;
  /** The recipient as the report names it; the subscriber is found by it when no delivery is known. */
  email: string | null;
  /** Enhanced status code (5.1.1) of a bounce; the feedback type (abuse, fraud, …) of a complaint. */
  status: string | null;
  /** The remote server's words or the provider's description, for the subscriber's history. */
  diagnostic: string | null;
  /**
   * The report's own identity (a provider's event id; a DSN's Message-ID and recipient): with the
   * delivery, what makes the same report processed twice count once.
   */
  reportId: string;
  /** When the event happened, as the report says; the time it arrived otherwise. */
  at: Date;
}

/** What handling one report did. */
export interface ReportOutcome {
  /** recorded: acted on and written; duplicate: seen before, nothing changed; ignored: not ours or about nobody. */
  result: 'recorded' | 'duplicate' | 'ignored';
  /** Why it was ignored, for logs and the webhook's answer. */
  reason?: string;
}

/** The one handler every way in feeds. Rejects only when the store failed (the report must be retried). */
export interface ReportHandler {
  handle(report: InboundReport): Promise<ReportOutcome>;
}

/** A mail that arrived for the bounce or unsubscribe address. */
export interface InboundMail {
  /** The whole message as received. */
  raw: Buffer;
  /**
   * The envelope recipients (RCPT TO). Empty when read from a mailbox: the reader then takes
   * Delivered-To, X-Original-To and To from the headers.
   */
  recipients: string[];
  source: Extract<ReportSource, 'smtp' | 'mailbox'>;
}

/** What reading and handling one mail did. */
export interface MailOutcome {
  /** Reports recorded (a DSN may name several recipients). */
  recorded: number;
  duplicates: number;
  /** Why nothing was recorded (an auto-reply, a forged token, not a report), or null. */
  ignored: string | null;
}

/** Reads a mail into reports and hands them to the ReportHandler. Rejects only when the store failed. */
export type InboundMailHandler = (mail: InboundMail) => Promise<MailOutcome>;
