import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/database.ts';
import { sendWithBounces } from '../helpers/editions.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CONTENT_DIR = fileURLToPath(new URL('../../content', import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

let dataDir: string;

// Every run starts a Node process that loads the whole app through tsx: seconds each on a busy machine.
const SLOW = 180_000;

/** Runs `gazette subscribers …` in a child process over a throwaway data folder. */
function gazette(...args: string[]): Promise<Run> {
  return run('subscribers', ...args);
}

/** Runs the real CLI in a child process over a throwaway data folder. */
function run(...args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin/gazette.js'), ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, GAZETTE_DATA_DIR: dataDir, GAZETTE_CONTENT_DIR: CONTENT_DIR, BASE_URL: 'https://gazette.test' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

interface ListedSubscriber {
  id: number;
  email: string;
  name: string | null;
  status: string;
  lists: { slug: string; frequency: string }[];
  source: string;
  suppression: { reason: string; detail: string | null; since: string; edition: number | null } | null;
}

/** Sends an edition of dispatch to its active subscribers straight through the store, as a worker records it: `bounces` bounce. */
async function sendBouncing(bounces: string[], at: Date): Promise<number> {
  const store = await openStore({ databaseUrl: undefined, dataDir, create: false });
  try {
    return (await sendWithBounces(store.db, bounces, at)).editionId;
  } finally {
    await store.close();
  }
}

describe('gazette subscribers', () => {
  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'gazette-cli-'));
  });

  it('refuses to work on a database that is not there, saying how to make one, and creates none', async () => {
    const listed = await gazette('list', '--json');
    expect(listed.code).toBe(1);
    expect(listed.stderr).toMatch(/^gazette: no database at .*gazette\.db: run `gazette migrate` to create it/);
    expect(await readdir(dataDir)).toEqual([]);
    const migrated = await run('migrate');
    expect(migrated.code, migrated.stderr).toBe(0);
    expect(await readdir(dataDir)).toContain('gazette.db');
  }, SLOW);
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('adds subscribers: the id alone on stdout; a pending one gets a confirmation email; an existing address fails', async () => {
    const ann = await gazette('add', 'ann@example.com', '--name', 'Ann', '--confirmed');
    expect(ann).toMatchObject({ code: 0, stdout: '1\n' });

    const bob = await gazette('add', 'bob@example.com', '--list', 'weekly', '--frequency', 'weekly');
    expect(bob).toMatchObject({ code: 0, stdout: '2\n' });
    expect(bob.stderr).toContain('a confirmation email to bob@example.com is queued');
    const worker = await run('worker', '--exit-when-idle');
    expect(worker.code, worker.stderr).toBe(0);
    expect((await readdir(path.join(dataDir, 'outbox'))).filter((f) => f.endsWith('.eml'))).toHaveLength(1);

    const [again, bad] = await Promise.all([gazette('add', 'ANN@example.com'), gazette('add', 'not-an-email')]);
    expect(again.code).toBe(1);
    expect(again.stderr).toBe('gazette: already subscribed: ann@example.com (active)\n');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^gazette: email: "not-an-email" is not a valid email address\n$/);
  }, SLOW);

  it('lists them as stable JSON, filtered by status', async () => {
    const [all, pendingRun, wrong] = await Promise.all([
      gazette('list', '--json'),
      gazette('list', '--json', '--status', 'pending'),
      gazette('list', '--status', 'gone'),
    ]);
    expect(all.code).toBe(0);
    const listed = JSON.parse(all.stdout) as ListedSubscriber[];
    expect(listed.map((s) => [s.id, s.email, s.name, s.status, s.source])).toEqual([
      [1, 'ann@example.com', 'Ann', 'active', 'cli'],
      [2, 'bob@example.com', null, 'pending', 'cli'],
    ]);
    expect(listed[1]!.lists).toEqual([{ slug: 'weekly', frequency: 'weekly' }]);
    expect(Object.keys(listed[0]!).sort()).toEqual(['confirmed_at', 'created_at', 'email', 'events', 'id', 'lists', 'name', 'source', 'status', 'suppression']);
    expect(listed[0]!.suppression).toBeNull();

    const pending = JSON.parse(pendingRun.stdout) as ListedSubscriber[];
    expect(pending.map((s) => s.email)).toEqual(['bob@example.com']);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/^gazette: --status: expected one of/);
  }, SLOW);

  it('imports a CSV: bad rows named by line on stderr, the rest imported; says no email was sent', async () => {
    const file = path.join(dataDir, 'people.csv');
    await writeFile(file, 'Email,Name,Lists\ncat@example.com,Cat,dispatch;weekly:daily\nnot-an-email,Nobody,\nann@example.com,Ann again,\ndan@example.com,"Dan, Jr",\n');
    const run = await gazette('import', file);
    expect(run.code).toBe(0);
    expect(run.stderr).toBe('line 3: email: "not-an-email" is not a valid email address\n');
    expect(run.stdout).toContain('4 rows: 2 imported as pending, 1 already subscribed (unchanged), 0 suppressed (skipped), 1 invalid');
    expect(run.stdout).toContain('no confirmation email was sent');

    const again = await gazette('import', file, '--confirmed');
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('0 imported as active, 3 already subscribed');

    const allBad = path.join(dataDir, 'bad.csv');
    await writeFile(allBad, 'email\nnope\n');
    const broken = path.join(dataDir, 'broken.csv');
    await writeFile(broken, 'email,name\na@example.com,"open\n');
    const [failed, malformed, missing, help] = await Promise.all([
      gazette('import', allBad),
      gazette('import', broken),
      gazette('import', path.join(dataDir, 'nothing.csv')),
      gazette('import', '--help'),
    ]);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('line 2: email: "nope" is not a valid email address');
    expect(failed.stderr).toContain('gazette: bad.csv: no row could be imported (1 invalid)');

    expect(malformed.code).toBe(1);
    expect(malformed.stderr).toMatch(/^gazette: malformed CSV at line 2: a quoted value is never closed/);

    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/nothing\.csv: no such file/);

    expect(help.stdout.replace(/\s+/g, ' ')).toContain('--confirmed mark them active (confirmed) at once: use only for people whose consent');
  }, SLOW);

  it('exports CSV on stdout, all or one list', async () => {
    const [all, weeklyRun, unknown] = await Promise.all([gazette('export'), gazette('export', '--list', 'weekly'), gazette('export', '--list', 'nope')]);
    expect(all.code).toBe(0);
    const rows = parse(all.stdout, { columns: true }) as Record<string, string>[];
    expect(Object.keys(rows[0]!)).toEqual(['email', 'name', 'status', 'lists', 'created_at', 'confirmed_at', 'source']);
    expect(rows.map((r) => [r.email, r.name, r.status, r.lists])).toEqual([
      ['ann@example.com', 'Ann', 'active', 'dispatch:instant'],
      ['bob@example.com', '', 'pending', 'weekly:weekly'],
      ['cat@example.com', 'Cat', 'pending', 'dispatch:instant;weekly:daily'],
      ['dan@example.com', 'Dan, Jr', 'pending', 'dispatch:instant'],
    ]);
    const weekly = parse(weeklyRun.stdout, { columns: true }) as Record<string, string>[];
    expect(weekly.map((r) => r.email)).toEqual(['bob@example.com', 'cat@example.com']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe('gazette: --list: unknown list "nope" (known: dispatch, weekly)\n');
  }, SLOW);

  it('removes a subscriber for good; an unknown address fails', async () => {
    const removed = await gazette('remove', 'Bob@Example.com');
    expect(removed.code).toBe(0);
    expect(removed.stdout).toContain('removed bob@example.com');
    const [again, table] = await Promise.all([gazette('remove', 'bob@example.com'), gazette('list')]);
    expect(again.code).toBe(1);
    expect(again.stderr).toBe('gazette: no subscriber with the address bob@example.com\n');
    expect(table.stdout).not.toContain('bob@example.com');
    expect(table.stdout).toMatch(/^ID\s+EMAIL\s+STATUS\s+LISTS\s+NAME\n/);
    expect(table.stdout).toContain('3 subscribers\n');
  }, SLOW);

  it('imports nothing from a file malformed at its last line, naming the line; the fixed file then imports every row', async () => {
    const rows = Array.from({ length: 4_999 }, (_, i) => `bulk${i}@example.com,Bulk ${i}`).join('\n');
    const broken = path.join(dataDir, 'bulk-broken.csv');
    await writeFile(broken, `email,name\n${rows}\n"last@example.com,Last\n`);
    const refused = await gazette('import', broken);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe('gazette: malformed CSV at line 5001: a quoted value is never closed (nothing was imported)\n');
    expect(refused.stdout).toBe('');

    const fixed = path.join(dataDir, 'bulk-fixed.csv');
    await writeFile(fixed, `email,name\n${rows}\nlast@example.com,Last\n`);
    const imported = await gazette('import', fixed);
    expect(imported.code).toBe(0);
    // Every row is new: the refused import stored none of them.
    expect(imported.stdout).toContain('bulk-fixed.csv: 5000 rows: 5000 imported as pending, 0 already subscribed (unchanged)');
  }, SLOW);

  it('shows suppressions in list and lifts them by address or by edition; an address not suppressed fails naming it', async () => {
    // One after the other, so their ids (the listing's order) are known.
    expect((await gazette('add', 'eve@example.com', '--confirmed')).code).toBe(0);
    expect((await gazette('add', 'fay@example.com', '--confirmed')).code).toBe(0);
    const edition = await sendBouncing(['eve@example.com', 'fay@example.com'], new Date('2026-01-02T08:00:00Z'));

    const [json, table] = await Promise.all([gazette('list', '--json', '--status', 'bounced'), gazette('list', '--status', 'bounced')]);
    expect((JSON.parse(json.stdout) as ListedSubscriber[]).map((s) => [s.email, s.suppression]).sort()).toEqual([
      ['eve@example.com', { reason: 'bounced', detail: '550 5.7.1 relay access denied', since: '2026-01-02T08:00:00.000Z', edition }],
      ['fay@example.com', { reason: 'bounced', detail: '550 5.7.1 relay access denied', since: '2026-01-02T08:00:00.000Z', edition }],
    ]);
    expect(table.stdout).toMatch(/eve@example\.com\s+bounced\* /);
    expect(table.stdout).toContain('2 subscribers, 2 suppressed (marked *');

    const one = await gazette('unsuppress', 'Eve@Example.com', 'nobody@example.com');
    expect(one.stdout).toBe('lifted suppression of eve@example.com (bounced on 2026-01-02: 550 5.7.1 relay access denied); status now active\n');
    expect(one.stderr).toBe('gazette: nobody@example.com is not suppressed\n');
    expect(one.code).toBe(1);

    const [rest, unknown] = await Promise.all([gazette('unsuppress', '--edition', String(edition)), gazette('unsuppress', '--edition', '999')]);
    expect(rest).toMatchObject({
      code: 0,
      stdout: `edition ${edition}: lifted 1 suppression\nlifted suppression of fay@example.com (bounced on 2026-01-02: 550 5.7.1 relay access denied); status now active\n`,
    });
    expect(unknown).toMatchObject({ code: 1, stderr: 'gazette: no edition 999\n' });
    const after = JSON.parse((await gazette('list', '--json', '--status', 'active')).stdout) as ListedSubscriber[];
    expect(after.filter((s) => s.suppression !== null)).toEqual([]);
    expect(after.map((s) => s.email)).toEqual(['ann@example.com', 'eve@example.com', 'fay@example.com']);
  }, SLOW);
});
