import type { Generated, Insertable, Selectable } from 'kysely';
import type { DeliveryStatus } from '../model/delivery.ts';
import type { Audience, EditionKind, EditionStatus, PauseKind } from '../model/edition.ts';
import type { NoticeKind, NoticeStatus } from '../model/notice.ts';
import type { Role } from '../model/user.ts';
import type { FireStatus, ScheduleKind, ScheduleStatus } from '../model/schedule.ts';
import type { EventAction, ReportSource, SubscriberEventType } from '../model/subscriber-event.ts';
import type { Frequency, SubscriberStatus, SuppressionReason } from '../model/subscriber.ts';

// The tables as the database holds them: the store's own business. The rest of Gazette works on
// the domain types of src/model/, which the repositories translate these rows into.

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
  reason: SuppressionReason;
  detail: string | null;
  created_at: Timestamp;
  /** The delivery whose bounce suppressed it, so an edition's bounces can be lifted together. */
  delivery_id: number | null;
}

export interface EditionsTable {
  id: Generated<number>;
  list_slug: string;
  kind: EditionKind;
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
  pause_kind: PauseKind | null;
  /** When an outage-paused edition is tried again (a worker resumes it). */
  resume_at: Timestamp | null;
  /** Outage pauses in a row without progress: the backoff before the next try. */
  outage_pauses: number | null;
  /** JSON of the EditionOrigin (base URL, sender, list) it was made with; null on editions made before it was kept. */
  origin: string | null;
  /** When the first send had added every subscriber: later sends add nobody new unless asked to. */
  audience_closed_at: Timestamp | null;
}

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
  /** The worker claim that may write this delivery's outcome (a fence against late writers); null when free. */
  claim_token: string | null;
  /** Epoch milliseconds until which the claim holds. */
  claim_until: number | null;
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
  /** Who holds the lease: ack/retry with another token change nothing. */
  lease_token: string | null;
  attempts: number;
}

/** When each story was first seen as a draft and first seen published: a draft made public later counts from then. */
export interface StoryPublicationsTable {
  story_slug: string;
  draft_seen_at: Timestamp | null;
  published_seen_at: Timestamp | null;
}

/** Editions whose jobs are held back (paused): reserve skips them. */
export interface QueueHoldsTable {
  group_id: number;
  created_at: Timestamp;
}

/** Transactional messages (confirmations, welcomes), built whole when asked for and sent by a worker. */
export interface NoticesTable {
  id: Generated<number>;
  kind: NoticeKind;
  subscriber_id: number | null;
  email: string;
  /** The address with +tags (and Gmail dots) folded: throttles count per mailbox, not per alias. */
  mailbox_key: string;
  /** The client IP that asked for it, for the per-IP limit. */
  ip: string | null;
  envelope_from: string;
  message_key: string;
  /** The whole message, unsigned (the worker signs it). */
  raw: string;
  status: NoticeStatus;
  attempts: number;
  last_error: string | null;
  available_at: number;
  claim_token: string | null;
  claim_until: number | null;
  created_at: Timestamp;
  sent_at: Timestamp | null;
}

/** What came back about a subscriber's mail (bounces, complaints, unsubscribes by mail), and what was done. */
export interface SubscriberEventsTable {
  id: Generated<number>;
  subscriber_id: number;
  type: SubscriberEventType;
  source: ReportSource;
  action: EventAction;
  delivery_id: number | null;
  edition_id: number | null;
  list_slug: string | null;
  status: string | null;
  diagnostic: string | null;
  /** The report's own id (a provider's event id, a DSN's Message-ID). */
  report_id: string;
  /** Unique: per delivery and type when the delivery is known, else per report; the same report twice is one row. */
  dedupe_key: string;
  occurred_at: Timestamp;
  created_at: Timestamp;
}

