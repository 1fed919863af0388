import type { SubscriberStatus } from '../model/subscriber.ts';

/** What a worker needs to send one delivery. */
export interface DeliveryToSend {
  id: number;
  editionId: number;
  subscriberId: number;
  email: string | null;
  name: string | null;
  subscriberStatus: SubscriberStatus | null;
  suppressed: boolean;
  /** Sends tried and failed so far: the retry budget counts these, never pauses or lease returns. */
  attempts: number;
}

/** What became of one delivery. */
export type DeliveryOutcome =
  | { status: 'sent' }
  /** Back in the queue; `counts` adds one to its attempts (false: a release that costs nothing); `error` undefined keeps the last one. */
  | { status: 'retry'; error: string | undefined; counts: boolean }
  | { status: 'failed'; error: string }
  /** Refused for good by the recipient's server: the address is suppressed and the subscriber bounced. */
  | { status: 'bounced'; error: string }
  | { status: 'skipped'; reason: string };

/** One outcome to write, with the claim that entitles the worker to write it. */
export interface OutcomeRecord {
  deliveryId: number;
  claim: string;
  outcome: DeliveryOutcome;
}

/** The result of claiming: what this worker may send, and which deliveries need nothing more. */
export interface ClaimResult {
  claimed: DeliveryToSend[];
  /** No longer queued (sent, bounced, failed, gone): their jobs can simply be acked. */
  finished: number[];
}

/**
 * The delivery ledger as the worker writes it: the truth about who was sent what. A worker claims
 * deliveries before sending and writes an outcome only while its claim holds, so a worker that lost
 * its lease can never overwrite what the one that took over recorded, and `sent` is never undone.
 */
export interface DeliveryLedger {
  /** Claims these queued deliveries for `claim` during `leaseMs`; those claimed by a live worker are left out of both lists. */
  claim(deliveryIds: readonly number[], claim: string, leaseMs: number): Promise<ClaimResult>;
  /** Renews claims still being worked on (the worker's heartbeat); returns the deliveries still held under them (the rest were taken over). */
  extend(claims: readonly string[], leaseMs: number): Promise<number[]>;
  /** Writes outcomes, each only if its claim still holds; returns the ids whose claim was lost (nothing written). */
  record(records: readonly OutcomeRecord[]): Promise<number[]>;
}
