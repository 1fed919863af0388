import type { EditionStatus, PauseKind } from '../model/edition.ts';
import type { EditionRecords, DeliveryRecords } from './edition-records.ts';

/** How many editions `gazette status` lists when given no id. */
export const RECENT_EDITIONS = 20;

/** One edition in the `gazette status` listing: what it is and how far its send got. */
export interface RecentEdition {
  id: number;
  list: string;
  kind: 'story' | 'digest';
  subject: string;
  status: EditionStatus;
  /** Why it is paused (refused, outage, operator); null unless paused. */
  pauseKind: PauseKind | null;
  sent: number;
  /** Every delivery of the edition, whatever its state (queued, sent, failed, bounced, skipped). */
  total: number;
  createdAt: string;
  completedAt: string | null;
}

/** The newest `limit` editions (newest first), each with its delivery counts. */
export async function recentEditions(
  deps: { editions: Pick<EditionRecords, 'list'>; deliveries: Pick<DeliveryRecords, 'counts'> },
  limit = RECENT_EDITIONS,
): Promise<RecentEdition[]> {
  const rows = await deps.editions.list(limit);
  return Promise.all(
    rows.map(async (row) => {
      const counts = await deps.deliveries.counts(row.id);
      return {
        id: row.id,
        list: row.listSlug,
        kind: row.kind,
        subject: row.subject,
        status: row.status,
        pauseKind: row.status === 'paused' ? row.pauseKind : null,
        sent: counts.sent,
        total: counts.queued + counts.sent + counts.failed + counts.bounced + counts.skipped,
        createdAt: row.createdAt,
        completedAt: row.completedAt,
      };
    }),
  );
}
