import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';
import { createApp, type App, type WorkerSettings } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { createEdition } from '../../src/edition/create-edition.ts';
import { enqueueEdition } from '../../src/edition/enqueue-edition.ts';
import { storyFile, tempContentDir, TEMPLATES_DIR } from './content-dir.ts';
import { startSmtpRecorder, type SmtpRecorder, type SmtpRecorderOptions } from './smtp-recorder.ts';

// Shared by the delivery suites: an App sending to an in-process SMTP server, over throwaway folders.

export const SECRET = 'test-secret-0123456789abcdef';
export const SENDER = 'newsletter@gazette.example.org';
export const BASE_URL = 'https://gazette.example.org';

/** Small delays so retries happen within a test; the App's clock is real time. */
export const FAST: WorkerSettings = {
  retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 50 },
  pollMs: 20,
  concurrency: 5,
  rate: 1000,
};

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Runs `cleanup` after the current test, with the folders and servers setup() made. */
export function afterThisTest(cleanup: () => Promise<void>): void {
  cleanups.push(cleanup);
}

/** What setup() made. */
export interface Setup {
  app: App;
  recorder: SmtpRecorder;
  dataDir: string;
  contentDir: string;
  /** The environment the App was configured from (for CLI runs over the same folders). */
  env: Record<string, string>;
  /** Another App over the same data dir and recorder (a second process, in effect). */
  anotherApp(): App;
}

/** Fresh data dir, content (golden story plus two plain ones), a recorder, and an App sending to it. */
export async function setup(options: { recorder?: SmtpRecorderOptions; smtpUrl?: (recorder: SmtpRecorder) => string; env?: Record<string, string> } = {}): Promise<Setup> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'gazette-smtp-'));
  const contentDir = await tempContentDir(
    {
      'harbour-cranes.md': storyFile({ title: '"Harbour cranes return to work"', date: '2025-07-02T08:00:00+02:00' }),
      'rail-link.md': storyFile({ title: '"The rail link opens"', date: '2025-07-03T08:00:00+02:00', tags: '[Transport]' }),
    },
    { withGolden: true },
  );
  const recorder = await startSmtpRecorder(options.recorder);
  const env: Record<string, string> = {
    GAZETTE_CONTENT_DIR: contentDir,
    GAZETTE_DATA_DIR: dataDir,
    GAZETTE_TEMPLATES_DIR: TEMPLATES_DIR,
    GAZETTE_SECRET: SECRET,
    SMTP_URL: options.smtpUrl ? options.smtpUrl(recorder) : recorder.url,
    ...options.env,
  };
  const apps: App[] = [];
  const make = () => {
    const app = createApp(loadConfig(env));
    apps.push(app);
    return app;
  };
  const app = make();
  cleanups.push(async () => {
    for (const a of apps) await a.close();
    await recorder.close();
    await rm(dataDir, { recursive: true, force: true });
    await rm(contentDir, { recursive: true, force: true });
  });
  return { app, recorder, dataDir, contentDir, env, anotherApp: make };
}

/** Inserts active `dispatch` subscribers; returns their ids by (lower-cased) address. */
export async function addSubscribers(app: App, people: { email: string; name?: string }[]): Promise<Map<string, number>> {
  const repo = await app.adapters.subscribers();
  await repo.insertMany(
    people.map((p) => ({
      email: p.email,
      emailKey: p.email.toLowerCase(),
      name: p.name ?? null,
      status: 'active' as const,
      source: 'test',
      consentIp: null,
      lists: [{ slug: 'dispatch', frequency: 'weekly' as const }],
    })),
    new Date(),
  );
  const rows = await (await app.adapters.store()).db.selectFrom('subscribers').select(['id', 'email_key']).execute();
  return new Map(rows.map((r) => [r.email_key, r.id]));
}

/** `n` readers of the list, some named (some in Cyrillic), some not. */
export const readers = (n: number, prefix = 'reader') =>
  Array.from({ length: n }, (_, i) => ({ email: `${prefix}${i + 1}@example.com`, name: i % 3 === 0 ? undefined : i % 3 === 1 ? `Reader ${i + 1}` : `Олена ${i + 1}` }));

/** Creates a digest edition for `dispatch` and enqueues it; returns its id. */
export async function sendDigest(app: App): Promise<number> {
  const { id } = await createEdition(
    { content: await app.content(), templates: await app.adapters.emailTemplates(), editions: await app.adapters.editions(), now: app.now() },
    { list: 'dispatch', digest: true },
  );
  await enqueue(app, id);
  return id;
}

/** Sends (enqueues) an edition as `gazette send` does. */
export async function enqueue(app: App, id: number) {
  return enqueueEdition({ editions: await app.adapters.editions(), deliveries: await app.adapters.deliveries(), queue: await app.adapters.queue(), now: app.now }, id);
}

/** Runs a worker until the edition has no queued delivery left (or 60 s pass). */
export async function deliverAll(app: App, editionId: number, options: WorkerSettings = FAST): Promise<void> {
  const worker = await app.worker(options);
  const deliveries = await app.adapters.deliveries();
  await worker.run({ signal: AbortSignal.timeout(60_000), stopWhenIdle: async () => (await deliveries.counts(editionId)).queued === 0 });
}

/** One delivery of the ledger, as the tests read it. */
export interface LedgerRow {
  id: number;
  subscriber_id: number;
  status: string;
  attempts: number;
  last_error: string | null;
}

/** An edition's deliveries by subscriber id. */
export async function ledger(app: App, editionId: number): Promise<Map<number, LedgerRow>> {
  const rows = await (await app.adapters.store()).db
    .selectFrom('deliveries')
    .select(['id', 'subscriber_id', 'status', 'attempts', 'last_error'])
    .where('edition_id', '=', editionId)
    .execute();
  return new Map(rows.map((r) => [r.subscriber_id, r]));
}

