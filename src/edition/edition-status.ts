import { NotFoundError } from '../errors.ts';
import type { EditionStatus, PauseKind } from '../model/edition.ts';
import type { EditionEventRecords, EditionRecords, DeliveryRecords } from './edition-records.ts';

/** A send with queued messages and no change for this long is reported as stalled. */
export const STALLED_AFTER_MS = 2 * 60_000;

/** Where an edition's send stands: what `gazette status` prints. */
export interface EditionStatusReport {
  id: number;
  list: string;
  subject: string;
  status: EditionStatus;
  total: number;
  queued: number;
  /** Held by a worker right now. */
  sending: number;
  sent: number;
  failed: number;
  bounced: number;
  skipped: number;
  /** What came back after sending: bounces reported later (the hard ones are among `bounced` too), complaints, unsubscribes by mail. */
  cameBack: { hardBounces: number; softBounces: number; complaints: number; unsubscribes: number };
  /** Messages per second over the last minute, or since the send (re)started when that is sooner. */
  rate: number;
  /** Seconds until done at that rate; null when unknown. */
  etaSeconds: number | null;
  stalled: boolean;
  lastError: string | null;
  /** Why it is paused: the server refused us, an outage (a worker tries again by itself at `resumeAt`), an operator. */
  pauseKind: PauseKind | null;
  resumeAt: string | null;
  enqueuedAt: string | null;
  completedAt: string | null;
}

/** Reads an edition and its ledger into a status report. */
export async function editionStatus(
  deps: { editions: EditionRecords; deliveries: DeliveryRecords; events: EditionEventRecords },
  id: number,
  now: Date,
): Promise<EditionStatusReport> {
  const edition = await deps.editions.find(id);
  if (!edition) throw new NotFoundError(`no edition ${id}`);
  const counts = await deps.deliveries.counts(id);
  const events = await deps.events.editionCounts(id);
  // The rate is over the last minute, or since the send (re)started when that is less: a young send
  // would look slow, and one resumed a moment ago would count what it sent before its pause.
  const started = edition.enqueuedAt ? Date.parse(edition.enqueuedAt) : Number.NEGATIVE_INFINITY;
  const since = Math.min(now.getTime() - 1000, Math.max(now.getTime() - 60_000, started));
  const progress = await deps.deliveries.progress(id, new Date(since));
  const rate = progress.sentSince / ((now.getTime() - since) / 1000);
  const total = counts.queued + counts.sent + counts.failed + counts.bounced + counts.skipped;
  // A resumed send restarts the clock: the later of the last delivery change and the (re)start.
  const lastChange = [progress.lastUpdate, edition.enqueuedAt].filter((t): t is string => t !== null).sort().pop() ?? null;
  const stalled =
    edition.status === 'sending' && counts.queued > 0 && lastChange !== null && now.getTime() - Date.parse(lastChange) > STALLED_AFTER_MS;
  return {
    id,
    list: edition.listSlug,
    subject: edition.subject,
    status: edition.status,
    total,
    queued: counts.queued,
    sending: counts.sending,
    sent: counts.sent,
    failed: counts.failed,
    bounced: counts.bounced,
    skipped: counts.skipped,
    cameBack: { hardBounces: events['hard-bounce'], softBounces: events['soft-bounce'], complaints: events.complaint, unsubscribes: events.unsubscribe },
    rate: Math.round(rate * 10) / 10,
    etaSeconds: rate > 0 ? Math.ceil(counts.queued / rate) : counts.queued === 0 ? 0 : null,
    stalled,
    lastError: edition.lastError ?? progress.lastError,
    pauseKind: edition.pauseKind,
    resumeAt: edition.resumeAt,
    enqueuedAt: edition.enqueuedAt,
    completedAt: edition.completedAt,
  };
}
