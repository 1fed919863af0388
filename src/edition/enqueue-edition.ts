import { InputError, NotFoundError } from '../errors.ts';
import type { SendQueue } from '../delivery/send-queue.ts';
import { FINISHED_STATUSES } from '../model/edition.ts';
import { preflight } from './preflight.ts';
import type { EditionRecords, DeliveryRecords } from './edition-records.ts';

/** Subscribers read per batch: memory stays flat however many there are. */
const BATCH = 5000;

/** What `send` did. */
export interface EnqueueResult {
  editionId: number;
  /** Deliveries added by this call: the whole audience on a first send, new subscribers with `includeNew`. */
  added: number;
  /** Failed deliveries (and bounced ones whose suppression was lifted) given a fresh set of attempts. */
  requeued: number;
  /** True when the edition was paused and this call resumed it. */
  resumed: boolean;
  /** Jobs put (back) on the queue, including deliveries whose job was lost in a crash. */
  enqueued: number;
  /** True when the edition had already gone out: nobody new was added (unless `includeNew`). */
  alreadySent: boolean;
  /** Deliveries left to send now, new or not. */
  queued: number;
}

/** What a send may do beyond the first time. */
export interface EnqueueOptions {
  /** On an edition that already went out, also send it to subscribers who joined since. */
  includeNew?: boolean;
  onProgress?: (added: number) => void;
}

/**
 * Sends an edition: adds one delivery per eligible subscriber and one job per delivery, streaming
 * the subscribers in batches. Running it again is how an operator resumes a paused send and
 * retries failed deliveries; it adds nobody new once the first send had everyone, unless
 * `includeNew`. Deliveries queued in the ledger whose job was lost (a crash between the ledger
 * and the queue) are queued again, so nobody is skipped.
 */
export async function enqueueEdition(
  deps: { editions: EditionRecords; deliveries: DeliveryRecords; queue: SendQueue; now: () => Date },
  editionId: number,
  options: EnqueueOptions = {},
): Promise<EnqueueResult> {
  const { editions, deliveries, queue } = deps;
  const edition = await editions.find(editionId);
  if (!edition) throw new NotFoundError(`no edition ${editionId}`);
  if (edition.status === 'cancelled') throw new InputError(`edition ${editionId} was cancelled: it cannot be sent (make a new edition instead)`);
  const problems = preflight(edition.compiled, edition.storySlugs.length, edition.kind);
  if (problems.length > 0) throw new InputError(`edition ${editionId} fails the preflight check:\n- ${problems.join('\n- ')}`);
  // Conditional, so a cancel that lands between the read above and here is never undone.
  if (edition.status === 'draft' && !(await editions.startSending(editionId, deps.now()))) {
    const now = (await editions.find(editionId))?.status ?? 'gone';
    if (now !== 'sending') throw new InputError(`edition ${editionId} is ${now} now: it was not sent`);
  }
  const resumed = edition.status === 'paused' && (await editions.resume(editionId, 'operator'));
  // A paused edition cancelled meanwhile keeps its jobs held.
  if (edition.status === 'paused' && !resumed && (await editions.find(editionId))?.status === 'cancelled') {
    throw new InputError(`edition ${editionId} was cancelled: it cannot be sent (make a new edition instead)`);
  }
  await queue.hold(editionId, false);
  const alreadySent = edition.audienceClosedAt !== null;
  let added = 0;
  let enqueued = 0;
  // Deliveries added by this call get ids above any the edition had: those are queued already.
  let firstNew = Number.POSITIVE_INFINITY;
  if (!alreadySent || options.includeNew) {
    for (let cursor = 0; ; ) {
      const batch = await deliveries.addBatch({ id: editionId, listSlug: edition.listSlug, audience: edition.audience }, cursor, BATCH, deps.now());
      if (batch.lastSubscriberId === undefined) break;
      cursor = batch.lastSubscriberId;
      added += batch.newIds.length;
      for (const id of batch.newIds) if (id < firstNew) firstNew = id;
      enqueued += await queue.enqueue(batch.newIds.map((deliveryId) => ({ deliveryId, editionId })));
      options.onProgress?.(added);
    }
    await editions.closeAudience(editionId);
  }
  const requeued = await deliveries.requeueRetryable(editionId);
  // Everything else queued in the ledger goes (back) on the queue: those just requeued, and any
  // whose job was lost. Jobs already there are left as they are.
  for (let after = 0; ; ) {
    const ids = (await deliveries.queuedIds(editionId, after, BATCH * 5)).filter((id) => id < firstNew);
    if (ids.length === 0) break;
    after = ids[ids.length - 1]!;
    enqueued += await queue.enqueue(ids.map((deliveryId) => ({ deliveryId, editionId })));
  }
  const counts = await deliveries.counts(editionId);
  const current = (await editions.find(editionId))!.status;
  if (counts.queued > 0 && FINISHED_STATUSES.includes(current)) await editions.setStatus(editionId, 'sending', deps.now());
  // Nobody to send to (an empty list, or everyone done already): the send is over at once.
  if (counts.queued === 0 && current === 'sending') await editions.finish(editionId);
  return { editionId, added, requeued: requeued.length, resumed, enqueued, alreadySent, queued: counts.queued };
}
