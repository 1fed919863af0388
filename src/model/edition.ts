import type { CompiledEdition } from '../render/compile-edition.ts';
import type { EditionOrigin } from './content.ts';
import type { Frequency } from './subscriber.ts';

/** One full story, or several as cards. */
export type EditionKind = 'story' | 'digest';

/**
 * Where an edition's send stands. `sent`: every delivery done and none failed; `incomplete`: done,
 * some failed after their retries; `failed`: every delivery failed; `paused`: held (see PauseKind);
 * `cancelled`: stopped for good by an editor (what had not gone out was skipped).
 */
export type EditionStatus = 'draft' | 'sending' | 'paused' | 'sent' | 'incomplete' | 'failed' | 'cancelled';

/** Statuses of an edition whose send is over. */
export const FINISHED_STATUSES: readonly EditionStatus[] = ['sent', 'incomplete', 'failed'];

/** Why an edition is paused: the server refuses us (fix, then resume), an outage (resumed by itself), or an operator. */
export type PauseKind = 'refused' | 'outage' | 'operator';

/** Who of a list's subscribers an edition goes to: everyone, or those at one frequency. */
export type Audience = 'all' | Frequency;

export const AUDIENCES: readonly Audience[] = ['all', 'instant', 'daily', 'weekly'];

/** An edition as listings show it: what it is and where its send stands. Timestamps are ISO 8601 UTC. */
export interface EditionSummary {
  id: number;
  listSlug: string;
  kind: EditionKind;
  audience: Audience;
  subject: string;
  preheader: string;
  storySlugs: string[];
  htmlBytes: number;
  /** Stories published up to this instant were eligible: the next digest "since the last one" starts here. */
  coversUntil: string;
  status: EditionStatus;
  /** Why it is paused, or the last trouble of its send. */
  lastError: string | null;
  pauseKind: PauseKind | null;
  /** When an outage-paused edition is tried again (a worker resumes it). */
  resumeAt: string | null;
  /** Outage pauses in a row without progress: the backoff before the next try. */
  outagePauses: number;
  createdAt: string;
  enqueuedAt: string | null;
  completedAt: string | null;
  /** The schedule that made it, if any. */
  scheduleId: number | null;
  /** When the first send had added every subscriber: later sends add nobody new unless asked to. */
  audienceClosedAt: string | null;
}

/** An edition with its render, kept so a resend is identical. */
export interface Edition extends EditionSummary {
  compiled: CompiledEdition;
  /** Undefined for editions made before the origin was kept: their sender and links come from site.yaml. */
  origin: EditionOrigin | undefined;
}
