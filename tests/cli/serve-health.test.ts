import { existsSync } from 'node:fs';
import SqliteDatabase from 'better-sqlite3';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startGazette, withTimeout, type Running } from '../helpers/cli.ts';
import { closedPort } from '../helpers/fault-edges.ts';
import { REPO_CONTENT_DIR, testServer, type TestServer } from '../helpers/server.ts';
import { openStore } from '../../src/store/database.ts';

// `gazette serve` whose database file disappears: a supervisor must see it (503, then exit 1),
// not a server answering from a file nobody can read.

const SLOW = 120_000;

describe('/healthz with the database file deleted (in process, real SQLite)', () => {
  let t: TestServer | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  /** A server whose database exists (made by a first /healthz), then deleted, and the file check due again. */
  async function serverWithDeletedDatabase(): Promise<TestServer> {
    t = await testServer();
    const ok = await t.server.inject({ method: 'GET', url: '/healthz' });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toEqual({ ok: true });
    await rm(path.join(t.dataDir, 'gazette.db'));
    // The file is looked at at most every 100 ms: let that pass, so the next query looks.
    await new Promise((resolve) => setTimeout(resolve, 150));
    return t;
  }

  it('answers 503 with ok false and the reason', async () => {
    const { server } = await serverWithDeletedDatabase();
    const response = await server.inject({ method: 'GET', url: '/healthz' });
    expect(response.statusCode).toBe(503);
    expect(response.json()).toMatchObject({ ok: false, error: expect.stringMatching(/^the database file .*gazette\.db was deleted while Gazette was running/) });
  });

  // The file check is throttled (one stat per 100 ms); once it finds the file gone, every later query
  // fails too, so /healthz never flips back to 200 and nothing lands in a file nobody can read.
  it('keeps answering 503 once the loss is known (it does not flip back to ok)', async () => {
    const { server } = await serverWithDeletedDatabase();
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await server.inject({ method: 'GET', url: '/healthz' })).statusCode);
    expect(statuses).toEqual([503, 503, 503, 503, 503]);
  });
});

describe('gazette serve with its database deleted', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('the process exits 1 with one clear line (its worker stops it), /healthz never answers anything but ok or 503, and no new database is made', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'gazette-serve-health-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const port = await closedPort();
    const run: Running = startGazette(['serve', '--port', String(port), '--host', '127.0.0.1'], {
      GAZETTE_DATA_DIR: dataDir,
      GAZETTE_CONTENT_DIR: REPO_CONTENT_DIR,
      GAZETTE_SECRET: 'test-secret-0123456789abcdef',
      BASE_URL: `http://127.0.0.1:${port}`,
    });
    cleanups.push(async () => {
      if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
      await run.done.catch(() => undefined);
    });
    let exited = false;
    void run.done.then(() => (exited = true), () => (exited = true));

    const url = `http://127.0.0.1:${port}/healthz`;
    const health = async (): Promise<{ status: number; body: { ok: boolean; error?: string } } | undefined> => {
      try {
        const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
        return { status: response.status, body: (await response.json()) as { ok: boolean; error?: string } };
      } catch {
        return undefined; // not listening (yet, or any more)
      }
    };
    // Up and healthy first.
    const deadline = Date.now() + 60_000;
    let first = await health();
    while (first?.status !== 200 && !exited && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      first = await health();
    }
    expect(first, 'serve answered /healthz').toEqual({ status: 200, body: { ok: true } });
    const file = path.join(dataDir, 'gazette.db');
    expect(existsSync(file)).toBe(true);

    await rm(file);
    // Asked now and then until the process is gone. Which answers come before it stops is a race
    // (the worker may notice first and stop the server): each is either from before the loss was
    // noticed, or the 503 naming the file; never an error page or a crash.
    const answers: { status: number; body: { ok: boolean; error?: string } }[] = [];
    const until = Date.now() + 60_000;
    while (!exited && Date.now() < until) {
      const answer = await health();
      if (answer) answers.push(answer);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    for (const answer of answers) {
      if (answer.status === 200) expect(answer.body).toEqual({ ok: true });
      else expect(answer).toMatchObject({ status: 503, body: { ok: false, error: expect.stringMatching(/gazette\.db was deleted while Gazette was running/) } });
    }

    const done = await withTimeout(run.done, SLOW, 'serve to stop after its database was deleted');
    expect(done.code).toBe(1);
    expect(done.stderr).toMatch(/^gazette: the database file .*gazette\.db was deleted while Gazette was running: stopped so that nothing more is recorded/m);
    // Nothing made a new, empty database in its place.
    expect(existsSync(file)).toBe(false);
  }, SLOW);

  // The scheduler starts after listen() and the worker: when it fails, serve must stop the server,
  // the worker and its signal handlers, or the process would keep serving with exit code 1 pending.
  it('a database error while the scheduler starts (after listen) ends the process with exit 1', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'gazette-serve-health-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const store = await openStore({ databaseUrl: undefined, dataDir, create: true });
    await store.close();
    // A database the scheduler cannot read (a table renamed by hand; a lock held past busy_timeout
    // or a file damaged at start-up fail the same statement the same way).
    const raw = new SqliteDatabase(path.join(dataDir, 'gazette.db'));
    raw.exec('alter table schedules rename to schedules_elsewhere');
    raw.close();
    const port = await closedPort();
    const run: Running = startGazette(['serve', '--port', String(port), '--host', '127.0.0.1'], {
      GAZETTE_DATA_DIR: dataDir,
      GAZETTE_CONTENT_DIR: REPO_CONTENT_DIR,
      GAZETTE_SECRET: 'test-secret-0123456789abcdef',
      BASE_URL: `http://127.0.0.1:${port}`,
    });
    cleanups.push(async () => {
      if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
      await run.done.catch(() => undefined);
    });
    let stderr = '';
    const errorLine = new Promise<void>((resolve) => {
      run.child.stderr!.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        if (/^gazette: /m.test(stderr)) resolve();
      });
      run.child.once('close', () => resolve());
    });
    await withTimeout(errorLine, 60_000, 'serve to report the failed start');
    expect(stderr).toMatch(/^gazette: .*schedules/m);
    // Once it has said it failed, it must be gone within a few seconds, exit 1.
    const done = await withTimeout(run.done, 3_000, 'serve to exit after reporting its failure');
    expect(done.code).toBe(1);
  }, SLOW);
});