/** Every table Gazette keeps, for Kysely's types. */
export interface Database {
  subscribers: SubscribersTable;
  subscriptions: SubscriptionsTable;
  suppressions: SuppressionsTable;
  editions: EditionsTable;
  deliveries: DeliveriesTable;
  queue_jobs: QueueJobsTable;
  queue_holds: QueueHoldsTable;
  story_publications: StoryPublicationsTable;
  notices: NoticesTable;
  schedules: SchedulesTable;
  schedule_fires: ScheduleFiresTable;
  schedule_published: SchedulePublishedTable;
  subscriber_events: SubscriberEventsTable;
  users: UsersTable;
  api_tokens: ApiTokensTable;
  console_sessions: ConsoleSessionsTable;
}

export type SubscriberRow = Selectable<SubscribersTable>;
export type NewSubscriberRow = Insertable<SubscribersTable>;
export type SubscriptionRow = Selectable<SubscriptionsTable>;
export type EditionRow = Selectable<EditionsTable>;
export type DeliveryRow = Selectable<DeliveriesTable>;

export interface SchedulesTable {
  id: Generated<number>;
  kind: ScheduleKind;
  list_slug: string;
  /** The edition a one-off sends. */
  edition_id: number | null;
  /** The instant a one-off fires (ISO 8601 UTC). */
  at: Timestamp | null;
  /** The cron expression (5 or 6 fields) of a recurring digest, read in `timezone`. */
  cron: string | null;
  /** IANA zone the cron expression's wall-clock times are in. */
  timezone: string | null;
  /** Who of the list gets the editions it makes. */
  audience: Audience;
  status: ScheduleStatus;
  created_at: Timestamp;
  /** Changes on every edit: schedulers in other processes reload the schedule when it moves. */
  updated_at: Timestamp;
}

/** One fire of a schedule; (schedule_id, fire_at) is unique, so a fire happens at most once. */
export interface ScheduleFiresTable {
  id: Generated<number>;
  schedule_id: number;
  /** The scheduled instant (ISO 8601 UTC, canonical `toISOString()` form). */
  fire_at: Timestamp;
  status: FireStatus;
  edition_id: number | null;
  /** Why it was skipped, missed or failed; what was queued when sent. */
  detail: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
  /** A running fire's owner renews this while it works; once past, the next scheduler tick resumes the fire. */
  lease_until: Timestamp | null;
  /** Tries so far (null: one, from before retries were kept). */
  attempts: number | null;
  /** When a retrying fire is tried again. */
  next_attempt_at: Timestamp | null;
}

/** Stories an on-publish schedule has seen: each is sent once; the ones present at creation are not sent. */
export interface SchedulePublishedTable {
  schedule_id: number;
  story_slug: string;
  /** The single-story edition sent; null for stories already published when the schedule was made. */
  edition_id: number | null;
  created_at: Timestamp;
}

export type ScheduleRow = Selectable<SchedulesTable>;
export type ScheduleFireRow = Selectable<ScheduleFiresTable>;

/** Console users. The password is kept only as an argon2id hash (PHC string). */
export interface UsersTable {
  id: Generated<number>;
  email: string;
  /** Lower-cased address: one account per address whatever its case. */
  email_key: string;
  role: Role;
  password_hash: string;
  created_at: Timestamp;
  password_changed_at: Timestamp;
  last_login_at: Timestamp | null;
  /** IANA zone the console shows times in for this user; null: not chosen yet. */
  time_zone: string | null;
}

/** Per-user API tokens: only a SHA-256 of each is kept (a token is a long random secret, so no slow hash is needed). */
export interface ApiTokensTable {
  id: Generated<number>;
  user_id: number;
  name: string;
  token_hash: string;
  prefix: string;
  created_at: Timestamp;
  last_used_at: Timestamp | null;
}

/** Console sessions, shared by every server process: the id is kept only as a SHA-256, so a leaked table opens nothing. */
export interface ConsoleSessionsTable {
  id_hash: string;
  user_id: number | null;
  /** The session's fields as JSON (who is signed in, the CSRF secret). */
  data: string;
  /** When it lapses unless used again (idle expiry). */
  expires_at: Timestamp;
}
