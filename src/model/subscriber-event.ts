/** What came back about a message: a bounce, a complaint, or an unsubscribe by mail. */
export type SubscriberEventType = 'hard-bounce' | 'soft-bounce' | 'complaint' | 'unsubscribe';

export const SUBSCRIBER_EVENT_TYPES: readonly SubscriberEventType[] = ['hard-bounce', 'soft-bounce', 'complaint', 'unsubscribe'];

/** The way a report reached Gazette. */
export type ReportSource = 'smtp' | 'mailbox' | 'ses' | 'postmark' | 'mailgun' | 'sendgrid';

/** What Gazette did about an event. */
export type EventAction =
  /** The address was suppressed (a hard bounce, or the soft bounce that reached the limit). */
  | 'suppressed'
  /** A soft bounce below the limit: counted only. */
  | 'counted'
  /** Unsubscribed from the delivery's list (or every list, when the report named none). */
  | 'unsubscribed'
  /** Marked complained, unsubscribed from every list and suppressed. */
  | 'complained'
  /** Nothing to change: the subscriber was already out. */
  | 'none';

/** One event on a subscriber, as recorded. Timestamps are ISO 8601 UTC. */
export interface SubscriberEvent {
  id: number;
  subscriberId: number;
  type: SubscriberEventType;
  source: ReportSource;
  action: EventAction;
  /** The delivery (and so the edition and list) it concerns, when the report named one. */
  deliveryId: number | null;
  editionId: number | null;
  listSlug: string | null;
  /** The enhanced status code (RFC 3463), e.g. 5.1.1; the feedback type of a complaint (abuse, fraud, …). */
  status: string | null;
  /** The remote server's words (Diagnostic-Code), or the provider's description. */
  diagnostic: string | null;
  at: string;
}

/** An edition's events by type. */
export type EditionEventCounts = Record<SubscriberEventType, number>;
