import os from 'node:os';
import { BACKENDS, runMode, timeEnqueue, type Backend } from './delivery-mode.ts';
import { cleanUpOnInterrupt, scoped, wasInterrupted, type Scope } from './delivery-processes.ts';
import { enqueueLine, modeLines, modeName, modeTable, rssLine, type ModeResult } from './delivery-report.ts';
import { POSTGRES_URL, postgresProblem, REDIS_URL, redisProblem, Sink } from './delivery-services.ts';
import { buildDist } from './delivery-setup.ts';

/** What the environment asks of the delivery bench. */
interface Settings {
  /** BENCH_BACKENDS, default sqlite,postgres,bullmq (bullmq: BullMQ queue on Redis, Postgres store). */
  backends: Backend[];
  /** BENCH_WORKERS, default 1,2,4: worker processes started at once. */
  workers: number[];
  /** BENCH_MESSAGES, default 20,000: recipients of each mode's edition. */
  messages: number;
  /** BENCH_ENQUEUE, default 100,000 (0: not measured): recipients of the enqueue timing. */
  enqueue: number;
  /** BENCH_ROUNDS, default 1: with more, the modes run interleaved, round after round, and medians are reported. */
  rounds: number;
  /** BENCH_CONCURRENCY, default 10: GAZETTE_CONCURRENCY of each worker. */
  concurrency: number;
  /** BENCH_RSS=1: one worker's peak RSS on SQLite at each of BENCH_RSS_SIZES (default 10,000 and 100,000; slow). */
  rssSizes: number[] | undefined;
}

/**
 * Delivery benchmarks (issue: editions, queue and delivery): for each backend × worker count, a
 * digest edition to BENCH_MESSAGES synthetic subscribers through SMTP to postfix's smtp-sink, with
 * postfix's smtp-source sending as many messages of the same size to the same sink right beside
 * it as the yardstick; the enqueue time on each backend; one worker's RSS at two sizes.
 */
export async function benchDelivery(): Promise<string[]> {
  const settings = readSettings();
  const uninstall = cleanUpOnInterrupt();
  try {
    return await scoped((scope) => bench(scope, settings));
  } finally {
    uninstall();
  }
}

async function bench(scope: Scope, settings: Settings): Promise<string[]> {
  const lines: string[] = [];
  const notes: string[] = [];
  if (process.env.BENCH_DELIVERY_SIZES) notes.push('delivery: note: BENCH_DELIVERY_SIZES is no longer read (BENCH_MESSAGES, BENCH_ENQUEUE and BENCH_RSS=1 are)');
  progress('building dist/ (npm run build): the workers run it');
  await buildDist();
  const { backends, skipped } = await reachableBackends(settings.backends);
  lines.push(...skipped);
  const sink = new Sink(scope);
  const port = await sink.ensure();
  lines.push(
    `delivery: ${settings.messages.toLocaleString('en')} messages per mode (a digest of content/), GAZETTE_CONCURRENCY ${settings.concurrency} per worker, GAZETTE_RATE 1,000,000; ` +
      `smtp-sink -u nobody 127.0.0.1:${port} 512; ${settings.rounds} round${settings.rounds === 1 ? '' : 's'}${settings.rounds > 1 ? ' (modes interleaved, medians)' : ''}; ${os.cpus().length} CPUs`,
  );

  const modes: ModeResult[] = backends.flatMap((backend) => settings.workers.map((workers) => ({ backend, workers, samples: [], failures: [] })));
  const enqueues = new Map(backends.map((backend) => [backend, { samples: [] as number[], failures: [] as string[] }]));
  let rebuilt = 0;
  for (let round = 0; round < settings.rounds && !wasInterrupted(); round++) {
    const tag = settings.rounds > 1 ? `round ${round + 1}/${settings.rounds}: ` : '';
    for (const mode of modes) {
      if (wasInterrupted()) break;
      const name = modeName(mode.backend, mode.workers);
      progress(`${tag}${name}: ${settings.messages.toLocaleString('en')} messages`);
      try {
        const sample = await runMode({
          backend: mode.backend,
          workers: mode.workers,
          messages: settings.messages,
          concurrency: settings.concurrency,
          smtpPort: await sink.ensure(),
          // Alternately before and after the workers, so neither side always runs first.
          yardstick: round % 2 === 0 ? 'before' : 'after',
          onRebuild: () => {
            rebuilt++;
            progress(`src/ changed since the build: building dist/ again before ${name}`);
          },
          progress: (message) => progress(`${tag}${name}: ${message}`),
        });
        mode.samples.push(sample);
        progress(`${tag}${name}: ${Math.round(sample.sustained)} msgs/s sustained, ${Math.round(sample.endToEnd)} end to end; smtp-source ${Math.round(sample.yardstick!.msgsPerSecond)}`);
      } catch (error) {
        mode.failures.push(failure(`${tag}${name}`, error));
      }
    }
    if (settings.enqueue === 0) continue;
    for (const [backend, result] of enqueues) {
      if (wasInterrupted()) break;
      progress(`${tag}enqueue ${backend}: ${settings.enqueue.toLocaleString('en')} recipients`);
      try {
        result.samples.push(await timeEnqueue(backend, settings.enqueue));
      } catch (error) {
        result.failures.push(failure(`${tag}enqueue ${backend}`, error));
      }
    }
  }
  for (const mode of modes) lines.push(...modeLines(mode, settings.rounds));
  if (settings.enqueue > 0) for (const [backend, result] of enqueues) lines.push(...enqueueLine(backend, settings.enqueue, result.samples, result.failures));
  else lines.push('enqueue: not measured (BENCH_ENQUEUE=0)');
  lines.push(await rssFlatness(settings, sink));
  if (rebuilt > 0) notes.push(`delivery: note: src/ changed during the run; dist/ was built again ${rebuilt} time${rebuilt === 1 ? '' : 's'}, so the modes did not all run the same code`);
  if (sink.restarts > 0) notes.push(`delivery: note: smtp-sink died and was started again ${sink.restarts} time${sink.restarts === 1 ? '' : 's'}`);
  lines.push(...notes, ...modeTable(modes));
  if (wasInterrupted() || modes.some((m) => m.failures.length > 0) || [...enqueues.values()].some((e) => e.failures.length > 0)) process.exitCode = 1;
  return lines;
}

