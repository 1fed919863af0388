/** Where one delivery stands. */
export type DeliveryStatus = 'queued' | 'sent' | 'failed' | 'bounced' | 'skipped';

/** An edition's deliveries by status; `sending` counts the queued ones a worker holds now. */
export type DeliveryCounts = Record<DeliveryStatus, number> & { sending: number };
