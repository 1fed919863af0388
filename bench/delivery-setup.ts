// What happens in the bench's own process around a delivery run: the build the workers run,
// the environment they get, the subscribers and the edition, and what the ledger says afterwards.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createApp, type App } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { sampleMessage } from '../src/edition/write-preview.ts';
import type { DeliveryCounts } from '../src/model/delivery.ts';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** The list the synthetic subscribers are on (content/site.yaml's first). */
const LIST = 'dispatch';
const INSERT_BATCH = 5000;

/** `npm run build`: the workers run the compiled dist/, as in production. */
export async function buildDist(): Promise<void> {
  await promisify(execFile)('npm', ['run', 'build', '--silent'], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
}

/**
 * Whether bin/gazette.js would run dist/ (its stamp newer than every file in src/) rather than
 * fall back to tsx: src/ may change while the bench runs.
 */
export function distIsCurrent(): boolean {
  const stamp = path.join(ROOT, 'dist', '.built');
  return existsSync(stamp) && statSync(stamp).mtimeMs >= newestIn(path.join(ROOT, 'src'));
}

function newestIn(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestIn(full) : statSync(full).mtimeMs);
  }
  return newest;
}

/** Where one mode's Gazette keeps its state. */
export interface StoreSettings {
  dataDir: string;
  /** Unset: the SQLite file in dataDir. */
  databaseUrl?: string;
  redisUrl?: string;
  redisPrefix?: string;
}

/**
 * The environment of every Gazette process of one mode. Nothing Gazette reads is inherited from
 * the bench's own environment (a DATABASE_URL there must not turn the SQLite mode into Postgres).
 */
export function gazetteEnv(store: StoreSettings, smtpPort: number, concurrency: number): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^(GAZETTE_|DKIM_|DATABASE_URL$|REDIS_URL$|SMTP_URL$|BASE_URL$|PORT$|LOG_LEVEL$)/.test(key)) env[key] = value;
  }
  return {
    ...env,
    GAZETTE_DATA_DIR: store.dataDir,
    GAZETTE_CONTENT_DIR: path.join(ROOT, 'content'),
    GAZETTE_TEMPLATES_DIR: path.join(ROOT, 'templates'),
    GAZETTE_SECRET: 'bench-secret-0123456789abcdef',
    SMTP_URL: `smtp://127.0.0.1:${smtpPort}`,
    GAZETTE_RATE: '1000000',
    GAZETTE_CONCURRENCY: String(concurrency),
    ...(store.databaseUrl ? { DATABASE_URL: store.databaseUrl } : {}),
    ...(store.redisUrl ? { REDIS_URL: store.redisUrl, GAZETTE_REDIS_PREFIX: store.redisPrefix ?? 'gazette' } : {}),
  };
}

/** One edition, enqueued and ready for the workers. */
export interface PreparedEdition {
  editionId: number;
  /** How long `app.editions.send(id)` took, subscribers already inserted. */
  enqueueMs: number;
  /** Bytes of one message of the edition as a worker sends it (signed, personalized). */
  messageBytes: number;
  /** The edition's envelope sender. */
  sender: string;
}

/**
 * Inserts `recipients` active subscribers of `dispatch` (not timed), makes a digest edition from
 * content/, and times `app.editions.send(id)` alone. The app is closed before returning.
 */
export async function prepareEdition(env: NodeJS.ProcessEnv, recipients: number): Promise<PreparedEdition> {
  return withApp(env, async (app) => {
    await insertSubscribers(app, recipients);
    const { edition } = await app.editions.create({ list: LIST, digest: true });
    const started = performance.now();
    const sent = await app.editions.send(edition.id);
    const enqueueMs = performance.now() - started;
    if (sent.added !== recipients || sent.queued !== recipients) {
      throw new Error(`app.editions.send(${edition.id}) added ${sent.added} and queued ${sent.queued} of ${recipients} subscribers`);
    }
    const site = edition.origin ?? (await app.content()).site;
    const list = edition.origin?.list ?? (await app.content()).site.lists.find((l) => l.slug === LIST)!;
    const id = Math.max(1, Math.floor(recipients / 2));
    const { raw } = sampleMessage(await app.adapters.tokens(), site, list, edition.compiled, app.now(), { id, email: `reader${id}@bench.example.org`, name: `Reader ${id}` }, {});
    const signed = await (await app.adapters.signMessage())(raw);
    return { editionId: edition.id, enqueueMs, messageBytes: Buffer.byteLength(signed), sender: site.sender.address };
  });
}

async function insertSubscribers(app: App, count: number): Promise<void> {
  const repo = await app.adapters.subscribers();
  const now = app.now();
  for (let i = 0; i < count; i += INSERT_BATCH) {
    const batch = Array.from({ length: Math.min(INSERT_BATCH, count - i) }, (_, j) => {
      const n = i + j;
      const email = `reader${n}@bench.example.org`;
      return { email, emailKey: email, name: n % 3 ? `Reader ${n}` : null, status: 'active' as const, source: 'bench', consentIp: null, lists: [{ slug: LIST, frequency: 'instant' as const }] };
    });
    await repo.insertMany(batch, now);
  }
}

/** What the ledger says of an edition once the workers are done. */
export interface LedgerSpan {
  counts: DeliveryCounts;
  /** Earliest and latest sent_at, epoch ms (NaN when nothing was sent). */
  first: number;
  last: number;
  /** Messages recorded at the very first sent_at (one group commit): sent before the span starts. */
  atFirst: number;
}

/** The edition's counts by status and the span of its sent_at stamps. */
export async function readLedger(env: NodeJS.ProcessEnv, editionId: number): Promise<LedgerSpan> {
  return withApp(env, async (app) => {
    const counts = await (await app.adapters.deliveries()).counts(editionId);
    const { db } = await app.adapters.store();
    const span = await db
      .selectFrom('deliveries')
      .select((eb) => [eb.fn.min('sent_at').as('first'), eb.fn.max('sent_at').as('last')])
      .where('edition_id', '=', editionId)
      .where('status', '=', 'sent')
      .executeTakeFirstOrThrow();
    const first = span.first === null ? NaN : Date.parse(String(span.first));
    let atFirst = 0;
    if (span.first !== null) {
      const row = await db
        .selectFrom('deliveries')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('edition_id', '=', editionId)
        .where('status', '=', 'sent')
        .where('sent_at', '=', span.first)
        .executeTakeFirstOrThrow();
      atFirst = Number(row.n);
    }
    return { counts, first, last: span.last === null ? NaN : Date.parse(String(span.last)), atFirst };
  });
}

async function withApp<T>(env: NodeJS.ProcessEnv, fn: (app: App) => Promise<T>): Promise<T> {
  const app = createApp(loadConfig(env));
  try {
    return await fn(app);
  } finally {
    await app.close();
  }
}
