import { simpleParser } from 'mailparser';
import { describe, expect, it } from 'vitest';
import type { App } from '../../src/app.ts';
import { TokenSigner } from '../../src/links/tokens.ts';
import { freshDatabase, POSTGRES_AVAILABLE, REDIS_URL, redisAvailable } from '../helpers/databases.ts';
import { deleteKeys, testPrefix } from '../helpers/redis-keys.ts';
import {
  allMessages,
  copiesByRecipient,
  gazetteEnv,
  ledgerRows,
  ledgerShape,
  NO_CONTENT_DIR,
  NO_TEMPLATES_DIR,
  readerEmails,
  SCALE_SECRET,
  scopedApp,
  scopedContent,
  scopedRecorder,
  seedReaders,
  spawnGazette,
  testScope,
  waitUntil,
  workerTrouble,
  type GazetteProcess,
  type Scope,
} from '../helpers/scale.ts';
import type { SmtpRecorder } from '../helpers/smtp-recorder.ts';

// Three `gazette worker` processes on the real engines (BullMQ on Redis for the queue, Postgres for
// the ledger), each with an SMTP server of its own so that what each one sent can be told apart.
// The workers run with no content/ and no templates/: everything they send comes from the edition.

const SUBSCRIBERS = 5_000;
const WORKERS = 3;
const CONCURRENCY = 5;
const LEASE_SECONDS = 5;
const KILL_AT = 1_500;

const redis = await redisAvailable();

/** A 5,000-reader digest made by the test, sent (enqueued) once the three workers are up. */
interface ThreeWorkers {
  app: App;
  editionId: number;
  recorders: SmtpRecorder[];
  workers: GazetteProcess[];
  /** When the last reader got their first copy (epoch ms); 0 until then. */
  everyoneAt(): number;
  /** When the edition was enqueued (epoch ms). */
  enqueuedAt: number;
}

async function threeWorkers(scope: Scope, onMessage: (worker: number, total: number) => void = () => {}): Promise<ThreeWorkers> {
  const database = await freshDatabase('postgres');
  scope.defer('drop the Postgres schema', () => database.drop());
  const prefix = testPrefix();
  scope.defer(`delete the Redis keys ${prefix}:*`, () => deleteKeys(REDIS_URL, prefix));
  const contentDir = await scopedContent(scope);
  const env = gazetteEnv(
    { dataDir: database.dataDir, contentDir, databaseUrl: database.url },
    {
      REDIS_URL,
      GAZETTE_REDIS_PREFIX: prefix,
      GAZETTE_CONCURRENCY: String(CONCURRENCY),
      // High enough to leave the pace to the machine.
      GAZETTE_RATE: '100000',
      // Short, so a killed worker's jobs come back within seconds.
      GAZETTE_LEASE_SECONDS: String(LEASE_SECONDS),
    },
  );
  const app = scopedApp(scope, env);
  await seedReaders(app, SUBSCRIBERS);
  const { edition } = await app.editions.create({ list: 'dispatch', digest: true });

  let total = 0;
  let everyoneAt = 0;
  const seen = new Set<string>();
  const recorders: SmtpRecorder[] = [];
  for (let i = 0; i < WORKERS; i++) {
    recorders.push(
      await scopedRecorder(scope, {
        parse: false,
        onMessage: (message) => {
          total++;
          for (const rcpt of message.rcpt) seen.add(rcpt);
          if (everyoneAt === 0 && seen.size >= SUBSCRIBERS) everyoneAt = message.receivedAt;
          onMessage(i, total);
        },
      }),
    );
  }
  // A machine with no content/ checkout and no templates/: only the database, the queue and SMTP.
  const workers = recorders.map((recorder, i) =>
    spawnGazette(scope, `worker ${i + 1}`, ['worker'], { ...env, GAZETTE_CONTENT_DIR: NO_CONTENT_DIR, GAZETTE_TEMPLATES_DIR: NO_TEMPLATES_DIR, SMTP_URL: recorder.url }),
  );
  // All three polling before there is anything to take, so the load can be shared.
  await Promise.all(workers.map((w) => w.waitForStderr(/^worker: sending through smtp, 5 at once/m, 60_000)));
  const enqueuedAt = Date.now();
  expect((await app.editions.send(edition.id)).added).toBe(SUBSCRIBERS);
  return { app, editionId: edition.id, recorders, workers, everyoneAt: () => everyoneAt, enqueuedAt };
}

