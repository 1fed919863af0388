import type { DeliveryCounts } from '../model/delivery.ts';
import type { EditionEventCounts } from '../model/subscriber-event.ts';
import type { EditionOrigin } from '../model/content.ts';
import type { Audience, Edition, EditionKind, EditionStatus, EditionSummary, PauseKind } from '../model/edition.ts';
import type { CompiledEdition } from '../render/compile-edition.ts';

/** A new edition to store. */
export interface NewEdition {
  listSlug: string;
  kind: EditionKind;
  audience: Audience;
  storySlugs: string[];
  compiled: CompiledEdition;
  origin: EditionOrigin;
  htmlBytes: number;
  coversUntil: Date;
  scheduleId?: number | null;
}

/** The editions as making, sending and reporting on them needs: the store's side of the edition use cases. */
export interface EditionRecords {
  /** Stores a new draft; `withId` makes the final render from its id in the same transaction. */
  insert(edition: NewEdition, now: Date, withId?: (id: number) => CompiledEdition): Promise<number>;
  find(id: number): Promise<Edition | undefined>;
  /** A draft starts sending; false when it is no longer a draft (cancelled meanwhile, or another send began). */
  startSending(id: number, now: Date): Promise<boolean>;
  /** Replaces a draft's render (a new subject or preheader); false when it is no longer a draft. */
  replaceDraft(id: number, compiled: CompiledEdition): Promise<boolean>;
  /**
   * Ends a draft, a send in progress or a paused one for good: its queued deliveries become skipped.
   * False when it had already finished (or was cancelled).
   */
  cancel(id: number, reason: string, now: Date): Promise<boolean>;
  /** Newest first, without their renders. */
  list(limit?: number): Promise<EditionSummary[]>;
  /** The newest edition of a list that went out (or is going out): where "since the last one" starts. */
  lastSent(listSlug: string, audience?: Audience): Promise<Edition | undefined>;
  setStatus(id: number, status: EditionStatus, now: Date, lastError?: string | null): Promise<void>;
  /** False when it was not sending. */
  pause(id: number, kind: PauseKind, reason: string): Promise<boolean>;
  /** False when it was not paused. */
  resume(id: number, by: 'operator' | 'worker'): Promise<boolean>;
  /** The first send had everyone: later sends add nobody new unless asked to. */
  closeAudience(id: number): Promise<void>;
  /** Closes a send with nothing left queued; the status it got, or undefined. */
  finish(id: number): Promise<EditionStatus | undefined>;
}

/** The delivery ledger as sending and reporting on an edition needs it (the worker has its own port). */
export interface DeliveryRecords {
  /** Adds a delivery per eligible subscriber after `afterId` (at most `limit`); the new ids and the last subscriber looked at. */
  addBatch(edition: { id: number; listSlug: string; audience: Audience }, afterId: number, limit: number, now: Date): Promise<{ newIds: number[]; lastSubscriberId: number | undefined }>;
  /** Ids of the edition's queued deliveries after `afterId`, in order. */
  queuedIds(editionId: number, afterId: number, limit: number): Promise<number[]>;
  /** Failed deliveries (and bounces whose suppression was lifted) queued again with fresh attempts; their ids. */
  requeueRetryable(editionId: number): Promise<number[]>;
  counts(editionId: number): Promise<DeliveryCounts>;
  /** Messages sent since `since`, the last change and the last error. */
  progress(editionId: number, since: Date): Promise<{ sentSince: number; lastUpdate: string | null; lastError: string | null }>;
}

/** What came back about an edition's messages (late bounces, complaints, unsubscribes by mail). */
export interface EditionEventRecords {
  editionCounts(editionId: number): Promise<EditionEventCounts>;
}
