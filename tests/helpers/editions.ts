import type { Kysely } from 'kysely';
import type { EditionOrigin } from '../../src/model/content.ts';
import type { CompiledEdition } from '../../src/render/compile-edition.ts';
import { DeliveriesRepo } from '../../src/store/deliveries-repo.ts';
import { EditionsRepo } from '../../src/store/editions-repo.ts';
import type { Database } from '../../src/store/schema.ts';

/** A compiled edition that passes the preflight check, without rendering MJML. */
export const TEST_COMPILED: CompiledEdition = {
  subject: 'Test edition',
  preheader: '',
  html: { parts: ['<p>Hello</p><a href="', '">Unsubscribe</a>'], fields: ['unsubscribe_url'] },
  text: { parts: ['Hello\n\nUnsubscribe: ', '\n'], fields: ['unsubscribe_url'] },
};

/** The origin test editions are sent as. */
export const TEST_ORIGIN: EditionOrigin = {
  baseUrl: 'https://gazette.test',
  sender: { name: 'Test', address: 'news@gazette.test', replyTo: undefined },
  list: { slug: 'dispatch', name: 'Dispatch', description: '' },
};

/** Stores a draft single-story edition of `dispatch` made of TEST_COMPILED; returns its id. */
export function insertTestEdition(db: Kysely<Database>, at: Date, compiled: CompiledEdition = TEST_COMPILED): Promise<number> {
  return new EditionsRepo(db).insert(
    { listSlug: 'dispatch', kind: 'story', audience: 'all', storySlugs: ['s'], compiled, origin: TEST_ORIGIN, htmlBytes: 40, coversUntil: at },
    at,
  );
}

/**
 * Sends a test edition to every mailable subscriber of `dispatch`, recorded as a worker records it:
 * those in `bounces` bounce (suppressed, marked bounced) with `reply`, the others are sent.
 */
export async function sendWithBounces(
  db: Kysely<Database>,
  bounces: string[],
  at: Date,
  reply: (email: string) => string = () => '550 5.7.1 relay access denied',
): Promise<{ editionId: number; deliveryOf: Map<string, number> }> {
  const editionId = await insertTestEdition(db, at);
  const deliveries = new DeliveriesRepo(db, () => at);
  const { newIds } = await deliveries.addBatch({ id: editionId, listSlug: 'dispatch', audience: 'all' }, 0, 10_000, at);
  const { claimed } = await deliveries.claim(newIds, 'test-worker', 60_000);
  await deliveries.record(
    claimed.map((d) => ({
      deliveryId: d.id,
      claim: 'test-worker',
      outcome: bounces.includes(d.email!) ? { status: 'bounced' as const, error: reply(d.email!) } : { status: 'sent' as const },
    })),
  );
  return { editionId, deliveryOf: new Map(claimed.map((d) => [d.email!, d.id])) };
}