/** The backends asked for whose services answer, and a line for each one left out. */
async function reachableBackends(wanted: Backend[]): Promise<{ backends: Backend[]; skipped: string[] }> {
  const postgres = wanted.some((b) => b !== 'sqlite') ? await postgresProblem() : undefined;
  const redis = wanted.includes('bullmq') ? await redisProblem() : undefined;
  const skipped: string[] = [];
  const backends = wanted.filter((backend) => {
    const problems = [
      backend !== 'sqlite' && postgres ? `Postgres at ${masked(POSTGRES_URL)} does not answer (${postgres}; BENCH_POSTGRES_URL points elsewhere)` : undefined,
      backend === 'bullmq' && redis ? `Redis at ${masked(REDIS_URL)} does not answer (${redis}; BENCH_REDIS_URL points elsewhere)` : undefined,
    ].filter((p) => p !== undefined);
    if (problems.length > 0) skipped.push(`delivery ${backend}: skipped (its modes and its enqueue): ${problems.join('; ')}`);
    return problems.length === 0;
  });
  return { backends, skipped };
}

/** One worker's peak RSS on SQLite at each size (BENCH_RSS=1), no yardstick. */
async function rssFlatness(settings: Settings, sink: Sink): Promise<string> {
  const sizes = settings.rssSizes;
  if (!sizes) return 'rss: not measured (slow): BENCH_RSS=1 measures one worker on SQLite at 10,000 and 100,000 recipients   [target <= 150 MB, flat]';
  const peaks: number[] = [];
  for (const size of sizes) {
    if (wasInterrupted()) return 'rss: interrupted';
    progress(`rss: sqlite, 1 worker, ${size.toLocaleString('en')} messages`);
    try {
      const sample = await runMode({ backend: 'sqlite', workers: 1, messages: size, concurrency: settings.concurrency, smtpPort: await sink.ensure(), yardstick: 'none', onRebuild: () => progress('src/ changed: building dist/ again'), progress: (message) => progress(`rss ${size}: ${message}`) });
      peaks.push(sample.rssKb[0]!);
    } catch (error) {
      process.exitCode = 1;
      return `rss sqlite, 1 worker: FAILED: ${failure(`rss ${size}`, error).split('\n')[0]}`;
    }
  }
  return rssLine(sizes, peaks);
}

function readSettings(): Settings {
  const backends = list('BENCH_BACKENDS', 'sqlite,postgres,bullmq').map((name) => {
    if (!(BACKENDS as readonly string[]).includes(name)) throw new Error(`BENCH_BACKENDS: unknown backend "${name}" (known: ${BACKENDS.join(', ')})`);
    return name as Backend;
  });
  return {
    backends,
    workers: list('BENCH_WORKERS', '1,2,4').map((value) => whole('BENCH_WORKERS', value, 1)),
    messages: whole('BENCH_MESSAGES', process.env.BENCH_MESSAGES ?? '20000', 1),
    enqueue: whole('BENCH_ENQUEUE', process.env.BENCH_ENQUEUE ?? '100000', 0),
    rounds: whole('BENCH_ROUNDS', process.env.BENCH_ROUNDS ?? '1', 1),
    concurrency: whole('BENCH_CONCURRENCY', process.env.BENCH_CONCURRENCY ?? '10', 1),
    rssSizes: process.env.BENCH_RSS === '1' ? list('BENCH_RSS_SIZES', '10000,100000').map((value) => whole('BENCH_RSS_SIZES', value, 1)) : undefined,
  };
}

/** The comma-separated values of `name`, each once, in order. */
function list(name: string, fallback: string): string[] {
  const values = [...new Set((process.env[name] || fallback).split(',').map((v) => v.trim()).filter(Boolean))];
  if (values.length === 0) throw new Error(`${name}: expected a comma-separated list`);
  return values;
}

function whole(name: string, value: string, min: number): number {
  const n = Number(value.replace(/_/g, ''));
  if (!Number.isInteger(n) || n < min) throw new Error(`${name}: expected a whole number >= ${min}, got "${value}"`);
  return n;
}

/** Prints a failure whole on stderr and returns its text. */
function failure(what: string, error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  process.stderr.write(`bench delivery: ${what} FAILED: ${text}\n`);
  return text;
}

function progress(message: string): void {
  process.stderr.write(`bench delivery: ${message}\n`);
}

function masked(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}
