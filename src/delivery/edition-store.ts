import type { EditionOrigin } from '../model/content.ts';
import type { CompiledEdition } from '../render/compile-edition.ts';
import type { EditionStatus, PauseKind } from '../model/edition.ts';

/** What a worker needs of an edition to send it. */
export interface EditionToSend {
  id: number;
  listSlug: string;
  compiled: CompiledEdition;
  /** Undefined only for editions made before origins were kept. */
  origin: EditionOrigin | undefined;
}

/** The editions a worker sends, as it needs them: their renders, and the state of their sends. */
export interface EditionStore {
  find(id: number): Promise<EditionToSend | undefined>;
  /** Editions paused now: their jobs go back unsent. */
  pausedIds(): Promise<number[]>;
  /** Pauses a send with the reason (an outage pause again: a longer wait); false when it was not sending. */
  pause(id: number, kind: PauseKind, reason: string): Promise<boolean>;
  /** Whether any message of the edition went out: proof the server takes our mail. */
  anySent(id: number): Promise<boolean>;
  /** Editions paused by an outage whose backoff is over, and how to resume one. */
  outagesDue(): Promise<number[]>;
  resume(id: number, by: 'operator' | 'worker'): Promise<boolean>;
  /** Closes the send when no delivery is left queued; the status it got, or undefined. */
  finish(id: number): Promise<EditionStatus | undefined>;
}
