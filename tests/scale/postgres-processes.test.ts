import { describe, expect, it } from 'vitest';
import { freshDatabase, POSTGRES_AVAILABLE } from '../helpers/databases.ts';
import {
  allMessages,
  gazetteEnv,
  ledgerRows,
  ledgerShape,
  messageKeyOf,
  readerEmails,
  scopedApp,
  scopedContent,
  scopedRecorder,
  seedReaders,
  spawnGazette,
  testScope,
  waitUntil,
  workerTrouble,
} from '../helpers/scale.ts';
import type { SmtpRecorder } from '../helpers/smtp-recorder.ts';

// One Postgres, the queue in it (no Redis), and four processes at once: two `gazette scheduler`s
// racing for the same fires, and two `gazette worker`s sharing the sends. A one-off and a
// recurring digest come due at the same instant a few seconds ahead (real time: real processes).

const READERS = 300;
/** How far ahead the fires are set: the schedulers re-read the schedules every 2 s. */
const LEAD_MS = 4_000;

describe.runIf(POSTGRES_AVAILABLE)('schedulers and workers as separate processes on one Postgres', () => {
  it(
    'two schedulers, two workers: each fire happens once, each edition is made once, each delivery is sent once',
    async () => {
      const scope = testScope();
      const database = await freshDatabase('postgres');
      scope.defer('drop the Postgres schema', () => database.drop());
      const contentDir = await scopedContent(scope);
      const env = gazetteEnv(
        { dataDir: database.dataDir, contentDir, databaseUrl: database.url },
        // Per worker on the SQL queue: slow enough that both workers get a part of the 600 messages.
        { GAZETTE_RATE: '300', GAZETTE_CONCURRENCY: '5', GAZETTE_LEASE_SECONDS: '5' },
      );
      const app = scopedApp(scope, env);
      // Everyone reads both lists: the one-off goes to dispatch, the recurring digest to weekly.
      await seedReaders(app, READERS, ['dispatch', 'weekly']);
      const { edition: oneOffEdition } = await app.editions.create({ list: 'dispatch', story: 'harbour-cranes' });

      const recorders: SmtpRecorder[] = [await scopedRecorder(scope, { parse: false }), await scopedRecorder(scope, { parse: false })];
      const schedulers = [1, 2].map((n) => spawnGazette(scope, `scheduler ${n}`, ['scheduler'], env));
      const workers = recorders.map((recorder, i) => spawnGazette(scope, `worker ${i + 1}`, ['worker'], { ...env, SMTP_URL: recorder.url }));
      await Promise.all([
        ...schedulers.map((s) => s.waitForStderr(/^scheduler: running 0 active schedules/m, 60_000)),
        ...workers.map((w) => w.waitForStderr(/^worker: sending through smtp/m, 60_000)),
      ]);

      // Added while they run, as an editor would: both schedulers pick them up by their poll.
      const fireAt = new Date(Math.ceil((Date.now() + LEAD_MS) / 1000) * 1000);
      const oneOff = (await app.schedules.add({ edition: oneOffEdition.id, at: fireAt.toISOString() })).schedule;
      const cron = `${fireAt.getUTCSeconds()} ${fireAt.getUTCMinutes()} ${fireAt.getUTCHours()} * * *`;
      const recurring = (await app.schedules.add({ list: 'weekly', cron, tz: 'UTC', digest: true })).schedule;

      const db = (await app.adapters.store()).db;
      const fires = () => db.selectFrom('schedule_fires').selectAll().orderBy('schedule_id').orderBy('id').execute();
      const total = () => recorders.reduce((sum, r) => sum + r.messages.length, 0);
      await waitUntil(async () => (await fires()).filter((f) => f.status === 'sent').length >= 2 && total() >= 2 * READERS && (await app.backlog()) === 0, {
        timeoutMs: LEAD_MS + 60_000,
        what: 'both fires sent and delivered',
        describe: async () => `${JSON.stringify(await fires())}; ${total()} messages\n${[...schedulers, ...workers].map((p) => `${p.name}:\n${p.stderr()}`).join('\n')}`,
      });

      // Stopped first: a fire still in progress somewhere finishes before its scheduler exits.
      for (const end of await Promise.all(schedulers.map((s) => s.stop()))) expect(end.code, end.stderr).toBe(0);
      // Whatever a late second fire would have queued is sent before the workers are stopped.
      await waitUntil(async () => (await app.backlog()) === 0, { timeoutMs: 30_000, what: 'the queue empty' });
      const workerEnds = await Promise.all(workers.map((w) => w.stop()));
      for (const [i, end] of workerEnds.entries()) {
        expect(end.code, end.stderr).toBe(0);
        expect(workerTrouble(end.stderr), workers[i]!.name).toEqual([]);
      }

      // One fire per schedule, at its instant, each with its edition.
      const rows = await fires();
      const editions = await db.selectFrom('editions').select(['id', 'list_slug', 'kind', 'schedule_id', 'status']).orderBy('id').execute();
      expect(editions).toHaveLength(2);
      const digest = editions.find((e) => e.id !== oneOffEdition.id)!;
      expect(digest).toMatchObject({ list_slug: 'weekly', kind: 'digest', schedule_id: recurring.id, status: 'sent' });
      expect(editions.find((e) => e.id === oneOffEdition.id)).toMatchObject({ list_slug: 'dispatch', kind: 'story', status: 'sent' });
      expect(rows.map((f) => ({ schedule: f.schedule_id, at: f.fire_at, status: f.status, edition: f.edition_id, attempts: f.attempts }))).toEqual([
        { schedule: oneOff.id, at: fireAt.toISOString(), status: 'sent', edition: oneOffEdition.id, attempts: 1 },
        { schedule: recurring.id, at: fireAt.toISOString(), status: 'sent', edition: digest.id, attempts: 1 },
      ]);
      const lateMs = rows.map((f) => new Date(f.created_at).getTime() - fireAt.getTime());
      for (const late of lateMs) expect(late).toBeLessThan(5_000);
      expect((await app.schedules.show(oneOff.id)).schedule.status).toBe('done');
      expect((await app.schedules.show(recurring.id)).schedule.status).toBe('active');
      // Between them the two schedulers logged each fire once.
      const logs = schedulers.map((s) => s.stderr()).join('');
      const firedBy: string[] = [];
      for (const schedule of [oneOff, recurring]) {
        const sent = `scheduler: schedule ${schedule.id} fire of ${fireAt.toISOString()}: sent`;
        expect(logs.split('\n').filter((line) => line.startsWith(sent)), logs).toHaveLength(1);
        firedBy.push(`${schedule.kind} by ${schedulers.find((s) => s.stderr().includes(sent))!.name}`);
      }
      expect(logs.split('\n').filter((line) => /error|warning/.test(line))).toEqual([]);

      // Each reader got each edition exactly once; the ledger says so too.
      const messages = allMessages(recorders);
      expect(messages).toHaveLength(2 * READERS);
      const got = new Map<string, number>();
      for (const message of messages) {
        const key = `${messageKeyOf(message).editionId} ${message.rcpt.join(',')}`;
        got.set(key, (got.get(key) ?? 0) + 1);
      }
      const expected = [oneOffEdition.id, digest.id].flatMap((id) => readerEmails(READERS).map((email) => `${id} ${email}`)).sort();
      expect([...got.keys()].sort()).toEqual(expected);
      expect([...got.values()].every((n) => n === 1)).toBe(true);
      for (const id of [oneOffEdition.id, digest.id]) expect(ledgerShape(await ledgerRows(app, id))).toEqual({ 'sent/1': READERS });
      const shares = recorders.map((r) => r.messages.length);
      for (const share of shares) expect(share, `shares ${shares.join(' / ')}`).toBeGreaterThan(0);
      console.info(`postgres-processes: fires claimed ${lateMs.join(' / ')} ms after their instant (${firedBy.join(', ')}); ${messages.length} messages, shares ${shares.join(' / ')}`);
    },
    120_000,
  );
});
