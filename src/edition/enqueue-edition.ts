import { InputError, NotFoundError } from '../errors.ts';
import type { Queue } from '../queue/queue.ts';
import type { DeliveriesRepo } from '../store/deliveries-repo.ts';
import type { EditionsRepo } from '../store/editions-repo.ts';
import { preflight } from './preflight.ts';

/** Subscribers read per batch: memory stays flat however many there are. */
const BATCH = 2000;

/** What `send` did. */
export interface EnqueueResult {
  editionId: number;
  /** Deliveries added by this call (0 when the edition was already enqueued). */
  added: number;
  /** Jobs put (back) on the queue, including re-enqueued ones after a crash. */
  enqueued: number;
}

/**
 * Adds one delivery per eligible subscriber and one job per new delivery, streaming the
 * subscribers in batches. Running it again adds nothing new; it re-enqueues queued deliveries
 * whose job was lost (a crash between the ledger and the queue), so nobody is skipped.
 */
export async function enqueueEdition(
  deps: { editions: EditionsRepo; deliveries: DeliveriesRepo; queue: Queue; now: () => Date },
  editionId: number,
  onProgress?: (added: number) => void,
): Promise<EnqueueResult> {
  const edition = await deps.editions.find(editionId);
  if (!edition) throw new NotFoundError(`no edition ${editionId}`);
  const problems = preflight(edition.compiled, edition.storySlugs.length, edition.kind);
  if (problems.length > 0) throw new InputError(`edition ${editionId} fails the preflight check:\n- ${problems.join('\n- ')}`);
  const wasEnqueued = edition.status !== 'draft';
  if (edition.status === 'draft' || edition.status === 'paused') await deps.editions.setStatus(editionId, 'sending', deps.now());
  let added = 0;
  let enqueued = 0;
  let cursor = 0;
  for (;;) {
    const batch = await deps.deliveries.addBatch({ id: editionId, listSlug: edition.list_slug, audience: edition.audience }, cursor, BATCH, deps.now());
    if (batch.lastSubscriberId === undefined) break;
    cursor = batch.lastSubscriberId;
    added += batch.newIds.length;
    enqueued += await deps.queue.enqueue(batch.newIds.map((id) => ({ id, groupId: editionId })), deps.now());
    onProgress?.(added);
  }
  if (wasEnqueued) {
    for (let after = 0; ; ) {
      const ids = await deps.deliveries.queuedIds(editionId, after, BATCH * 5);
      if (ids.length === 0) break;
      after = ids[ids.length - 1]!;
      enqueued += await deps.queue.enqueue(ids.map((id) => ({ id, groupId: editionId })), deps.now());
    }
  }
  // New subscribers since a finished send make it a send in progress again.
  const counts = await deps.deliveries.counts(editionId);
  const current = (await deps.editions.find(editionId))!.status;
  if (counts.queued === 0 && current !== 'sent') await deps.editions.setStatus(editionId, 'sent', deps.now());
  if (counts.queued > 0 && current === 'sent') await deps.editions.setStatus(editionId, 'sending', deps.now());
  return { editionId, added, enqueued };
}
