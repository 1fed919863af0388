import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { DeliveryLedger, OutcomeRecord } from '../../src/delivery/delivery-ledger.ts';
import type { CompiledEdition } from '../../src/render/compile-edition.ts';
import { openStore, type Store } from '../../src/store/database.ts';
import { DeliveriesRepo } from '../../src/store/deliveries-repo.ts';
import { EditionsRepo } from '../../src/store/editions-repo.ts';
import { SubscribersRepo } from '../../src/store/subscribers-repo.ts';
import { BACKENDS, privateDatabases, type TestDatabase } from '../helpers/databases.ts';

const T0 = new Date('2026-02-01T08:00:00Z').getTime();
const LEASE = 10_000;

const COMPILED: CompiledEdition = {
  subject: 'Ledger',
  preheader: '',
  html: { parts: ['<a href="', '">Unsubscribe</a>'], fields: ['unsubscribe_url'] },
  text: { parts: ['Unsubscribe: ', '\n'], fields: ['unsubscribe_url'] },
};

const databases = privateDatabases();
afterAll(() => databases.close());

describe.each(BACKENDS)('DeliveryLedger contract on %s', (backend) => {
  let clock = T0;
  const now = () => new Date(clock);
  let database: TestDatabase;
  let store: Store;
  let ledger: DeliveriesRepo;
  let other: DeliveryLedger;
  let editionId: number;
  /** Delivery ids by subscriber address. */
  let ids: Map<string, number>;

  beforeAll(async () => {
    database = await databases.fresh(backend);
    store = await openStore({ databaseUrl: database.url, dataDir: database.dataDir });
    ledger = new DeliveriesRepo(store.db, now);
    // A second worker process: its own repository over the same database.
    other = new DeliveriesRepo(store.db, now);
  });
  afterAll(async () => {
    await store.close();
    await database.drop();
  });
  beforeEach(async () => {
    clock = T0;
    for (const table of ['deliveries', 'suppressions', 'subscriptions', 'subscribers', 'editions'] as const) await store.db.deleteFrom(table).execute();
    const subscribers = new SubscribersRepo(store.db);
    await subscribers.insertMany(
      ['ann', 'bob', 'cy', 'dee'].map((name) => ({
        email: `${name}@example.com`,
        emailKey: `${name}@example.com`,
        name: name === 'ann' ? 'Ann' : null,
        status: 'active' as const,
        source: 'test',
        consentIp: null,
        lists: [{ slug: 'dispatch', frequency: 'instant' as const }],
      })),
      now(),
    );
    editionId = await new EditionsRepo(store.db, now).insert(
      {
        listSlug: 'dispatch',
        kind: 'story',
        audience: 'all',
        storySlugs: ['s'],
        compiled: COMPILED,
        origin: { baseUrl: 'https://x.test', sender: { name: 'X', address: 'news@x.test', replyTo: undefined }, list: { slug: 'dispatch', name: 'Dispatch', description: '' } },
        htmlBytes: 10,
        coversUntil: now(),
      },
      now(),
    );
    await ledger.addBatch({ id: editionId, listSlug: 'dispatch', audience: 'all' }, 0, 100, now());
    const rows = await store.db
      .selectFrom('deliveries as d')
      .innerJoin('subscribers as s', 's.id', 'd.subscriber_id')
      .select(['d.id', 's.email'])
      .execute();
    ids = new Map(rows.map((r) => [r.email.split('@')[0]!, r.id]));
  });

  const id = (name: string) => ids.get(name)!;
  const row = (name: string) => store.db.selectFrom('deliveries').selectAll().where('id', '=', id(name)).executeTakeFirstOrThrow();
  const sent = (name: string, claim: string): OutcomeRecord => ({ deliveryId: id(name), claim, outcome: { status: 'sent' } });

  it('claims queued deliveries with what sending needs; finished ones are listed apart', async () => {
    const first = await ledger.claim([id('ann')], 'a', LEASE);
    expect(await ledger.record([sent('ann', 'a')])).toEqual([]);
    const { claimed, finished } = await ledger.claim([id('ann'), id('bob'), id('cy')], 'b', LEASE);
    expect(first.claimed[0]).toMatchObject({ id: id('ann'), editionId, email: 'ann@example.com', name: 'Ann', subscriberStatus: 'active', suppressed: false, attempts: 0 });
    expect(claimed.map((d) => d.id).sort()).toEqual([id('bob'), id('cy')].sort());
    expect(finished).toEqual([id('ann')]);
  });

  it('a live claim is nobody else’s; once it runs out another worker may claim it', async () => {
    await ledger.claim([id('ann')], 'a', LEASE);
    clock = T0 + LEASE - 1;
    expect(await other.claim([id('ann')], 'b', LEASE)).toEqual({ claimed: [], finished: [] });
    clock = T0 + LEASE + 1;
    expect((await other.claim([id('ann')], 'b', LEASE)).claimed.map((d) => d.id)).toEqual([id('ann')]);
  });

  it('extend keeps a claim beyond its first lease (the heartbeat)', async () => {
    await ledger.claim([id('ann')], 'a', LEASE);
    clock = T0 + LEASE - 100;
    await ledger.extend(['a'], LEASE);
    clock = T0 + LEASE + 100;
    expect((await other.claim([id('ann')], 'b', LEASE)).claimed).toEqual([]);
  });

  it('fences late writers: an outcome under a lost claim writes nothing, and the new holder’s stands', async () => {
    await ledger.claim([id('ann'), id('bob')], 'a', LEASE);
    clock = T0 + LEASE + 1;
    await other.claim([id('ann')], 'b', LEASE);
    expect(await other.record([sent('ann', 'b')])).toEqual([]);
    // Worker a comes back from a stall and reports a timeout for ann, sent for bob.
    const lost = await ledger.record([
      { deliveryId: id('ann'), claim: 'a', outcome: { status: 'retry', error: 'timeout', counts: true } },
      sent('bob', 'a'),
    ]);
    expect(lost).toEqual([id('ann')]);
    expect(await row('ann')).toMatchObject({ status: 'sent', attempts: 1, last_error: null, claim_token: null });
    expect(await row('bob')).toMatchObject({ status: 'sent' });
  });

  it('never undoes sent: any later write, even under the same claim, changes nothing', async () => {
    await ledger.claim([id('ann')], 'a', LEASE);
    expect(await ledger.record([sent('ann', 'a')])).toEqual([]);
    for (const outcome of [
      { status: 'retry', error: 'x', counts: true },
      { status: 'failed', error: 'x' },
      { status: 'bounced', error: 'x' },
      { status: 'skipped', reason: 'x' },
    ] as const) {
      expect(await ledger.record([{ deliveryId: id('ann'), claim: 'a', outcome }])).toEqual([id('ann')]);
    }
    expect(await row('ann')).toMatchObject({ status: 'sent', attempts: 1 });
    expect(await store.db.selectFrom('suppressions').selectAll().execute()).toEqual([]);
  });

  it('a bounce suppresses the address (tied to the delivery) and bounces the subscriber, together', async () => {
    await ledger.claim([id('bob')], 'a', LEASE);
    expect(await ledger.record([{ deliveryId: id('bob'), claim: 'a', outcome: { status: 'bounced', error: '550 5.1.1 user unknown' } }])).toEqual([]);
    expect(await row('bob')).toMatchObject({ status: 'bounced', attempts: 1, last_error: '550 5.1.1 user unknown' });
    expect(await store.db.selectFrom('suppressions').selectAll().execute()).toEqual([
      { email_key: 'bob@example.com', reason: 'bounced', detail: '550 5.1.1 user unknown', created_at: now().toISOString(), delivery_id: id('bob') },
    ]);
    expect((await store.db.selectFrom('subscribers').select('status').where('email', '=', 'bob@example.com').executeTakeFirstOrThrow()).status).toBe('bounced');
    // A bounce reported under a lost claim suppresses nobody.
    await ledger.claim([id('cy')], 'a', LEASE);
    clock = T0 + LEASE + 1;
    await other.claim([id('cy')], 'b', LEASE);
    expect(await ledger.record([{ deliveryId: id('cy'), claim: 'a', outcome: { status: 'bounced', error: '550' } }])).toEqual([id('cy')]);
    expect((await store.db.selectFrom('suppressions').select('email_key').execute()).map((r) => r.email_key)).toEqual(['bob@example.com']);
  });

  it('a release costs no attempt and keeps the last error; a counted retry adds one', async () => {
    await ledger.claim([id('dee')], 'a', LEASE);
    await ledger.record([{ deliveryId: id('dee'), claim: 'a', outcome: { status: 'retry', error: '451 busy', counts: true } }]);
    await ledger.claim([id('dee')], 'b', LEASE);
    await ledger.record([{ deliveryId: id('dee'), claim: 'b', outcome: { status: 'retry', error: undefined, counts: false } }]);
    expect(await row('dee')).toMatchObject({ status: 'queued', attempts: 1, last_error: '451 busy', claim_token: null, claim_until: null });
    const [again] = (await ledger.claim([id('dee')], 'c', LEASE)).claimed;
    expect(again!.attempts).toBe(1);
  });

  it('counts what a worker holds right now as sending', async () => {
    await ledger.claim([id('ann'), id('bob')], 'a', LEASE);
    await ledger.record([sent('ann', 'a')]);
    expect(await ledger.counts(editionId)).toMatchObject({ queued: 3, sent: 1, sending: 1 });
    clock = T0 + LEASE + 1;
    expect((await ledger.counts(editionId)).sending).toBe(0);
  });

  it('requeueRetryable gives failed deliveries, and bounces whose suppression was lifted, a fresh budget', async () => {
    await ledger.claim([id('ann'), id('bob'), id('cy'), id('dee')], 'a', LEASE);
    await ledger.record([
      { deliveryId: id('ann'), claim: 'a', outcome: { status: 'failed', error: '451 after 6 attempts' } },
      sent('bob', 'a'),
      { deliveryId: id('cy'), claim: 'a', outcome: { status: 'bounced', error: '550 5.1.1' } },
      { deliveryId: id('dee'), claim: 'a', outcome: { status: 'bounced', error: '550 5.1.1' } },
    ]);
    // An operator lifts cy's suppression (the relay was to blame); dee's stands.
    await new SubscribersRepo(store.db).unsuppress('cy@example.com', now());
    expect(await ledger.requeueRetryable(editionId)).toEqual([id('ann'), id('cy')].sort((a, b) => a - b));
    expect(await row('ann')).toMatchObject({ status: 'queued', attempts: 0 });
    expect(await row('cy')).toMatchObject({ status: 'queued', attempts: 0 });
    expect(await row('bob')).toMatchObject({ status: 'sent' });
    expect(await row('dee')).toMatchObject({ status: 'bounced' });
  });

  it('records a group of 1,200 sent in one call', async () => {
    const subscribers = new SubscribersRepo(store.db);
    await subscribers.insertMany(
      Array.from({ length: 1200 }, (_, i) => ({ email: `g${i}@example.com`, emailKey: `g${i}@example.com`, name: null, status: 'active' as const, source: 't', consentIp: null, lists: [{ slug: 'dispatch', frequency: 'instant' as const }] })),
      now(),
    );
    const { newIds } = await ledger.addBatch({ id: editionId, listSlug: 'dispatch', audience: 'all' }, 0, 5000, now());
    expect(newIds).toHaveLength(1200);
    expect((await ledger.claim(newIds, 'g', LEASE)).claimed).toHaveLength(1200);
    expect(await ledger.record(newIds.map((deliveryId) => ({ deliveryId, claim: 'g', outcome: { status: 'sent' as const } })))).toEqual([]);
    expect((await ledger.counts(editionId)).sent).toBe(1200);
  });
});
