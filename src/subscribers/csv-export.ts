import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { stringify } from 'csv-stringify';
import type { SubscriberEvent } from '../model/subscriber-event.ts';
import type { ListChoice, Subscriber, SubscriberStatus, Suppression, SuppressionReason, WithHistory, WithSuppression } from '../model/subscriber.ts';

/** What an export needs from the store; SubscribersRepo provides it. */
export interface ExportRepo {
  batchAfter(afterId: number, limit: number, list?: string): Promise<Subscriber[]>;
}

/** The columns of an export, in order; `gazette subscribers import` reads the same file back. */
export const EXPORT_COLUMNS = ['email', 'name', 'status', 'lists', 'created_at', 'confirmed_at', 'source'] as const;

/** A subscriber as scripts see it (admin API, `subscribers list --json`): stable field names. */
export interface SubscriberJson {
  id: number;
  email: string;
  name: string | null;
  status: SubscriberStatus;
  lists: ListChoice[];
  created_at: string;
  confirmed_at: string | null;
  source: string;
  /** Why they are never mailed; null when they may be. */
  suppression: SuppressionJson | null;
  /** Bounces, complaints and unsubscribes by mail, newest first (present where they were looked up). */
  events?: EventJson[];
}

/** An event on a subscriber as scripts see it. */
export interface EventJson {
  type: SubscriberEvent['type'];
  at: string;
  source: SubscriberEvent['source'];
  action: SubscriberEvent['action'];
  status: string | null;
  diagnostic: string | null;
  edition: number | null;
  delivery: number | null;
  list: string | null;
}

/** The stable JSON shape of an event. */
export function eventJson(e: SubscriberEvent): EventJson {
  return { type: e.type, at: e.at, source: e.source, action: e.action, status: e.status, diagnostic: e.diagnostic, edition: e.editionId, delivery: e.deliveryId, list: e.listSlug };
}

/** A suppression as scripts see it: `edition` is the send whose bounce caused it, if any. */
export interface SuppressionJson {
  reason: SuppressionReason;
  detail: string | null;
  since: string;
  edition: number | null;
}

/** The stable JSON shape of a suppression. */
export function suppressionJson(s: Suppression): SuppressionJson {
  return { reason: s.reason, detail: s.detail, since: s.since, edition: s.editionId };
}

/** The stable JSON shape of a subscriber; the suppression must be looked up (SubscribersRepo.attachSuppressions), never guessed. */
export function subscriberJson(s: WithSuppression<Subscriber> | WithHistory<Subscriber>): SubscriberJson {
  return {
    id: s.id,
    email: s.email,
    name: s.name,
    status: s.status,
    lists: s.lists.map((l) => ({ slug: l.slug, frequency: l.frequency })),
    created_at: s.createdAt,
    confirmed_at: s.confirmedAt,
    source: s.source,
    suppression: s.suppression && suppressionJson(s.suppression),
    ...('events' in s ? { events: s.events.map(eventJson) } : {}),
  };
}

/** Lists as one CSV cell: `slug:frequency;slug:frequency`. */
export function formatLists(lists: ListChoice[]): string {
  return lists.map((l) => `${l.slug}:${l.frequency}`).join(';');
}

/**
 * Streams every subscriber (of `list`, when given) as CSV in id order, 1000 rows per query, waiting
 * whenever `output` is full. Values a spreadsheet would run as a formula get a leading `'`, which the
 * import removes again. `end: false` leaves `output` open (for process.stdout).
 */
export async function exportSubscribersCsv(
  repo: ExportRepo,
  output: Writable,
  options: { list?: string | undefined; end?: boolean; batchSize?: number } = {},
): Promise<number> {
  let count = 0;
  const batchSize = options.batchSize ?? 1000;
  async function* records(): AsyncGenerator<string[]> {
    for (let afterId = 0; ; ) {
      const batch = await repo.batchAfter(afterId, batchSize, options.list);
      for (const s of batch) {
        count += 1;
        yield [s.email, s.name ?? '', s.status, formatLists(s.lists), s.createdAt, s.confirmedAt ?? '', s.source].map(escapeFormula);
      }
      if (batch.length < batchSize) return;
      afterId = batch[batch.length - 1]!.id;
    }
  }
  const csv = stringify({ header: true, columns: [...EXPORT_COLUMNS] });
  await pipeline(Readable.from(records()), csv, output, { end: options.end ?? true });
  return count;
}

// OWASP "CSV injection": a cell starting with = + - @ tab or CR may run as a formula in a spreadsheet.
function escapeFormula(value: string): string {
  return /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
}
