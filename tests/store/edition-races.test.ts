import path from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import type { Kysely, KyselyPlugin } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DeliveryOutcome } from '../../src/delivery/delivery-ledger.ts';
import { openStore, type Store } from '../../src/store/database.ts';
import { DeliveriesRepo } from '../../src/store/deliveries-repo.ts';
import { EditionsRepo, OUTAGE_BACKOFF_MAX_MS, OUTAGE_BACKOFF_MS } from '../../src/store/editions-repo.ts';
import { NoticesRepo } from '../../src/store/notices-repo.ts';
import type { Database } from '../../src/store/schema.ts';
import { SubscribersRepo } from '../../src/store/subscribers-repo.ts';
import type { NewSubscriber } from '../../src/model/subscriber.ts';
import { freshDatabase, type TestDatabase } from '../helpers/databases.ts';
import { insertTestEdition, sendWithBounces } from '../helpers/editions.ts';
import { editionState, subscriberState } from '../helpers/fault-edges.ts';

// The repositories' answers to the races and edges the worker and the CLI meet, on real SQLite:
// lifting suppressions, outage backoff, and closing a send while deliveries may come back.

const NOW = new Date('2026-03-01T10:00:00.000Z');

const person = (email: string, overrides: Partial<NewSubscriber> = {}): NewSubscriber => ({
  email,
  emailKey: email.toLowerCase(),
  name: null,
  status: 'active',
  source: 'test',
  consentIp: null,
  lists: [{ slug: 'dispatch', frequency: 'weekly' }],
  ...overrides,
});

/** A clock the test moves by hand. */
function fakeClock(start: Date) {
  let at = start.getTime();
  return {
    now: () => new Date(at),
    set: (date: Date) => void (at = date.getTime()),
    advance: (ms: number) => void (at += ms),
  };
}

let database: TestDatabase;
let store: Store;
let db: Kysely<Database>;

// State is read from the tables themselves, as the database holds it.
const editionRow = (id: number) => editionState(db, id);
const subscriberRow = (id: number) => subscriberState(db, { id });

beforeEach(async () => {
  database = await freshDatabase('sqlite');
  store = await openStore({ databaseUrl: database.url, dataDir: database.dataDir });
  db = store.db;
});
afterEach(async () => {
  await store.close();
  await database.drop();
});

describe('unsuppressing undoes exactly what the suppression did', () => {
  it('a subscriber who never confirmed (their confirmation bounced) is pending again; one who was active is active again', async () => {
    const subscribers = new SubscribersRepo(db);
    const notices = new NoticesRepo(db, () => NOW);
    const pendingId = await subscribers.insert(person('Pending@Example.com', { status: 'pending' }), NOW);
    const activeId = await subscribers.insert(person('active@example.com'), NOW);
    await subscribers.insert(person('bystander@example.com'), NOW);

    // The pending one's confirmation bounces, as the notice sender records it.
    await notices.add({ kind: 'confirm', subscriberId: pendingId, email: 'Pending@Example.com', mailboxKey: 'pending@example.com', ip: null, envelopeFrom: 'news@gazette.test', messageKey: 'n1', raw: 'x' });
    const [notice] = await notices.claim(10, 'notice-claim', 60_000);
    expect(await notices.record(notice!, { status: 'bounced', error: '550 5.1.1 <Pending@Example.com>: user unknown' })).toBe(true);
    // The active one bounces an edition, as the worker records it.
    const { editionId } = await sendWithBounces(db, ['active@example.com'], NOW, (email) => `550 5.1.1 <${email}>: user unknown`);
    expect((await subscriberRow(pendingId)).status).toBe('bounced');
    expect((await subscriberRow(activeId)).status).toBe('bounced');
    expect(await subscribers.isSuppressed('pending@example.com')).toBe(true);

    const liftedPending = await subscribers.unsuppress('pending@example.com', NOW);
    expect(liftedPending).toMatchObject({ emailKey: 'pending@example.com', email: 'Pending@Example.com', status: 'pending', reason: 'bounced', deliveryId: null });
    // Still unconfirmed: lifting a bounce never skips double opt-in, and they get no edition.
    expect(await subscriberRow(pendingId)).toMatchObject({ status: 'pending', confirmedAt: null, unsubscribedAt: null });
    const liftedActive = await subscribers.unsuppressEdition(editionId, NOW);
    expect(liftedActive.map((l) => [l.email, l.status])).toEqual([['active@example.com', 'active']]);
    expect(await subscriberRow(activeId)).toMatchObject({ status: 'active', confirmedAt: NOW.toISOString() });
    expect(await subscribers.isSuppressed('pending@example.com')).toBe(false);
    expect(await new DeliveriesRepo(db, () => NOW).countEligible('dispatch', 'all')).toBe(2);
  });

  it('the same through unsuppress by address for an edition bounce, and a second lift changes nothing', async () => {
    const subscribers = new SubscribersRepo(db);
    const id = await subscribers.insert(person('ann@example.com'), NOW);
    await sendWithBounces(db, ['ann@example.com'], NOW);
    expect(await subscribers.unsuppress('ann@example.com', NOW)).toMatchObject({ status: 'active' });
    expect((await subscriberRow(id)).status).toBe('active');
    expect(await subscribers.unsuppress('ann@example.com', NOW)).toBeUndefined();
    expect((await subscriberRow(id)).status).toBe('active');
  });
});

