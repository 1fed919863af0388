import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../src/store/database.ts';
import { SubscribersRepo, type NewSubscriber } from '../../src/store/subscribers-repo.ts';
import { BACKENDS, freshDatabase, type TestDatabase } from '../helpers/databases.ts';

const NOW = new Date('2026-01-01T00:00:00Z');

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
    expect(found).toMatchObject({ id, email: 'Ann@Example.com', status: 'active', confirmed_at: NOW.toISOString() });
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
    expect((await repo.findById(id))!.unsubscribed_at).toBe(NOW.toISOString());
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

  it('streams subscribers of a list in id order', async () => {
    for (let i = 0; i < 5; i++) await repo.insert(person(`s${i}@example.com`, { lists: i % 2 ? [{ slug: 'weekly', frequency: 'weekly' }] : [] }), NOW);
    const batch = await repo.batchAfter(0, 10, 'weekly');
    expect(batch.map((s) => s.email)).toEqual(['s1@example.com', 's3@example.com']);
  });
});