/** Waits until every reader has a copy, the ledger has nothing queued and the edition is done. */
async function untilDelivered(run: ThreeWorkers, timeoutMs: number): Promise<void> {
  const deliveries = await run.app.adapters.deliveries();
  const editions = await run.app.adapters.editions();
  await waitUntil(async () => run.everyoneAt() > 0 && (await deliveries.counts(run.editionId)).queued === 0 && (await editions.find(run.editionId))?.status === 'sent', {
    timeoutMs,
    what: 'the edition delivered',
    describe: async () =>
      `${run.recorders.map((r) => r.messages.length).join(' + ')} messages; ledger ${JSON.stringify(await deliveries.counts(run.editionId))}; ` +
      run.workers.map((w) => `${w.name}: ${w.alive() ? 'running' : 'ended'}\n${w.stderr()}`).join('\n'),
  });
}

/** Everyone once in the ledger: one delivery per reader, each sent on its first attempt; nothing left in the queue. */
async function expectLedgerExactlyOnce(run: ThreeWorkers): Promise<void> {
  const rows = await ledgerRows(run.app, run.editionId);
  expect(rows).toHaveLength(SUBSCRIBERS);
  expect(new Set(rows.map((r) => r.subscriber_id)).size).toBe(SUBSCRIBERS);
  expect(ledgerShape(rows)).toEqual({ 'sent/1': SUBSCRIBERS });
  expect(await run.app.editions.status(run.editionId)).toMatchObject({ status: 'sent', total: SUBSCRIBERS, queued: 0, sending: 0, sent: SUBSCRIBERS, failed: 0, bounced: 0, skipped: 0 });
  expect(await run.app.backlog()).toBe(0);
}

