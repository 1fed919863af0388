import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { onTestFinished } from 'vitest';
import { createApp, type App } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import type { Frequency } from '../../src/model/subscriber.ts';
import { startGazette, withTimeout, type Finished } from './cli.ts';
import { GOLDEN_DIR, storyFile, tempContentDir, TEMPLATES_DIR } from './content-dir.ts';
import { startSmtpRecorder, type RecordedMessage, type SmtpRecorder, type SmtpRecorderOptions } from './smtp-recorder.ts';

// Shared by tests/scale/: real `gazette` processes (workers, schedulers) over one database, one
// queue and in-process SMTP recorders, and everything a test needs to tear them down again.
// No import of databases.ts here: the SQLite-only suite must load where Postgres is absent.

export const SCALE_SECRET = 'scale-test-secret-0123456789abcdef';

/** Paths that exist nowhere: a worker "on another machine" has no content/ and no templates/. */
export const NO_CONTENT_DIR = path.join(os.tmpdir(), 'gazette-scale-no-such-content-dir', 'content');
export const NO_TEMPLATES_DIR = path.join(os.tmpdir(), 'gazette-scale-no-such-templates-dir', 'templates');

/**
 * What one test made and must throw away, torn down in reverse order after the test whether it
 * passed or not (vitest's onTestFinished): child processes first, then apps, servers, databases,
 * Redis keys and folders. Every step runs even when an earlier one throws; the first error is rethrown.
 */
export class Scope {
  private readonly steps: { what: string; run: () => Promise<unknown> }[] = [];

  /** Registers a clean-up step. */
  defer(what: string, run: () => Promise<unknown>): void {
    this.steps.push({ what, run });
  }

  async close(): Promise<void> {
    const errors: Error[] = [];
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step.run();
      } catch (error) {
        errors.push(new Error(`clean-up "${step.what}" failed: ${(error as Error).message}`, { cause: error }));
      }
    }
    if (errors.length > 0) throw errors[0];
  }
}

/** A Scope closed after the current test, passed or failed. */
export function testScope(): Scope {
  const scope = new Scope();
  onTestFinished(() => scope.close(), 120_000);
  return scope;
}

/** A running `gazette …` child whose stderr can be waited on while it runs. */
export interface GazetteProcess {
  name: string;
  child: ChildProcess;
  done: Promise<Finished>;
  /** stderr so far. */
  stderr(): string;
  alive(): boolean;
  /** Resolves when stderr has a line matching `pattern`; rejects if the process ends first or after `timeoutMs`. */
  waitForStderr(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** SIGTERM, and its end (rejected after `timeoutMs`, the process then SIGKILLed). */
  stop(timeoutMs?: number): Promise<Finished>;
}

/** Starts `gazette ARGS` with exactly `env`; SIGKILLed (and waited for) when the scope closes if still running. */
export function spawnGazette(scope: Scope, name: string, args: string[], env: Record<string, string>): GazetteProcess {
  const run = startGazette(args, env);
  let stderr = '';
  const listeners = new Set<() => void>();
  run.child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    for (const listener of [...listeners]) listener();
  });
  let ended = false;
  const done = run.done.finally(() => {
    ended = true;
    for (const listener of [...listeners]) listener();
  });
  done.catch(() => {});
  const alive = () => !ended && run.child.exitCode === null && run.child.signalCode === null;
  const handle: GazetteProcess = {
    name,
    child: run.child,
    done,
    stderr: () => stderr,
    alive,
    waitForStderr(pattern, timeoutMs = 60_000) {
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (pattern.test(stderr)) {
            finish();
            resolve();
          } else if (ended) {
            finish();
            reject(new Error(`${name} ended before printing ${pattern}:\n${stderr}`));
          }
        };
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`${name}: no ${pattern} on stderr after ${timeoutMs} ms:\n${stderr}`));
        }, timeoutMs);
        const finish = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
    stop(timeoutMs = 30_000) {
      if (alive()) run.child.kill('SIGTERM');
      return withTimeout(done, timeoutMs, `${name} after SIGTERM`, () => run.child.kill('SIGKILL'));
    },
  };
  scope.defer(`stop ${name}`, async () => {
    if (alive()) run.child.kill('SIGKILL');
    await withTimeout(done, 20_000, `${name} after SIGKILL`).catch(() => {});
  });
  return handle;
}