describe('outage pauses back off further each time', () => {
  it('re-pausing an outage-paused edition pushes resume_at later by a doubling wait (capped) and counts the pauses', async () => {
    const clock = fakeClock(NOW);
    const editions = new EditionsRepo(db, clock.now);
    const id = await insertTestEdition(db, NOW);
    await editions.setStatus(id, 'sending', clock.now());

    const waits: number[] = [];
    let previousResume = Number.NEGATIVE_INFINITY;
    for (let k = 1; k <= 7; k++) {
      const pausedAt = clock.now().getTime();
      // The first pause is of a sending edition; the next ones are a worker finding the server still down.
      expect(await editions.pause(id, 'outage', `still unreachable (${k})`)).toBe(true);
      const edition = (await editionRow(id));
      expect(edition).toMatchObject({ status: 'paused', pauseKind: 'outage', outagePauses: k, lastError: `still unreachable (${k})` });
      const resumeAt = Date.parse(edition.resumeAt!);
      expect(resumeAt).toBeGreaterThan(previousResume);
      const wait = resumeAt - pausedAt;
      expect(wait).toBe(Math.min(OUTAGE_BACKOFF_MAX_MS, OUTAGE_BACKOFF_MS * 2 ** (k - 1)));
      waits.push(wait);
      previousResume = resumeAt;
      // Not due a moment before its wait is over; due once it is.
      clock.set(new Date(resumeAt - 1));
      expect(await editions.outagesDue()).toEqual([]);
      clock.set(new Date(resumeAt));
      expect(await editions.outagesDue()).toEqual([id]);
    }
    for (let i = 1; i < waits.length; i++) expect(waits[i]).toBeGreaterThanOrEqual(waits[i - 1]!);
    expect(waits[1]).toBeGreaterThan(waits[0]!);
    expect(waits.at(-1)).toBe(OUTAGE_BACKOFF_MAX_MS);
  });

  it('a worker resume keeps the count (the next outage waits longer); an operator resume and a finished send forget it', async () => {
    const clock = fakeClock(NOW);
    const editions = new EditionsRepo(db, clock.now);
    const id = await insertTestEdition(db, NOW);
    await editions.setStatus(id, 'sending', clock.now());
    const waitOfNextPause = async () => {
      const at = clock.now().getTime();
      expect(await editions.pause(id, 'outage', 'down')).toBe(true);
      return Date.parse((await editionRow(id)).resumeAt!) - at;
    };

    const first = await waitOfNextPause();
    expect(await editions.resume(id, 'worker')).toBe(true);
    clock.advance(first);
    const second = await waitOfNextPause();
    expect(second).toBeGreaterThan(first);
    expect((await editionRow(id)).outagePauses).toBe(2);

    // A refusal does not take over an outage pause, nor pause a paused edition.
    expect(await editions.pause(id, 'refused', '550 no')).toBe(false);
    expect(await editions.resume(id, 'operator')).toBe(true);
    expect((await editionRow(id))).toMatchObject({ status: 'sending', outagePauses: 0, resumeAt: null, pauseKind: null });
    expect(await waitOfNextPause()).toBe(first);

    // A send that finishes forgets its outages too.
    expect(await editions.resume(id, 'worker')).toBe(true);
    expect(await editions.finish(id)).toBe('sent'); // no deliveries at all
    expect((await editionRow(id)).outagePauses).toBe(0);
  });
});

