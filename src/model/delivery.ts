/** Where one delivery stands. */
export type DeliveryStatus = 'queued' | 'sent' | 'failed' | 'bounced' | 'skipped';

/** An edition's deliveries by status; `sending` counts the queued ones a worker holds now. */
export type DeliveryCounts = Record<DeliveryStatus, number> & { sending: number };

/** One delivery of an edition to a subscriber, as their history shows it. Timestamps are ISO 8601 UTC. */
export interface SubscriberDelivery {
  id: number;
  editionId: number;
  subject: string;
  listSlug: string;
  status: DeliveryStatus;
  attempts: number;
  lastError: string | null;
  sentAt: string | null;
  updatedAt: string;
}
