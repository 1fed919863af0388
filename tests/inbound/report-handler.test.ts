import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { InboundReport } from '../../src/inbound/inbound-report.ts';
import { createReportHandler } from '../../src/inbound/report-handler.ts';
import { openStore, type Store } from '../../src/store/database.ts';
import { EventsRepo } from '../../src/store/events-repo.ts';
import { SubscribersRepo } from '../../src/store/subscribers-repo.ts';
import { BACKENDS, freshDatabase, type TestDatabase } from '../helpers/databases.ts';
import { sendWithBounces } from '../helpers/editions.ts';

const AT = new Date('2026-05-04T09:00:00Z');

describe.each(BACKENDS)('the report handler (%s)', (backend) => {
  let database: TestDatabase;
  let store: Store;
  let subscribers: SubscribersRepo;
  let events: EventsRepo;
  let clock = AT;
  const handler = (softBounces = { limit: 3, sends: 5 }) => createReportHandler({ events, softBounces, now: () => clock });

  beforeEach(async () => {
    clock = AT;
    database = await freshDatabase(backend);
    store = await openStore({ databaseUrl: database.url, dataDir: database.dataDir });
    subscribers = new SubscribersRepo(store.db);
    events = new EventsRepo(store.db);
    await subscribers.insertMany(
      ['ann@example.com', 'bob@example.com', 'cy@example.com'].map((email) => ({
        email,
        emailKey: email,
        name: null,
        status: 'active' as const,
        source: 'test',
        consentIp: null,
        lists: [
          { slug: 'dispatch', frequency: 'instant' as const },
          { slug: 'weekly', frequency: 'weekly' as const },
        ],
      })),
      AT,
    );
  });
  afterEach(async () => {
    await store.close();
    await database.drop();
  });

  const report = (fields: Partial<InboundReport>): InboundReport => ({
    type: 'hard-bounce',
    source: 'smtp',
    deliveryId: null,
    email: null,
    status: '5.1.1',
    diagnostic: '550 5.1.1 user unknown',
    reportId: '<dsn-1@mx.example.net>',
    at: AT,
    ...fields,
  });
  const deliveryStatus = async (id: number) => (await store.db.selectFrom('deliveries').select(['status', 'last_error']).where('id', '=', id).executeTakeFirstOrThrow());

  it('a hard bounce hours after the send suppresses the address, marks the subscriber and turns the delivery bounced', async () => {
    const { editionId, deliveryOf } = await sendWithBounces(store.db, [], AT);
    const id = deliveryOf.get('ann@example.com')!;
    clock = new Date(AT.getTime() + 5 * 3_600_000);
    expect(await handler().handle(report({ deliveryId: id }))).toEqual({ result: 'recorded' });

    const ann = (await subscribers.findByEmail('ann@example.com'))!;
    expect(ann.status).toBe('bounced');
    expect(await subscribers.suppression('ann@example.com')).toMatchObject({ reason: 'bounced', deliveryId: id, editionId, detail: '5.1.1 550 5.1.1 user unknown' });
    expect(await deliveryStatus(id)).toEqual({ status: 'bounced', last_error: '5.1.1 550 5.1.1 user unknown' });
    expect(await events.editionCounts(editionId)).toEqual({ 'hard-bounce': 1, 'soft-bounce': 0, complaint: 0, unsubscribe: 0 });
    const history = (await events.ofSubscribers([ann.id])).get(ann.id)!;
    expect(history).toEqual([
      expect.objectContaining({ type: 'hard-bounce', source: 'smtp', action: 'suppressed', deliveryId: id, editionId, listSlug: 'dispatch', status: '5.1.1', at: AT.toISOString() }),
    ]);
    // Nobody else was touched.
    expect((await subscribers.findByEmail('bob@example.com'))!.status).toBe('active');
    expect(await subscribers.isSuppressed('bob@example.com')).toBe(false);
  });

  it('the same report twice (or the same bounce by another way) changes nothing more', async () => {
    const { editionId, deliveryOf } = await sendWithBounces(store.db, [], AT);
    const id = deliveryOf.get('ann@example.com')!;
    await handler().handle(report({ deliveryId: id }));
    expect(await handler().handle(report({ deliveryId: id }))).toEqual({ result: 'duplicate' });
    expect(await handler().handle(report({ deliveryId: id, source: 'ses', reportId: 'ses-feedback-1', email: 'ann@example.com' }))).toEqual({ result: 'duplicate' });
    expect(await events.editionCounts(editionId)).toMatchObject({ 'hard-bounce': 1 });
    const count = await store.db.selectFrom('subscriber_events').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    expect(Number(count.n)).toBe(1);
  });

  it('soft bounces are counted and suppress only at 3 of the last 5 sends', async () => {
    const sends: number[] = [];
    for (let i = 0; i < 5; i++) {
      clock = new Date(AT.getTime() + i * 86_400_000);
      sends.push((await sendWithBounces(store.db, [], clock)).deliveryOf.get('bob@example.com')!);
    }
    const soft = (deliveryId: number) => handler().handle(report({ type: 'soft-bounce', deliveryId, status: '4.2.2', diagnostic: '452 4.2.2 mailbox full' }));
    // One outside the window (the oldest send of six) does not count.
    clock = new Date(AT.getTime() + 6 * 86_400_000);
    const newest = (await sendWithBounces(store.db, [], clock)).deliveryOf.get('bob@example.com')!;
    await soft(sends[0]!);
    await soft(sends[2]!);
    expect(await subscribers.isSuppressed('bob@example.com')).toBe(false);
    expect((await subscribers.findByEmail('bob@example.com'))!.status).toBe('active');
    await soft(sends[3]!);
    // The same delivery's soft bounce twice is one.
    expect(await soft(sends[3]!)).toEqual({ result: 'duplicate' });
    expect(await subscribers.isSuppressed('bob@example.com')).toBe(false);
    await soft(newest);
    const bob = (await subscribers.findByEmail('bob@example.com'))!;
    expect(bob.status).toBe('bounced');
    expect(await subscribers.suppression('bob@example.com')).toMatchObject({ reason: 'bounced', detail: expect.stringMatching(/^3 soft bounces in the last 5 sends; the last: 4\.2\.2/) });
    const actions = (await events.ofSubscribers([bob.id])).get(bob.id)!.map((e) => e.action);
    expect(actions).toEqual(['suppressed', 'counted', 'counted', 'counted']);
  });

  it('a complaint unsubscribes from every list, marks complained and suppresses, outweighing a bounce', async () => {
    const { deliveryOf } = await sendWithBounces(store.db, [], AT);
    await subscribers.suppress('cy@example.com', 'bounced', 'earlier bounce', AT);
    await handler().handle(report({ type: 'complaint', deliveryId: deliveryOf.get('cy@example.com')!, status: 'abuse', diagnostic: 'Yahoo!-Mail-Feedback/2.0' }));
    const cy = (await subscribers.findByEmail('cy@example.com'))!;
    expect(cy.status).toBe('complained');
    expect(cy.lists).toEqual([]);
    expect(await subscribers.suppression('cy@example.com')).toMatchObject({ reason: 'complained' });
  });

  it("an unsubscribe by mail leaves the delivery's list only; the last list left makes them unsubscribed", async () => {
    const { deliveryOf } = await sendWithBounces(store.db, [], AT);
    await handler().handle(report({ type: 'unsubscribe', deliveryId: deliveryOf.get('ann@example.com')!, status: null, diagnostic: 'unsubscribed by mail' }));
    let ann = (await subscribers.findByEmail('ann@example.com'))!;
    expect(ann.lists.map((l) => l.slug)).toEqual(['weekly']);
    expect(ann.status).toBe('active');
    expect(await subscribers.isSuppressed('ann@example.com')).toBe(false);
    // A welcome email's mailto: names the subscriber, not a delivery: every list.
    await handler().handle(report({ type: 'unsubscribe', subscriberId: ann.id, reportId: '<unsub-2@mua>', status: null }));
    ann = (await subscribers.findByEmail('ann@example.com'))!;
    expect(ann.lists).toEqual([]);
    expect(ann.status).toBe('unsubscribed');
  });

  it('a webhook naming another address than the delivery it points at acts on the address it names', async () => {
    const { deliveryOf } = await sendWithBounces(store.db, [], AT);
    await handler().handle(report({ source: 'mailgun', deliveryId: deliveryOf.get('ann@example.com')!, email: 'Bob@Example.com', reportId: 'mg-1' }));
    expect((await subscribers.findByEmail('bob@example.com'))!.status).toBe('bounced');
    expect((await subscribers.findByEmail('ann@example.com'))!.status).toBe('active');
    // By address alone, the same event id twice is one.
    await handler().handle(report({ source: 'mailgun', email: 'cy@example.com', reportId: 'mg-2' }));
    expect(await handler().handle(report({ source: 'mailgun', email: 'cy@example.com', reportId: 'mg-2' }))).toEqual({ result: 'duplicate' });
  });

  it('ignores a report about nobody', async () => {
    expect(await handler().handle(report({ deliveryId: 424242 }))).toEqual({ result: 'ignored', reason: 'no delivery 424242' });
    expect(await handler().handle(report({ email: 'stranger@example.com', source: 'ses', reportId: 'x' }))).toEqual({ result: 'ignored', reason: 'no subscriber with that address' });
    const count = await store.db.selectFrom('subscriber_events').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    expect(Number(count.n)).toBe(0);
  });
});