describe('finish closes a send only when nothing of it is queued', () => {
  const CLAIM = 'test-worker';

  /** `n` subscribers of dispatch and an edition sending to them, with a delivery each (queued); their ids by address. */
  async function sendingEdition(editions: EditionsRepo, deliveries: DeliveriesRepo, emails: string[]): Promise<{ id: number; deliveryOf: Map<string, number> }> {
    const id = await insertTestEdition(db, NOW);
    await editions.setStatus(id, 'sending', NOW);
    await deliveries.addBatch({ id, listSlug: 'dispatch', audience: 'all' }, 0, 1000, NOW);
    const rows = await db
      .selectFrom('deliveries as d')
      .innerJoin('subscribers as s', 's.id', 'd.subscriber_id')
      .select(['d.id', 's.email'])
      .where('d.edition_id', '=', id)
      .where('s.email', 'in', emails)
      .execute();
    return { id, deliveryOf: new Map(rows.map((r) => [r.email, r.id])) };
  }

  /** Records outcomes as a worker does: claimed, then written under the claim. */
  async function record(deliveries: DeliveriesRepo, outcomes: [number, DeliveryOutcome][]): Promise<void> {
    const { claimed } = await deliveries.claim(
      outcomes.map(([id]) => id),
      CLAIM,
      60_000,
    );
    expect(claimed).toHaveLength(outcomes.length);
    expect(await deliveries.record(outcomes.map(([deliveryId, outcome]) => ({ deliveryId, claim: CLAIM, outcome })))).toEqual([]);
  }

  const EMAILS = ['a@example.com', 'b@example.com', 'c@example.com'];

  async function insertSubscribers(): Promise<void> {
    await new SubscribersRepo(db).insertMany(EMAILS.map((e) => person(e)), NOW);
  }

  it('is a no-op while any delivery is queued, then closes the send', async () => {
    await insertSubscribers();
    const editions = new EditionsRepo(db, () => NOW);
    const deliveries = new DeliveriesRepo(db, () => NOW);
    const { id, deliveryOf } = await sendingEdition(editions, deliveries, EMAILS);
    await record(deliveries, [
      [deliveryOf.get('a@example.com')!, { status: 'sent' }],
      [deliveryOf.get('b@example.com')!, { status: 'sent' }],
    ]);
    expect(await editions.finish(id)).toBeUndefined();
    expect((await editionRow(id))).toMatchObject({ status: 'sending', completedAt: null });
    // A retry (queued again) is still queued.
    await record(deliveries, [[deliveryOf.get('c@example.com')!, { status: 'retry', error: '451 busy', counts: true }]]);
    expect(await editions.finish(id)).toBeUndefined();
    await record(deliveries, [[deliveryOf.get('c@example.com')!, { status: 'sent' }]]);
    expect(await editions.finish(id)).toBe('sent');
    expect((await editionRow(id))).toMatchObject({ status: 'sent', completedAt: NOW.toISOString(), lastError: null });
    // Finished once: a second finish changes nothing.
    expect(await editions.finish(id)).toBeUndefined();
  });

  it('a delivery queued again between its count and its update (another process retrying failures) keeps the send open', async () => {
    await insertSubscribers();
    const file = path.join(database.dataDir, 'test.db');
    const other = new SqliteDatabase(file);
    try {
      other.pragma('busy_timeout = 5000');
      const requeue = other.prepare(`update deliveries set status = 'queued', attempts = 0 where edition_id = ? and status = 'failed'`);
      let requeueFor: number | undefined;
      let requeued = 0;
      // Runs the other process's `gazette send ID` (requeueRetryable's statement) just before finish's
      // UPDATE of the edition: after finish has counted no queued delivery.
      const interleave: KyselyPlugin = {
        transformQuery(args) {
          if (requeueFor !== undefined && args.node.kind === 'UpdateQueryNode') {
            requeued = requeue.run(requeueFor).changes;
            requeueFor = undefined;
          }
          return args.node;
        },
        async transformResult(args) {
          return args.result;
        },
      };
      const editions = new EditionsRepo(db.withPlugin(interleave), () => NOW);
      const deliveries = new DeliveriesRepo(db, () => NOW);
      const { id, deliveryOf } = await sendingEdition(editions, deliveries, EMAILS);
      await record(deliveries, [
        [deliveryOf.get('a@example.com')!, { status: 'sent' }],
        [deliveryOf.get('b@example.com')!, { status: 'sent' }],
        [deliveryOf.get('c@example.com')!, { status: 'failed', error: '451 busy (after 3 attempts)' }],
      ]);

      requeueFor = id;
      expect(await editions.finish(id)).toBeUndefined();
      expect(requeued, 'the interleaved requeue ran').toBe(1);
      expect((await editionRow(id))).toMatchObject({ status: 'sending', completedAt: null });
      expect((await deliveries.counts(id)).queued).toBe(1);

      // Once the requeued one is sent, the send closes as sent.
      await record(deliveries, [[deliveryOf.get('c@example.com')!, { status: 'sent' }]]);
      expect(await editions.finish(id)).toBe('sent');
    } finally {
      other.close();
    }
  });

  type Case = [string, DeliveryOutcome[], 'sent' | 'incomplete' | 'failed', RegExp | null];
  const failed: DeliveryOutcome = { status: 'failed', error: '451 4.2.2 mailbox busy (after 6 attempts)' };
  const bounced: DeliveryOutcome = { status: 'bounced', error: '550 5.1.1 user unknown' };
  const sent: DeliveryOutcome = { status: 'sent' };
  const skipped: DeliveryOutcome = { status: 'skipped', reason: 'subscriber is unsubscribed' };
  const cases: Case[] = [
    ['all sent', [sent, sent, sent], 'sent', null],
    ['sent and bounced', [sent, bounced, sent], 'sent', null],
    ['sent and failed', [sent, failed, sent], 'incomplete', /^1 delivery failed after every retry: run `gazette send \d+`/],
    ['every one bounced (nothing sent)', [bounced, bounced, bounced], 'failed', /^every delivery bounced/],
    ['failed and bounced, nothing sent', [failed, bounced, failed], 'failed', /^2 deliveries failed after every retry/],
    ['skipped and bounced, nothing sent', [skipped, bounced, skipped], 'failed', /^every delivery bounced/],
    ['every one skipped (nobody to send to)', [skipped, skipped, skipped], 'sent', null],
  ];
  it.each(cases)('%s: %j → %s', async (_name, outcomes, status, lastError) => {
    await insertSubscribers();
    const editions = new EditionsRepo(db, () => NOW);
    const deliveries = new DeliveriesRepo(db, () => NOW);
    const { id, deliveryOf } = await sendingEdition(editions, deliveries, EMAILS);
    await record(
      deliveries,
      EMAILS.map((email, i) => [deliveryOf.get(email)!, outcomes[i]!]),
    );
    expect(await editions.finish(id)).toBe(status);
    const edition = (await editionRow(id));
    expect(edition).toMatchObject({ status, completedAt: NOW.toISOString(), outagePauses: 0 });
    if (lastError) expect(edition.lastError).toMatch(lastError);
    else expect(edition.lastError).toBeNull();
  });

  it('is a no-op on an edition that is not sending (draft, paused)', async () => {
    await insertSubscribers();
    const editions = new EditionsRepo(db, () => NOW);
    const deliveries = new DeliveriesRepo(db, () => NOW);
    const { id, deliveryOf } = await sendingEdition(editions, deliveries, EMAILS);
    await record(
      deliveries,
      EMAILS.map((email) => [deliveryOf.get(email)!, sent]),
    );
    expect(await editions.pause(id, 'refused', '550 5.7.1 relay denied')).toBe(true);
    expect(await editions.finish(id)).toBeUndefined();
    expect((await editionRow(id)).status).toBe('paused');
    const draft = await insertTestEdition(db, NOW);
    expect(await editions.finish(draft)).toBeUndefined();
    expect((await editionRow(draft)).status).toBe('draft');
  });
});
