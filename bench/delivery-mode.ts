// One measured run of one mode: a fresh store, N subscribers, one digest edition enqueued, then W
// `gazette worker --exit-when-idle` processes started at once, and smtp-source right beside them.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runTimed, scoped, type Scope, type Timed } from './delivery-processes.ts';
import { POSTGRES_URL, privatePrefix, privateSchema, REDIS_URL } from './delivery-services.ts';
import { buildDist, distIsCurrent, gazetteEnv, prepareEdition, readLedger, ROOT, type StoreSettings } from './delivery-setup.ts';

const SOURCE = '/usr/sbin/smtp-source';
/** smtp-source's parallel sessions, each reused for message after message (-d). */
export const SOURCE_SESSIONS = 10;
const RECIPIENT = 'reader@bench.example.org';

/** Where the store and the queue live: `bullmq` is BullMQ on Redis beside a Postgres store. */
export type Backend = 'sqlite' | 'postgres' | 'bullmq';
export const BACKENDS: readonly Backend[] = ['sqlite', 'postgres', 'bullmq'];

/** What a mode run is given. */
export interface ModeRequest {
  backend: Backend;
  workers: number;
  messages: number;
  concurrency: number;
  smtpPort: number;
  /** Whether smtp-source runs beside it, and before or after the workers. */
  yardstick: 'before' | 'after' | 'none';
  /** Told when src/ changed since the build and dist/ had to be built again. */
  onRebuild: () => void;
  /** Hears what the run is doing. */
  progress: (message: string) => void;
}

/** What GNU time saw of smtp-source sending the same messages to the same sink. */
export interface YardstickSample {
  msgsPerSecond: number;
  cpuUsPerMessage: number;
  wallMs: number;
}

/** One mode run's figures. */
export interface ModeSample {
  sent: number;
  messageBytes: number;
  /** First to last sent_at, counting the messages recorded after the first stamp. */
  sustained: number;
  /** Sent over spawning the workers → every worker exited. */
  endToEnd: number;
  wallMs: number;
  /** Spawning the workers → the earliest sent_at. */
  startupMs: number;
  /** The latest sent_at → every worker exited (the idle check included). */
  drainMs: number;
  /** User + system CPU of every worker over the messages sent. */
  cpuUsPerMessage: number;
  rssKb: number[];
  yardstick: YardstickSample | undefined;
}

/** Runs one mode from a fresh store to its figures; everything it made is removed afterwards. */
export async function runMode(request: ModeRequest): Promise<ModeSample> {
  return scoped(async (scope) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'gazette-bench-delivery-'));
    scope.defer(`temporary folder ${dir}`, () => rm(dir, { recursive: true, force: true }));
    const env = gazetteEnv(await freshStore(scope, request.backend, dir), request.smtpPort, request.concurrency);
    const edition = await prepareEdition(env, request.messages);
    request.progress(`enqueued in ${(edition.enqueueMs / 1000).toFixed(2)} s, ${edition.messageBytes.toLocaleString('en')} B a message`);
    const yardstick = () => smtpSource(dir, request.smtpPort, request.messages, edition.messageBytes, edition.sender);
    const before = request.yardstick === 'before' ? await yardstick() : undefined;
    if (!distIsCurrent()) {
      request.onRebuild();
      await buildDist();
    }
    request.progress(`${request.workers} worker${request.workers === 1 ? '' : 's'} started`);
    const spawnedAt = Date.now();
    const started = performance.now();
    const runs = Array.from({ length: request.workers }, (_, i) =>
      runTimed(`worker ${i + 1} of ${request.workers}`, process.execPath, [path.join(ROOT, 'bin', 'gazette.js'), 'worker', '--exit-when-idle'], {
        env,
        cwd: ROOT,
        timeFile: path.join(dir, `worker-${i + 1}.time`),
        timeoutMs: 120_000 + request.messages * 10,
      }),
    );
    const workers = await allSettledOrThrow(runs.map((run) => run.done));
    const wallMs = performance.now() - started;
    const after = request.yardstick === 'after' ? await yardstick() : undefined;
    const ledger = await readLedger(env, edition.editionId);
    const { counts } = ledger;
    if (counts.sent !== request.messages) {
      const tail = workers.map((w, i) => `worker ${i + 1}: ${w.stderrTail.trim().slice(-600) || '(nothing on stderr)'}`).join('\n');
      throw new Error(`${counts.sent} of ${request.messages} sent (queued ${counts.queued}, failed ${counts.failed}, bounced ${counts.bounced}, skipped ${counts.skipped})\n${tail}`);
    }
    const spanMs = ledger.last - ledger.first;
    return {
      sent: counts.sent,
      messageBytes: edition.messageBytes,
      sustained: spanMs > 0 ? (counts.sent - ledger.atFirst) / (spanMs / 1000) : NaN,
      endToEnd: counts.sent / (wallMs / 1000),
      wallMs,
      startupMs: ledger.first - spawnedAt,
      drainMs: spawnedAt + wallMs - ledger.last,
      cpuUsPerMessage: (workers.reduce((sum, w) => sum + w.cpuMs, 0) * 1000) / counts.sent,
      rssKb: workers.map((w) => w.maxRssKb),
      yardstick: before ?? after,
    };
  });
}

/** Times `app.editions.send(id)` of one edition to `recipients` subscribers in a fresh store of `backend`. */
export async function timeEnqueue(backend: Backend, recipients: number): Promise<number> {
  return scoped(async (scope) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'gazette-bench-enqueue-'));
    scope.defer(`temporary folder ${dir}`, () => rm(dir, { recursive: true, force: true }));
    // No message goes out: the SMTP port is never dialled.
    const env = gazetteEnv(await freshStore(scope, backend, dir), 9, 1);
    return (await prepareEdition(env, recipients)).enqueueMs;
  });
}

async function freshStore(scope: Scope, backend: Backend, dataDir: string): Promise<StoreSettings> {
  if (backend === 'sqlite') return { dataDir };
  const databaseUrl = await privateSchema(scope, POSTGRES_URL);
  if (backend === 'postgres') return { dataDir, databaseUrl };
  return { dataDir, databaseUrl, redisUrl: REDIS_URL, redisPrefix: privatePrefix(scope, REDIS_URL) };
}

/** `smtp-source -d -s 10 -m N -l BYTES` to the same sink, timed as a whole under GNU time. */
async function smtpSource(dir: string, port: number, messages: number, bytes: number, sender: string): Promise<YardstickSample> {
  const args = ['-d', '-s', String(SOURCE_SESSIONS), '-m', String(messages), '-l', String(bytes), '-f', sender, '-t', RECIPIENT, `127.0.0.1:${port}`];
  const run = runTimed('smtp-source', SOURCE, args, { timeFile: path.join(dir, 'smtp-source.time'), timeoutMs: 60_000 + messages * 5 });
  const timed: Timed = await run.done;
  return { msgsPerSecond: messages / (timed.wallMs / 1000), cpuUsPerMessage: (timed.cpuMs * 1000) / messages, wallMs: timed.wallMs };
}

/** Waits for every promise; the first rejection is thrown once all have settled (no child left behind). */
async function allSettledOrThrow<T>(promises: Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}
