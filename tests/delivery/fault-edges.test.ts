import { rmSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { App } from '../../src/app.ts';
import { FaultJudge } from '../../src/delivery/fault-judge.ts';
import { OutcomeRecorder, type Taken } from '../../src/delivery/outcome-recorder.ts';
import type { DeliveryLedger } from '../../src/delivery/delivery-ledger.ts';
import { DatabaseGoneError, DeliveryFault } from '../../src/errors.ts';
import { createSqlSendQueue } from '../../src/queue/send-queue-sql.ts';
import { openStore } from '../../src/store/database.ts';
import { DeliveriesRepo } from '../../src/store/deliveries-repo.ts';
import { EditionsRepo, editionStoreOf } from '../../src/store/editions-repo.ts';
import { gazette } from '../helpers/cli.ts';
import { addSubscribers, afterThisTest, FAST, readers, sendDigest, setup } from '../helpers/delivery-setup.ts';
import {
  closedPort,
  deliverUntilSettled,
  deliveryStates,
  drainEventLoop,
  editionRow,
  startSilentServer,
  subscriberState,
  suppressedKeys,
  waitFor,
  watchUnhandledRejections,
} from '../helpers/fault-edges.ts';

// Edges of the fault handling that were fixed after a hostile review: small editions during an
// outage, relays that hang, a dead block after successes, poison notices, and a ledger that fails
// under the outcome recorder.

/** Every delivery of the edition still queued with no attempt spent. */
async function expectUntouched(app: App, editionId: number, count: number): Promise<void> {
  const rows = [...(await deliveryStates(app, editionId)).values()];
  expect(rows).toHaveLength(count);
  expect(rows.filter((r) => r.status !== 'queued' || r.attempts !== 0)).toEqual([]);
}

describe('no server at all, a small edition: an outage at once', () => {
  it.each([2, 3])('%i subscribers and a closed port: paused as an outage within seconds, 0 attempts, nobody suppressed', async (n) => {
    const port = await closedPort();
    const s = await setup({ smtpUrl: () => `smtp://127.0.0.1:${port}` });
    await addSubscribers(s.app, readers(n));
    const id = await sendDigest(s.app);

    const before = Date.now();
    const started = performance.now();
    await deliverUntilSettled(s.app, id, FAST, 15_000);
    const elapsed = performance.now() - started;

    // Well under the judge's 2-minute hold: fewer failures than a streak still make an outage when nothing went through.
    expect(elapsed, 'paused within a few seconds').toBeLessThan(5_000);
    const edition = await editionRow(s.app, id);
    expect(edition).toMatchObject({ status: 'paused', pauseKind: 'outage', outagePauses: 1 });
    expect(edition.lastError).toMatch(/ECONNREFUSED/);
    expect(edition.lastError).toMatch(new RegExp(`^${n} failed sessions`));
    expect(Date.parse(edition.resumeAt!)).toBeGreaterThan(before);
    await expectUntouched(s.app, id, n);
    expect(await suppressedKeys(s.app)).toEqual([]);
    expect(await (await s.app.adapters.subscribers()).countByStatus()).toMatchObject({ active: n, bounced: 0 });
  });
});

describe('a relay that takes the connection and never answers', () => {
  it('`send --wait` (lease 4 s) stops within 15 s with exit 1 saying no SMTP session; no attempt spent', async () => {
    const silent = await startSilentServer();
    const s = await setup({ smtpUrl: () => silent.url, env: { GAZETTE_LEASE_SECONDS: '4' } });
    await addSubscribers(s.app, readers(3));
    const id = await sendDigest(s.app);

    const started = Date.now();
    const run = await gazette(['send', String(id), '--wait'], s.env, 40_000);
    const elapsed = Date.now() - started;

    expect(silent.accepted, 'the worker did connect').toBeGreaterThan(0);
    expect(run.code, run.stderr).toBe(1);
    expect(elapsed, 'long before the 30 s socket timeout').toBeLessThan(15_000);
    // The transaction cap is half the lease: 2 s.
    expect(run.stderr).toMatch(new RegExp(`gazette: edition ${id} is paused by an outage: .*no SMTP session: the server took more than 2 s to take one message; the connection was dropped`));
    expect(run.stderr).toContain('Nothing was lost and no attempt was spent');
    expect(run.stderr).toContain(`gazette send ${id} --wait`);
    expect(await editionRow(s.app, id)).toMatchObject({ status: 'paused', pauseKind: 'outage' });
    await expectUntouched(s.app, id, 3);
    expect(await suppressedKeys(s.app)).toEqual([]);
  }, 60_000);
});

describe('a block of dead addresses after successes in the same edition', () => {
  it.each([1, 5])('concurrency %i: 5 live then 12 answered 550 5.1.1 user unknown: each bounces and is suppressed, no pause', async (concurrency) => {
    const dead = readers(12, 'gone').map((p) => p.email);
    const deadSet = new Set(dead);
    const s = await setup({
      recorder: { behaviour: (rcpt) => (deadSet.has(rcpt) ? { code: 550, message: `5.1.1 <${rcpt}>: user unknown`, at: 'rcpt' } : 'accept') },
    });
    // Inserted live first: ids, and so the order of sending, put the dead block after the successes.
    const ids = await addSubscribers(s.app, [...readers(5), ...readers(12, 'gone')]);
    const id = await sendDigest(s.app);
    await deliverUntilSettled(s.app, id, { ...FAST, concurrency });

    const edition = await editionRow(s.app, id);
    expect(edition.status).toBe('sent');
    expect(edition.pauseKind).toBeNull();
    expect(await suppressedKeys(s.app)).toEqual([...dead].sort());
    const rows = await deliveryStates(s.app, id);
    for (const address of dead) {
      const row = rows.get(ids.get(address)!)!;
      expect(row.status).toBe('bounced');
      // Its own reply, naming its own address (not the streak's summary).
      expect(row.lastError).toContain(`<${address}>: user unknown`);
      expect(s.recorder.attemptsFor(address)).toBe(1);
    }
    const live = readers(5).map((p) => p.email);
    for (const address of live) expect(rows.get(ids.get(address)!)).toMatchObject({ status: 'sent', attempts: 1 });
    expect(s.recorder.messages).toHaveLength(5);
    expect([...s.recorder.byRecipient().entries()].map(([rcpt, list]) => [rcpt, list.length]).sort()).toEqual(live.map((a) => [a, 1]).sort());
    expect(await (await s.app.adapters.subscribers()).countByStatus()).toMatchObject({ active: 5, bounced: 12 });
  });
});

describe('notices are not held up by one poison recipient', () => {
  const POISON = 'poison@example.com';
  const replies: [string, string, 'bounced' | 'failed'][] = [
    ['550 5.1.1 user unknown (bounced, suppressed)', `5.1.1 <${POISON}>: Recipient address rejected: User unknown in local recipient table`, 'bounced'],
    ['550 5.7.1 recipient access denied (failed, nobody suppressed)', `5.7.1 <${POISON}>: Recipient address rejected: Access denied`, 'failed'],
  ];
  it.each(replies)('RCPT always %s: every other confirmation goes out once', async (_name, reply, poisonStatus) => {
    const s = await setup({ recorder: { behaviour: (rcpt) => (rcpt === POISON ? { code: 550, message: reply, at: 'rcpt' } : 'accept') } });
    const service = await s.app.subscriptions();
    // The poison first, then more than one batch (10) of good ones.
    const others = readers(11, 'new').map((p) => p.email);
    for (const email of [POISON, ...others]) {
      expect(await service.subscribe({ email, lists: ['dispatch'], frequency: 'weekly', source: 'test' })).toBe('confirmation-queued');
    }
    const db = (await s.app.adapters.store()).db;
    const queued = async () => (await db.selectFrom('notices').select('id').where('status', '=', 'queued').execute()).length;
    expect(await queued()).toBe(12);

    const worker = await s.app.worker(FAST);
    const controller = new AbortController();
    const running = worker.run({ signal: controller.signal });
    try {
      // Well before the notices' 30 s backoff, were the poison taken for the server's fault.
      await waitFor(async () => (await queued()) === 0, 'every notice to be decided', 10_000);
    } finally {
      controller.abort();
      await running;
    }

    const notices = await db.selectFrom('notices').select(['email', 'status', 'attempts']).orderBy('id').execute();
    expect(notices[0]).toMatchObject({ email: POISON, status: poisonStatus, attempts: 1 });
    expect(notices.slice(1).map((n) => [n.email, n.status, n.attempts])).toEqual(others.map((email) => [email, 'sent', 1]));
    expect(s.recorder.attemptsFor(POISON)).toBe(1);
    const byRecipient = s.recorder.byRecipient();
    expect(byRecipient.has(POISON)).toBe(false);
    expect(others.map((email) => byRecipient.get(email)?.length ?? 0)).toEqual(others.map(() => 1));
    const subscribers = await s.app.adapters.subscribers();
    expect(await suppressedKeys(s.app)).toEqual(poisonStatus === 'bounced' ? [POISON] : []);
    expect((await subscriberState(db, { emailKey: POISON })).status).toBe(poisonStatus === 'bounced' ? 'bounced' : 'pending');
    expect(await subscribers.countByStatus()).toMatchObject({ pending: poisonStatus === 'bounced' ? 11 : 12 });
  });
});

describe('the ledger write failing under the outcome recorder', () => {
  /**
   * An OutcomeRecorder over a store of its own on the setup's SQLite file (so the test can close it
   * under the recorder), holding the edition's deliveries as a worker would after reserving and claiming.
   */
  async function recorderOverOwnStore(slowJudgingMs = 0) {
    const s = await setup();
    await addSubscribers(s.app, readers(3));
    const id = await sendDigest(s.app);
    const store = await openStore({ databaseUrl: undefined, dataDir: s.dataDir, create: false });
    let closed = false;
    const closeStore = async () => {
      if (!closed) await store.close();
      closed = true;
    };
    afterThisTest(closeStore);
    const deliveries = new DeliveriesRepo(store.db);
    const queue = createSqlSendQueue(store);
    const jobs = await queue.reserve(10, 60_000);
    const { claimed } = await deliveries.claim(
      jobs.map((j) => j.deliveryId),
      'test-claim',
      60_000,
    );
    expect(claimed).toHaveLength(3);
    const taken: Taken[] = claimed.map((delivery) => ({
      job: jobs.find((j) => j.deliveryId === delivery.id)!,
      claim: 'test-claim',
      delivery,
      expires: Number.POSITIVE_INFINITY,
      abort: new AbortController(),
    }));
    // Real SQLite underneath; `slowJudgingMs` makes the write of held failures as slow as a networked
    // database's round trips, so the group commit of a success can fail before that write is done.
    const ledger: DeliveryLedger = {
      claim: (ids, claim, leaseMs) => deliveries.claim(ids, claim, leaseMs),
      extend: (claims, leaseMs) => deliveries.extend(claims, leaseMs),
      async record(records) {
        if (slowJudgingMs > 0 && records.every((r) => r.outcome.status !== 'sent')) await new Promise((resolve) => setTimeout(resolve, slowJudgingMs));
        return deliveries.record(records);
      },
    };
    const recorder = new OutcomeRecorder({
      ledger,
      queue,
      editions: editionStoreOf(new EditionsRepo(store.db)),
      judge: new FaultJudge<Taken>(),
      retry: FAST.retry!,
      random: () => 0.5,
      now: () => new Date(),
      log: () => {},
      onPause: async () => {},
    });
    return { s, id, taken, recorder, closeStore };
  }

  const dropped = () => new DeliveryFault('unreachable', 'no SMTP session (CONN): ECONNRESET: socket hang up', { reply: 'ECONNRESET' });

  it('a sent message whose group commit fails: sent() rejects, nothing is left unhandled', async () => {
    const watch = watchUnhandledRejections();
    const { taken, recorder, closeStore, s, id } = await recorderOverOwnStore();
    await closeStore();
    await expect(recorder.sent(taken[0]!)).rejects.toThrow(/destroyed/);
    await expect(recorder.failed(taken[1]!, new DeliveryFault('refused', 'the server refuses us (MAIL FROM): 550 5.7.1 not owned'))).rejects.toThrow(/destroyed/);
    await expect(recorder.release([taken[2]!])).rejects.toThrow(/destroyed/);
    await drainEventLoop();
    expect(watch.reasons).toEqual([]);
    // Nothing was written: the deliveries are as the claim left them.
    expect([...(await deliveryStates(s.app, id)).values()].every((r) => r.status === 'queued' && r.attempts === 0)).toBe(true);
  });

  it('a success that decides held failures while the database is closed: sent() rejects, nothing is left unhandled', async () => {
    const watch = watchUnhandledRejections();
    const { taken, recorder, closeStore } = await recorderOverOwnStore();
    await recorder.failed(taken[0]!, dropped()); // held by the judge: nothing written yet
    await closeStore();
    await expect(recorder.sent(taken[1]!)).rejects.toThrow(/destroyed/);
    await drainEventLoop();
    expect(watch.reasons).toEqual([]);
  });

  // sent() must observe its group commit at once: the judging of held failures may still await a
  // slow write when the commit fails, and an unhandled rejection would kill a CLI process.
  it('the same while the held failures are still being written when the group commit fails: nothing is left unhandled', async () => {
    const watch = watchUnhandledRejections();
    const { taken, recorder, closeStore } = await recorderOverOwnStore(50);
    await recorder.failed(taken[0]!, dropped());
    await closeStore();
    await expect(recorder.sent(taken[1]!)).rejects.toThrow(/destroyed/);
    await drainEventLoop();
    expect(watch.reasons).toEqual([]);
  });

  it('the database file deleted under a running worker: run() rejects with DatabaseGoneError, nothing is left unhandled', async () => {
    const watch = watchUnhandledRejections();
    let dataDir = '';
    let deleted = false;
    const s = await setup({
      recorder: {
        parse: false,
        onMessage: (_message, count) => {
          if (count === 5 && !deleted) {
            deleted = true;
            rmSync(path.join(dataDir, 'gazette.db'), { force: true });
          }
        },
      },
    });
    dataDir = s.dataDir;
    await addSubscribers(s.app, readers(60));
    const id = await sendDigest(s.app);
    // A slow enough rate that the worker is still sending (and recording) when the file goes.
    const worker = await s.app.worker({ ...FAST, rate: 100 });
    const deliveries = await s.app.adapters.deliveries();
    const outcome = await worker
      .run({ signal: AbortSignal.timeout(20_000), stopWhenIdle: async () => (await deliveries.counts(id)).queued === 0 })
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(deleted).toBe(true);
    expect(outcome).toBeInstanceOf(DatabaseGoneError);
    expect((outcome as Error).message).toMatch(/gazette\.db was deleted while Gazette was running/);
    expect(s.recorder.messages.length).toBeLessThan(60);
    await drainEventLoop();
    expect(watch.reasons).toEqual([]);
  });
});

describe('a recipient whose RCPT makes the server drop the connection, while the server otherwise answers', () => {
  const POISON = 'dropper@example.com';

  it('a notice: its attempts count and it fails after them; the notices are never paused for it', async () => {
    const s = await setup({ recorder: { behaviour: (rcpt) => (rcpt === POISON ? 'drop' : 'accept') } });
    const service = await s.app.subscriptions();
    // The good ones first, the poison last: alone when the batch settles, it looks like a dead relay.
    const others = readers(3, 'new').map((p) => p.email);
    for (const email of [...others, POISON]) await service.subscribe({ email, lists: ['dispatch'], frequency: 'weekly', source: 'test' });
    const db = (await s.app.adapters.store()).db;
    const events: string[] = [];
    const worker = await s.app.worker(FAST, (event) => events.push(event));
    const controller = new AbortController();
    const running = worker.run({ signal: controller.signal });
    try {
      await waitFor(async () => (await db.selectFrom('notices').select('id').where('status', '=', 'queued').execute()).length === 0, 'the poison to be given up', 10_000);
    } finally {
      controller.abort();
      await running;
    }
    const poison = await db.selectFrom('notices').select(['status', 'attempts', 'last_error']).where('email', '=', POISON).executeTakeFirstOrThrow();
    expect(poison).toMatchObject({ status: 'failed', attempts: FAST.retry!.maxAttempts });
    expect(s.recorder.attemptsFor(POISON)).toBe(FAST.retry!.maxAttempts);
    expect(events).not.toContain('notices-paused');
    expect(others.map((email) => s.recorder.byRecipient().get(email)?.length)).toEqual([1, 1, 1]);
  });

  it('an edition of one: retried with its attempts counted, then failed, instead of an outage pause after every backoff', async () => {
    const s = await setup({ recorder: { behaviour: (rcpt) => (rcpt === POISON ? 'drop' : 'accept') } });
    await addSubscribers(s.app, [{ email: POISON }]);
    const id = await sendDigest(s.app);
    await deliverUntilSettled(s.app, id, FAST);
    const edition = await editionRow(s.app, id);
    expect(edition.status).toBe('failed');
    expect(edition.pauseKind).toBeNull();
    const [row] = [...(await deliveryStates(s.app, id)).values()];
    expect(row).toMatchObject({ status: 'failed', attempts: FAST.retry!.maxAttempts });
    expect(await suppressedKeys(s.app)).toEqual([]);
  });

  it('with the relay really down the same edition is still an outage: paused, no attempt spent', async () => {
    const port = await closedPort();
    const s = await setup({ smtpUrl: () => `smtp://127.0.0.1:${port}` });
    await addSubscribers(s.app, [{ email: POISON }]);
    const id = await sendDigest(s.app);
    await deliverUntilSettled(s.app, id, FAST);
    expect(await editionRow(s.app, id)).toMatchObject({ status: 'paused', pauseKind: 'outage' });
    await expectUntouched(s.app, id, 1);
  });
});

describe('sign-ups with dead addresses after a confirmation went through', () => {
  it('a run of 12 bounces among notices bounces each one; the notices are not paused as refused', async () => {
    const dead = readers(12, 'bot').map((p) => p.email);
    const deadSet = new Set(dead);
    const s = await setup({ recorder: { behaviour: (rcpt) => (deadSet.has(rcpt) ? { code: 550, message: `5.1.1 <${rcpt}>: user unknown`, at: 'rcpt' } : 'accept') } });
    const service = await s.app.subscriptions();
    for (const email of ['real@example.com', ...dead, 'late@example.com']) await service.subscribe({ email, lists: ['dispatch'], frequency: 'weekly', source: 'test' });
    const db = (await s.app.adapters.store()).db;
    const events: string[] = [];
    const worker = await s.app.worker(FAST, (event) => events.push(event));
    const controller = new AbortController();
    const running = worker.run({ signal: controller.signal });
    try {
      await waitFor(async () => (await db.selectFrom('notices').select('id').where('status', '=', 'queued').execute()).length === 0, 'every notice to be decided', 10_000);
    } finally {
      controller.abort();
      await running;
    }
    expect(events).not.toContain('notices-paused');
    const statuses = await db.selectFrom('notices').select(['email', 'status']).orderBy('id').execute();
    expect(statuses.map((n) => n.status)).toEqual(['sent', ...dead.map(() => 'bounced'), 'sent']);
    expect(await suppressedKeys(s.app)).toEqual([...dead].sort());
  });
});
