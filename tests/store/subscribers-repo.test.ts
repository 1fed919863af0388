import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../src/store/database.ts';
import { DeliveriesRepo } from '../../src/store/deliveries-repo.ts';
import { SubscribersRepo } from '../../src/store/subscribers-repo.ts';
import type { NewSubscriber } from '../../src/model/subscriber.ts';
import { BACKENDS, freshDatabase, type TestDatabase } from '../helpers/databases.ts';
import { sendWithBounces } from '../helpers/editions.ts';

const NOW = new Date('2026-01-01T00:00:00Z');
const SENT_AT = new Date('2026-01-02T08:00:00Z');
const LIFTED_AT = new Date('2026-01-03T09:00:00Z');


const person = (email: string, overrides: Partial<NewSubscriber> = {}): NewSubscriber => ({
  email,
  emailKey: email.toLowerCase(),
  name: null,
  status: 'active',
  source: 'test',
  consentIp: null,
  lists: [{ slug: 'dispatch', frequency: 'instant' }],
  ...overrides,
});

describe.each(BACKENDS)('SubscribersRepo on %s', (backend) => {
  let database: TestDatabase;
  let store: Store;
  let repo: SubscribersRepo;

  beforeEach(async () => {
    database = await freshDatabase(backend);
    store = await openStore({ databaseUrl: database.url, dataDir: database.dataDir });
    repo = new SubscribersRepo(store.db);
  });
  afterEach(async () => {
    await store.close();
    await database.drop();
  });

  it('runs migrations idempotently', async () => {
    await store.close();
    store = await openStore({ databaseUrl: database.url, dataDir: database.dataDir });
    repo = new SubscribersRepo(store.db);
    expect(await repo.countByStatus()).toEqual({ pending: 0, active: 0, unsubscribed: 0, bounced: 0, complained: 0 });
  });

  it('keeps an address once whatever its case', async () => {
    const id = await repo.insert(person('Ann@Example.com'), NOW);
    await expect(repo.insert(person('ann@example.COM'), NOW)).rejects.toThrow();
    const found = await repo.findByEmail('ann@example.com');
    expect(found).toMatchObject({ id, email: 'Ann@Example.com', status: 'active', confirmedAt: NOW.toISOString() });
    expect(found!.lists).toEqual([{ slug: 'dispatch', frequency: 'instant' }]);
  });

  it('inserts many, leaving existing addresses untouched', async () => {
    await repo.insert(person('a@example.com', { name: 'Original' }), NOW);
    const added = await repo.insertMany([person('A@example.com', { name: 'Changed' }), person('b@example.com'), person('c@example.com')], NOW);
    expect(added).toBe(2);
    expect((await repo.findByEmail('a@example.com'))!.name).toBe('Original');
    expect(await repo.insertMany([person('b@example.com'), person('c@example.com')], NOW)).toBe(0);
    expect((await repo.countByStatus()).active).toBe(3);
  });

  it('pages, searches and filters', async () => {
    for (let i = 0; i < 25; i++) await repo.insert(person(`user${i}@example.com`, { name: i === 7 ? 'Olena 100%' : null, status: i % 5 === 0 ? 'pending' : 'active' }), NOW);
    const first = await repo.page({ page: 1, perPage: 10 });
    expect(first.total).toBe(25);
    expect(first.subscribers).toHaveLength(10);
    expect(first.subscribers[0]!.email).toBe('user24@example.com');
    expect((await repo.page({ page: 3, perPage: 10 })).subscribers).toHaveLength(5);
    expect((await repo.page({ page: 1, perPage: 10, search: 'olena 100%' })).subscribers.map((s) => s.email)).toEqual(['user7@example.com']);
    expect((await repo.page({ page: 1, perPage: 10, search: '100%' })).total).toBe(1);
    expect((await repo.page({ page: 1, perPage: 50, status: 'pending' })).total).toBe(5);
  });

  it('changes status with timestamps, replaces lists and erases on remove', async () => {
    const id = await repo.insert(person('x@example.com', { status: 'pending' }), NOW);
    await repo.setStatus(id, 'active', NOW);
    await repo.replaceLists(id, [{ slug: 'weekly', frequency: 'weekly' }], NOW);
    expect(await repo.findById(id)).toMatchObject({ status: 'active', lists: [{ slug: 'weekly', frequency: 'weekly' }] });
    await repo.setStatus(id, 'unsubscribed', NOW);
    expect((await repo.findById(id))!.unsubscribedAt).toBe(NOW.toISOString());
    expect(await repo.remove(id)).toBe(true);
    expect(await repo.findById(id)).toBeUndefined();
    expect(await repo.remove(id)).toBe(false);
  });

  it('suppresses addresses once', async () => {
    await repo.suppress('bad@example.com', 'bounced', '550 no such user', NOW);
    await repo.suppress('bad@example.com', 'complained', null, NOW);
    expect(await repo.isSuppressed('bad@example.com')).toBe(true);
    expect(await repo.isSuppressed('good@example.com')).toBe(false);
  });

  /** Sends an edition of dispatch to its mailable subscribers, recorded as a worker does: the `bounces` bounce (suppressed, bounced). */
  async function send(bounces: string[]): Promise<{ editionId: number; deliveryOf: Map<string, number> }> {
    return sendWithBounces(store.db, bounces, SENT_AT, (email) => `550 5.7.1 <${email}>: relay access denied`);
  }

  it('tells why an address is suppressed, naming the delivery and edition whose bounce did it; pages carry it', async () => {
    await repo.insert(person('Ann@Example.com'), NOW);
    await repo.insert(person('bob@example.com'), NOW);
    const { editionId, deliveryOf } = await send(['Ann@Example.com']);
    expect(await repo.suppression('ann@example.com')).toEqual({
      reason: 'bounced',
      detail: '550 5.7.1 <Ann@Example.com>: relay access denied',
      since: SENT_AT.toISOString(),
      deliveryId: deliveryOf.get('Ann@Example.com'),
      editionId,
    });
    expect((await repo.findByEmail('ann@example.com'))!.status).toBe('bounced');
    expect(await repo.suppression('bob@example.com')).toBeUndefined();

    await repo.suppress('carl@example.com', 'manual', 'asked by phone', NOW);
    expect(await repo.suppression('carl@example.com')).toEqual({ reason: 'manual', detail: 'asked by phone', since: NOW.toISOString(), deliveryId: null, editionId: null });

    const page = await repo.attachSuppressions((await repo.page({ page: 1, perPage: 10 })).subscribers);
    expect(page.map((s) => [s.email, s.suppression?.editionId ?? null])).toEqual([
      ['bob@example.com', null],
      ['Ann@Example.com', editionId],
    ]);
    expect(page[0]!.suppression).toBeNull();
    expect(await repo.attachSuppressions([])).toEqual([]);
  });

  it('lifts one suppression: a bounced or complained subscriber with lists is active again, one without is unsubscribed', async () => {
    const ann = await repo.insert(person('Ann@Example.com'), NOW);
    const dan = await repo.insert(person('dan@example.com'), NOW);
    const eve = await repo.insert(person('eve@example.com'), NOW);
    const pat = await repo.insert(person('pat@example.com', { status: 'pending' }), NOW);
    const { editionId } = await send(['Ann@Example.com', 'dan@example.com']);
    await repo.replaceLists(dan, [], NOW);
    await repo.setStatus(eve, 'complained', NOW);
    await repo.suppress('eve@example.com', 'complained', null, NOW);
    await repo.suppress('pat@example.com', 'manual', null, NOW);
    const deliveries = new DeliveriesRepo(store.db, () => LIFTED_AT);
    expect(await deliveries.countEligible('dispatch', 'all')).toBe(0);

    expect(await repo.unsuppress('ann@example.com', LIFTED_AT)).toEqual({
      emailKey: 'ann@example.com',
      email: 'Ann@Example.com',
      status: 'active',
      reason: 'bounced',
      detail: '550 5.7.1 <Ann@Example.com>: relay access denied',
      since: SENT_AT.toISOString(),
      deliveryId: expect.any(Number),
      editionId,
    });
    // Active as they were before the bounce: their consent still dates from their confirmation.
    expect(await repo.findById(ann)).toMatchObject({ status: 'active', updatedAt: LIFTED_AT.toISOString(), confirmedAt: NOW.toISOString(), unsubscribedAt: null });
    expect(await repo.isSuppressed('ann@example.com')).toBe(false);
    expect(await repo.unsuppress('ann@example.com', LIFTED_AT)).toBeUndefined();
    expect(await deliveries.countEligible('dispatch', 'all')).toBe(1);

    expect(await repo.unsuppress('dan@example.com', LIFTED_AT)).toMatchObject({ email: 'dan@example.com', status: 'unsubscribed' });
    expect(await repo.findById(dan)).toMatchObject({ status: 'unsubscribed', unsubscribedAt: LIFTED_AT.toISOString() });
    expect(await repo.unsuppress('eve@example.com', LIFTED_AT)).toMatchObject({ status: 'active', reason: 'complained', deliveryId: null, editionId: null });
    // A status the person chose (pending, unsubscribed) is theirs: lifting leaves it.
    expect(await repo.unsuppress('pat@example.com', LIFTED_AT)).toMatchObject({ status: 'pending', reason: 'manual' });
    expect((await repo.findById(pat))!.updatedAt).toBe(NOW.toISOString());

    await repo.suppress('ghost@example.com', 'bounced', null, NOW);
    expect(await repo.unsuppress('ghost@example.com', LIFTED_AT)).toMatchObject({ email: 'ghost@example.com', status: null });
  });

  it("lifts the bounces of one edition together, and only that edition's", async () => {
    for (const email of ['a@example.com', 'b@example.com', 'c@example.com', 'd@example.com']) await repo.insert(person(email), NOW);
    const first = await send(['b@example.com', 'a@example.com']);
    const second = await send(['c@example.com']);
    await repo.suppress('m@example.com', 'manual', null, NOW);

    const lifted = await repo.unsuppressEdition(first.editionId, LIFTED_AT);
    expect(lifted.map((l) => [l.email, l.status, l.editionId, l.deliveryId])).toEqual([
      ['a@example.com', 'active', first.editionId, first.deliveryOf.get('a@example.com')],
      ['b@example.com', 'active', first.editionId, first.deliveryOf.get('b@example.com')],
    ]);
    expect(await repo.countByStatus()).toMatchObject({ active: 3, bounced: 1 });
    expect(await repo.suppression('c@example.com')).toMatchObject({ editionId: second.editionId });
    expect(await repo.isSuppressed('m@example.com')).toBe(true);
    expect(await repo.unsuppressEdition(first.editionId, LIFTED_AT)).toEqual([]);
    expect(await repo.unsuppressEdition(9999, LIFTED_AT)).toEqual([]);
  });

  it('streams subscribers of a list in id order', async () => {
    for (let i = 0; i < 5; i++) await repo.insert(person(`s${i}@example.com`, { lists: i % 2 ? [{ slug: 'weekly', frequency: 'weekly' }] : [] }), NOW);
    const batch = await repo.batchAfter(0, 10, 'weekly');
    expect(batch.map((s) => s.email)).toEqual(['s1@example.com', 's3@example.com']);
  });
});