describe.runIf(POSTGRES_AVAILABLE && redis)('three `gazette worker` processes on BullMQ + Postgres', () => {
  it(
    'deliver a 5,000-reader edition made elsewhere: each reader exactly once, each worker a share, sent as the edition says',
    async () => {
      const scope = testScope();
      const run = await threeWorkers(scope);
      await untilDelivered(run, 90_000);
      const doneAt = Date.now();

      const messages = allMessages(run.recorders);
      const copies = copiesByRecipient(messages);
      expect(readerEmails(SUBSCRIBERS).filter((email) => !copies.has(email))).toEqual([]);
      expect([...copies].filter(([, n]) => n !== 1)).toEqual([]);
      expect(messages).toHaveLength(SUBSCRIBERS);
      const shares = run.recorders.map((r) => r.messages.length);
      for (const share of shares) expect(share, `shares ${shares.join(' / ')}`).toBeGreaterThan(0);
      await expectLedgerExactlyOnce(run);

      // Sent as the edition was made (no content/ on the workers' machine): sender, list, links, signed tokens.
      const tokens = new TokenSigner(SCALE_SECRET);
      const subscriberIds = new Map(
        (await (await run.app.adapters.store()).db.selectFrom('subscribers').select(['id', 'email_key']).execute()).map((r) => [r.email_key, Number(r.id)]),
      );
      for (const recorder of run.recorders) {
        const sample = recorder.messages[0]!;
        const parsed = await simpleParser(sample.raw);
        // The envelope is the delivery's VERP return path at the sender's domain.
        expect(sample.from).toMatch(/^bounces\+d[0-9a-z]+-[0-9a-f]{20}@gazette\.example\.org$/);
        expect(parsed.from?.value[0]?.address).toBe('newsletter@gazette.example.org');
        expect(sample.raw).toMatch(/^List-Id: "?The Dispatch"? <dispatch\./m);
        const unsubscribe = /<(https:\/\/gazette\.example\.org\/unsubscribe\?token=([^>]+))>/.exec(sample.raw);
        expect(unsubscribe, sample.raw.slice(0, 2000)).not.toBeNull();
        const check = tokens.verify(unsubscribe![2]!, 'unsubscribe', new Date());
        expect(check).toMatchObject({ ok: true, subscriberId: subscriberIds.get(sample.rcpt[0]!) });
        expect(parsed.text).toContain('Harbour cranes return to work');
      }

      const ended = await Promise.all(run.workers.map((w) => w.stop()));
      for (const [i, end] of ended.entries()) {
        expect(end.code, end.stderr).toBe(0);
        expect(workerTrouble(end.stderr), `${run.workers[i]!.name}`).toEqual([]);
      }
      console.info(`bullmq-postgres: ${SUBSCRIBERS} readers by ${WORKERS} workers in ${doneAt - run.enqueuedAt} ms; shares ${shares.join(' / ')}`);
    },
    150_000,
  );

  it(
    'one worker SIGKILLed half-way: nobody missed, at most its messages in flight twice, the rest within 60 s, the ledger says once each',
    async () => {
      const scope = testScope();
      let killed: { worker: number; at: number; total: number } | undefined;
      let workers: GazetteProcess[] = [];
      const run = await threeWorkers(scope, (worker, total) => {
        // The worker whose message makes the count: it is sending right now.
        if (killed || total < KILL_AT || workers.length === 0) return;
        workers[worker]!.child.kill('SIGKILL');
        killed = { worker, at: Date.now(), total };
      });
      workers = run.workers;
      await waitUntil(() => killed !== undefined, { timeoutMs: 90_000, what: `${KILL_AT} messages`, describe: () => run.recorders.map((r) => r.messages.length).join(' + ') });
      const victim = run.workers[killed!.worker]!;
      const end = await victim.done;
      expect(end.signal, `${victim.name} ended on its own:\n${end.stderr}`).toBe('SIGKILL');
      const byVictim = run.recorders[killed!.worker]!.messages.length;
      expect(killed!.total).toBeLessThan(SUBSCRIBERS);

      await untilDelivered(run, 90_000);
      const everyoneAfterKillMs = run.everyoneAt() - killed!.at;
      expect(everyoneAfterKillMs).toBeLessThanOrEqual(60_000);

      // Everyone got it; the only second copies are of messages the killed worker had in flight.
      const messages = allMessages(run.recorders);
      const copies = copiesByRecipient(messages);
      expect(readerEmails(SUBSCRIBERS).filter((email) => !copies.has(email))).toEqual([]);
      expect([...copies].filter(([, n]) => n > 2)).toEqual([]);
      const twice = [...copies].filter(([, n]) => n === 2).map(([email]) => email);
      expect(twice.length).toBeLessThanOrEqual(CONCURRENCY);
      expect(messages).toHaveLength(SUBSCRIBERS + twice.length);
      for (const email of twice) {
        const [first, second] = messages.filter((m) => m.rcpt.includes(email)).sort((a, b) => a.receivedAt - b.receivedAt);
        expect(first!.by, `${email}: first copy by worker ${first!.by + 1}`).toBe(killed!.worker);
        expect(second!.by).not.toBe(killed!.worker);
      }
      // The killed worker had sent its share; the others took over the rest.
      const shares = run.recorders.map((r) => r.messages.length);
      for (const share of shares) expect(share, `shares ${shares.join(' / ')}`).toBeGreaterThan(0);
      await expectLedgerExactlyOnce(run);

      const survivors = run.workers.filter((w) => w !== victim);
      for (const [i, ended] of (await Promise.all(survivors.map((w) => w.stop()))).entries()) {
        expect(ended.code, ended.stderr).toBe(0);
        expect(workerTrouble(ended.stderr), survivors[i]!.name).toEqual([]);
      }
      console.info(
        `bullmq-postgres kill: worker ${killed!.worker + 1} killed at ${killed!.total} messages (${killed!.at - run.enqueuedAt} ms after the enqueue, ${byVictim} of them its own); ` +
          `${twice.length} sent twice; everyone had it ${everyoneAfterKillMs} ms after the kill; shares ${shares.join(' / ')}`,
      );
    },
    150_000,
  );
});