/** Polls `condition` until it holds (every `intervalMs`); rejects with `what` and the last `describe()` after `timeoutMs`. */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  { timeoutMs, what, intervalMs = 100, describe }: { timeoutMs: number; what: string; intervalMs?: number; describe?: () => string | Promise<string> },
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() >= deadline) throw new Error(`${what}: not after ${timeoutMs} ms${describe ? ` (${await describe()})` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, Math.min(intervalMs, Math.max(1, deadline - Date.now()))));
  }
}

/** An SMTP recorder closed with the scope. */
export async function scopedRecorder(scope: Scope, options: SmtpRecorderOptions = {}): Promise<SmtpRecorder> {
  const recorder = await startSmtpRecorder(options);
  scope.defer(`close SMTP recorder :${recorder.port}`, () => recorder.close());
  return recorder;
}

/**
 * A content folder of the test's own: the golden site.yaml (with `site` replacements applied to
 * its text), the golden story and a few more, all published. Removed with the scope.
 */
export async function scopedContent(scope: Scope, site: [from: string, to: string][] = []): Promise<string> {
  const dir = await tempContentDir(
    {
      'harbour-cranes.md': storyFile({ title: '"Harbour cranes return to work"', date: '2025-07-02T08:00:00+02:00' }),
      'rail-link.md': storyFile({ title: '"The rail link opens"', date: '2025-07-03T08:00:00+02:00', tags: '[Transport]' }),
    },
    { withGolden: true },
  );
  scope.defer(`remove ${dir}`, () => rm(dir, { recursive: true, force: true }));
  if (site.length > 0) {
    let text = await readFile(path.join(GOLDEN_DIR, 'site.yaml'), 'utf8');
    for (const [from, to] of site) {
      if (!text.includes(from)) throw new Error(`site.yaml has no ${from}`);
      text = text.replaceAll(from, to);
    }
    await writeFile(path.join(dir, 'site.yaml'), text);
  }
  return dir;
}

/** A temp folder removed with the scope. */
export async function scopedTempDir(scope: Scope, prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  scope.defer(`remove ${dir}`, () => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** The environment of a `gazette` process (or the test's own App) over one database. */
export function gazetteEnv(base: { dataDir: string; contentDir: string; databaseUrl?: string | undefined; templatesDir?: string }, extra: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string | undefined> = {
    GAZETTE_DATA_DIR: base.dataDir,
    GAZETTE_CONTENT_DIR: base.contentDir,
    GAZETTE_TEMPLATES_DIR: base.templatesDir ?? TEMPLATES_DIR,
    GAZETTE_SECRET: SCALE_SECRET,
    DATABASE_URL: base.databaseUrl,
    ...extra,
  };
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
}

/** The test's own App over `env` (it migrates the database on first use), closed with the scope. */
export function scopedApp(scope: Scope, env: Record<string, string>): App {
  const app = createApp(loadConfig(env));
  scope.defer('close the App', () => app.close());
  return app;
}

/** `reader1@example.com` … `readerN@example.com`. */
export const readerEmails = (n: number): string[] => Array.from({ length: n }, (_, i) => `reader${i + 1}@example.com`);

/** Inserts `n` active readers subscribed to `lists`, a thousand per statement. */
export async function seedReaders(app: App, n: number, lists: string[] = ['dispatch'], frequency: Frequency = 'weekly'): Promise<void> {
  const repo = await app.adapters.subscribers();
  const emails = readerEmails(n);
  for (let start = 0; start < n; start += 1_000) {
    const batch = emails.slice(start, start + 1_000).map((email) => ({
      email,
      emailKey: email,
      name: null,
      status: 'active' as const,
      source: 'test',
      consentIp: null,
      lists: lists.map((slug) => ({ slug, frequency })),
    }));
    const added = await repo.insertMany(batch, new Date());
    if (added !== batch.length) throw new Error(`inserted ${added} of ${batch.length} readers`);
  }
}

/** One delivery of the ledger. */
export interface LedgerRow {
  id: number;
  subscriber_id: number;
  status: string;
  attempts: number;
}

/** An edition's deliveries, straight from the deliveries table. */
export async function ledgerRows(app: App, editionId: number): Promise<LedgerRow[]> {
  const db = (await app.adapters.store()).db;
  const rows = await db.selectFrom('deliveries').select(['id', 'subscriber_id', 'status', 'attempts']).where('edition_id', '=', editionId).orderBy('id').execute();
  return rows.map((r) => ({ id: Number(r.id), subscriber_id: Number(r.subscriber_id), status: r.status, attempts: Number(r.attempts) }));
}

/** What a ledger looks like: how many rows of each status and attempts, e.g. `{ 'sent/1': 5000 }`. */
export function ledgerShape(rows: readonly LedgerRow[]): Record<string, number> {
  const shape: Record<string, number> = {};
  for (const row of rows) shape[`${row.status}/${row.attempts}`] = (shape[`${row.status}/${row.attempts}`] ?? 0) + 1;
  return shape;
}

/** Every message of several recorders, with the index of the recorder (the worker) that took it. */
export function allMessages(recorders: readonly SmtpRecorder[]): (RecordedMessage & { by: number })[] {
  return recorders.flatMap((recorder, by) => recorder.messages.map((message) => ({ ...message, by })));
}

/** How many messages each recipient got, over several recorders. */
export function copiesByRecipient(messages: readonly RecordedMessage[]): Map<string, number> {
  const copies = new Map<string, number>();
  for (const message of messages) for (const rcpt of message.rcpt) copies.set(rcpt, (copies.get(rcpt) ?? 0) + 1);
  return copies;
}

/** The delivery and edition a message is for, from its Message-ID `<d<delivery>.e<edition>@…>`. */
export function messageKeyOf(message: RecordedMessage): { deliveryId: number; editionId: number } {
  const match = /^Message-ID: <d(\d+)\.e(\d+)@/m.exec(message.raw);
  if (!match) throw new Error(`no Gazette Message-ID in a message to ${message.rcpt.join(', ')}`);
  return { deliveryId: Number(match[1]), editionId: Number(match[2]) };
}

/** One `worker:` line per event from a worker's stderr that is not routine (errors, lost leases, retries). */
export function workerTrouble(stderr: string): string[] {
  return stderr.split('\n').filter((line) => line.startsWith('worker: ') && !/^worker: (sending through|finished|stopping after)/.test(line));
}
