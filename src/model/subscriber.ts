import type { SubscriberEvent } from './subscriber-event.ts';

/** Where a subscriber stands. */
export type SubscriberStatus = 'pending' | 'active' | 'unsubscribed' | 'bounced' | 'complained';

export const SUBSCRIBER_STATUSES: readonly SubscriberStatus[] = ['pending', 'active', 'unsubscribed', 'bounced', 'complained'];

/** How often a subscriber wants a list's stories. */
export type Frequency = 'instant' | 'daily' | 'weekly';

export const FREQUENCIES: readonly Frequency[] = ['instant', 'daily', 'weekly'];

/** Why an address is suppressed. */
export type SuppressionReason = 'bounced' | 'complained' | 'manual';

/** A list a subscriber wants, at a pace. */
export interface ListChoice {
  slug: string;
  frequency: Frequency;
}

/** A person on the mailing lists. Timestamps are ISO 8601 UTC. */
export interface Subscriber {
  id: number;
  /** The address as given (case kept for display and sending). */
  email: string;
  /** The lower-cased address: an address exists once whatever its case. */
  emailKey: string;
  name: string | null;
  status: SubscriberStatus;
  /** Where the subscriber came from: form, import, api, cli. */
  source: string;
  /** The IP address the subscription (consent) came from, when it came over HTTP. */
  consentIp: string | null;
  createdAt: string;
  updatedAt: string;
  confirmedAt: string | null;
  unsubscribedAt: string | null;
  confirmationSentAt: string | null;
  lists: ListChoice[];
}

/** Why and since when an address is suppressed; a bounce also names its delivery and that delivery's edition. */
export interface Suppression {
  reason: SuppressionReason;
  detail: string | null;
  /** When it was suppressed (ISO 8601 UTC). */
  since: string;
  deliveryId: number | null;
  editionId: number | null;
}

/** One page of a subscriber listing. */
export interface SubscriberPage {
  total: number;
  page: number;
  perPage: number;
  subscribers: Subscriber[];
}

/** A subscriber (or any row with an address) with its suppression, null when it may be mailed. */
export type WithSuppression<T> = T & { suppression: Suppression | null };

/** A subscriber with their suppression and what came back about their mail (newest first). */
export type WithHistory<T> = WithSuppression<T> & { events: SubscriberEvent[] };

/** A suppression taken off the list, and where its subscriber stands now. */
export interface LiftedSuppression extends Suppression {
  emailKey: string;
  /** The subscriber's address as they gave it; the key when no subscriber has it (erased, or never imported). */
  email: string;
  /** The subscriber's status after the lift; null when no subscriber has the address. */
  status: SubscriberStatus | null;
}

/** A new subscriber to insert (by import, API or form): the store stamps the id and the times. */
export type NewSubscriber = Pick<Subscriber, 'email' | 'emailKey' | 'name' | 'status' | 'source' | 'consentIp' | 'lists'>;
