import type { Generated, Insertable, Selectable } from 'kysely';

/** Where a subscriber stands. */
export type SubscriberStatus = 'pending' | 'active' | 'unsubscribed' | 'bounced' | 'complained';

/** How often a subscriber wants a list's stories. */
export type Frequency = 'instant' | 'daily' | 'weekly';

export const FREQUENCIES: readonly Frequency[] = ['instant', 'daily', 'weekly'];

/** Timestamps are ISO 8601 UTC strings: they sort as text and read the same on SQLite and Postgres. */
type Timestamp = string;

export interface SubscribersTable {
  id: Generated<number>;
  /** The address as given (case kept for display and sending). */
  email: string;
  /** Lower-cased address: unique, so an address exists once whatever its case. */
  email_key: string;
  name: string | null;
  status: SubscriberStatus;
  /** Where the subscriber came from: form, import, api, cli. */
  source: string;
  /** IP address the subscription (consent) came from, when it came over HTTP. */
  consent_ip: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
  confirmed_at: Timestamp | null;
  unsubscribed_at: Timestamp | null;
  confirmation_sent_at: Timestamp | null;
}

export interface SubscriptionsTable {
  subscriber_id: number;
  list_slug: string;
  frequency: Frequency;
  created_at: Timestamp;
}

export interface SuppressionsTable {
  email_key: string;
  reason: 'bounced' | 'complained' | 'manual';
  detail: string | null;
  created_at: Timestamp;
}

/** Where an edition's send stands. */
export type EditionStatus = 'draft' | 'sending' | 'paused' | 'sent';

/** Who of a list's subscribers an edition goes to: everyone, or those at one frequency. */
export type Audience = 'all' | Frequency;

export interface EditionsTable {
  id: Generated<number>;
  list_slug: string;
  kind: 'story' | 'digest';
  audience: Audience;
  subject: string;
  preheader: string;
  /** JSON array of the story slugs, in order. */
  story_slugs: string;
  /** JSON of the compiled HTML and text (SlotTemplate each): kept so a resend is identical. */
  compiled: string;
  html_bytes: number;
  /** Stories dated up to this instant were eligible: the next --since-last digest starts here. */
  covers_until: Timestamp;
  status: EditionStatus;
  last_error: string | null;
  created_at: Timestamp;
  enqueued_at: Timestamp | null;
  completed_at: Timestamp | null;
  /** The schedule that made it, if any. */
  schedule_id: number | null;
}

/** Where one delivery stands. */
export type DeliveryStatus = 'queued' | 'sent' | 'failed' | 'bounced' | 'skipped';

export interface DeliveriesTable {
  id: Generated<number>;
  edition_id: number;
  subscriber_id: number;
  status: DeliveryStatus;
  attempts: number;
  last_error: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
  sent_at: Timestamp | null;
}

/** The embedded queue: one row per job waiting or leased; a finished job's row is deleted. */
export interface QueueJobsTable {
  /** The delivery id: one job per delivery, so enqueueing twice adds nothing. */
  id: number;
  /** The edition, so a paused edition's jobs can be held back together. */
  group_id: number;
  /** Epoch milliseconds from which the job may be taken. */
  available_at: number;
  /** Epoch milliseconds until which a worker holds it; null when free. */
  lease_until: number | null;
  attempts: number;
}

/** Every table Gazette keeps, for Kysely's types. */
export interface Database {
  subscribers: SubscribersTable;
  subscriptions: SubscriptionsTable;
  suppressions: SuppressionsTable;
  editions: EditionsTable;
  deliveries: DeliveriesTable;
  queue_jobs: QueueJobsTable;
}

export type SubscriberRow = Selectable<SubscribersTable>;
export type NewSubscriberRow = Insertable<SubscribersTable>;
export type SubscriptionRow = Selectable<SubscriptionsTable>;
export type EditionRow = Selectable<EditionsTable>;
export type DeliveryRow = Selectable<DeliveriesTable>;
