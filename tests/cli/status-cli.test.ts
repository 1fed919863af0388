import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatRecent, watchStatus } from '../../src/cli/commands/send.ts';
import type { EditionStatusReport } from '../../src/edition/edition-status.ts';
import type { EditionSummary } from '../../src/model/edition.ts';
import { recentEditions, type RecentEdition } from '../../src/edition/recent-editions.ts';
import { openStore, type Store } from '../../src/store/database.ts';
import { DeliveriesRepo } from '../../src/store/deliveries-repo.ts';
import { EditionsRepo } from '../../src/store/editions-repo.ts';
import { SubscribersRepo } from '../../src/store/subscribers-repo.ts';
import { gazette, startGazette, withTimeout } from '../helpers/cli.ts';
import { REPO_CONTENT_DIR } from '../helpers/server.ts';
import { insertTestEdition, sendWithBounces } from '../helpers/editions.ts';

// Every run starts a Node process that loads the whole app through tsx: seconds each on a busy machine.
const SLOW = 180_000;
const AT = new Date('2026-03-02T09:00:00Z');

/** A status report as editionStatus makes it; override what the test is about. */
function report(fields: Partial<EditionStatusReport>): EditionStatusReport {
  return {
    id: 7, list: 'dispatch', subject: 'Hello', status: 'sending', total: 10, queued: 10, sending: 0, sent: 0, failed: 0, bounced: 0, skipped: 0,
    cameBack: { hardBounces: 0, softBounces: 0, complaints: 0, unsubscribes: 0 }, rate: 0, etaSeconds: null, stalled: false, lastError: null, pauseKind: null, resumeAt: null, enqueuedAt: null, completedAt: null,
    ...fields,
  };
}

describe('watchStatus', () => {
  it('reads again after each interval until the edition is no longer sending, and returns the last report', async () => {
    const reports = [report({ queued: 10 }), report({ queued: 4, sent: 6 }), report({ status: 'sent', queued: 0, sent: 10 })];
    const slept: number[] = [];
    const heard: EditionStatusReport[] = [];
    const last = await watchStatus(async () => reports.shift()!, { intervalMs: 1000, sleep: async (ms) => void slept.push(ms), onReport: (r) => heard.push(r) });
    expect(last.status).toBe('sent');
    expect(heard.map((r) => r.sent)).toEqual([0, 6, 10]);
    expect(slept).toEqual([1000, 1000]);
  });

  it('reads once when the edition is not sending (draft, paused, done)', async () => {
    let reads = 0;
    const last = await watchStatus(async () => (reads++, report({ status: 'paused', pauseKind: 'outage' })), { sleep: async () => {}, onReport: () => {} });
    expect(last.pauseKind).toBe('outage');
    expect(reads).toBe(1);
  });

  it('stops when the signal aborts (Ctrl-C), returning what it read last', async () => {
    const controller = new AbortController();
    let reads = 0;
    const last = await watchStatus(async () => report({ sent: ++reads }), {
      signal: controller.signal,
      sleep: async () => {
        if (reads === 3) controller.abort();
      },
      onReport: () => {},
    });
    expect(reads).toBe(3);
    expect(last).toMatchObject({ status: 'sending', sent: 3 });
  });
});

describe('recentEditions and formatRecent', () => {
  const row = (id: number, fields: Partial<EditionSummary> = {}): EditionSummary => ({
    id, listSlug: 'dispatch', kind: 'story', audience: 'all', subject: `Edition ${id}`, preheader: '', storySlugs: [], htmlBytes: 1,
    coversUntil: AT.toISOString(), status: 'sent', lastError: null, createdAt: `2026-03-0${id}T09:00:00.000Z`, enqueuedAt: null,
    completedAt: null, scheduleId: null, pauseKind: null, resumeAt: null, outagePauses: 0, audienceClosedAt: null, ...fields,
  });

  it('gives each edition its sent and total counts, the pause kind only when paused', async () => {
    const asked: number[] = [];
    const editions = {
      list: async (limit?: number) => (asked.push(limit!), [row(2, { status: 'paused', pauseKind: 'refused' }), row(1, { pauseKind: 'outage', completedAt: '2026-03-01T10:00:00.000Z' })]),
    };
    const counts = { 2: { queued: 3, sent: 1, failed: 0, bounced: 1, skipped: 0, sending: 1 }, 1: { queued: 0, sent: 5, failed: 1, bounced: 0, skipped: 2, sending: 0 } };
    const deliveries = { counts: async (id: number) => counts[id as 1 | 2] };
    const recent = await recentEditions({ editions, deliveries });
    expect(asked).toEqual([20]);
    expect(recent).toEqual([
      { id: 2, list: 'dispatch', kind: 'story', subject: 'Edition 2', status: 'paused', pauseKind: 'refused', sent: 1, total: 5, createdAt: '2026-03-02T09:00:00.000Z', completedAt: null },
      { id: 1, list: 'dispatch', kind: 'story', subject: 'Edition 1', status: 'sent', pauseKind: null, sent: 5, total: 8, createdAt: '2026-03-01T09:00:00.000Z', completedAt: '2026-03-01T10:00:00.000Z' },
    ]);
  });

  it('prints one edition a line under a header, subject last', () => {
    const editions: RecentEdition[] = [
      { id: 12, list: 'weekly', kind: 'digest', subject: 'Week 12', status: 'paused', pauseKind: 'outage', sent: 40, total: 120, createdAt: '2026-03-02T09:00:00.000Z', completedAt: null },
      { id: 3, list: 'dispatch', kind: 'story', subject: 'Tom & Jerry', status: 'sent', pauseKind: null, sent: 2, total: 2, createdAt: '2026-03-01T09:00:00.000Z', completedAt: '2026-03-01T09:01:00.000Z' },
    ];
    expect(formatRecent(editions)).toBe(
      [
        'ID  LIST      KIND    STATUS           SENT/TOTAL  CREATED               COMPLETED             SUBJECT',
        '12  weekly    digest  paused (outage)      40/120  2026-03-02T09:00:00Z  -                     Week 12',
        ' 3  dispatch  story   sent                    2/2  2026-03-01T09:00:00Z  2026-03-01T09:01:00Z  Tom & Jerry',
        '',
      ].join('\n'),
    );
    expect(formatRecent([])).toBe('no editions yet (make one with gazette edition create)\n');
  });
});

describe('gazette status (CLI)', () => {
  let dataDir: string;
  let env: Record<string, string>;
  let ids: { sent: number; draft: number; paused: number };

  /** Runs `fn` over the CLI's database, closing it afterwards. */
  const withStore = async <T>(fn: (store: Store) => Promise<T>): Promise<T> => {
    const store = await openStore({ databaseUrl: undefined, dataDir, create: false });
    try {
      return await fn(store);
    } finally {
      await store.close();
    }
  };

  /** A `dispatch` edition with a delivery queued for every mailable subscriber (cat bounced: not her), marked sending. */
  const sendingEdition = (store: Store) =>
    insertTestEdition(store.db, AT).then(async (id) => {
      await new DeliveriesRepo(store.db).addBatch({ id, listSlug: 'dispatch', audience: 'all' }, 0, 100, AT);
      await new EditionsRepo(store.db).setStatus(id, 'sending', AT);
      return id;
    });

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'gazette-status-'));
    env = { GAZETTE_DATA_DIR: dataDir, GAZETTE_CONTENT_DIR: REPO_CONTENT_DIR, GAZETTE_SECRET: 'test-secret-0123456789abcdef', BASE_URL: 'https://gazette.test' };
    const migrated = await gazette(['migrate'], env);
    expect(migrated.code, migrated.stderr).toBe(0);
    ids = await withStore(async (store) => {
      await new SubscribersRepo(store.db).insertMany(
        ['ann', 'bob', 'cat'].map((name) => ({ email: `${name}@example.com`, emailKey: `${name}@example.com`, name: null, status: 'active' as const, source: 'test', consentIp: null, lists: [{ slug: 'dispatch', frequency: 'instant' as const }] })),
        AT,
      );
      const editions = new EditionsRepo(store.db, () => AT);
      const { editionId: sent } = await sendWithBounces(store.db, ['cat@example.com'], AT);
      await editions.setStatus(sent, 'sending', AT);
      await editions.finish(sent);
      const draft = await insertTestEdition(store.db, AT);
      const paused = await sendingEdition(store);
      await editions.pause(paused, 'outage', '421 4.3.2 try again later');
      return { sent, draft, paused };
    });
  }, SLOW);
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('without an id lists the newest editions, newest first, with the pause kind and sent/total', async () => {
    const [text, json] = await Promise.all([gazette(['status'], env), gazette(['status', '--json'], env)]);
    expect(text.code, text.stderr).toBe(0);
    const lines = text.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID +LIST +KIND +STATUS +SENT\/TOTAL +CREATED +COMPLETED +SUBJECT$/);
    expect(lines.slice(1).map((line) => line.trim().split(/\s{2,}/))).toEqual([
      [String(ids.paused), 'dispatch', 'story', 'paused (outage)', '0/2', '2026-03-02T09:00:00Z', '-', 'Test edition'],
      [String(ids.draft), 'dispatch', 'story', 'draft', '0/0', '2026-03-02T09:00:00Z', '-', 'Test edition'],
      [String(ids.sent), 'dispatch', 'story', 'sent', '2/3', '2026-03-02T09:00:00Z', '2026-03-02T09:00:00Z', 'Test edition'],
    ]);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual([
      { id: ids.paused, list: 'dispatch', kind: 'story', subject: 'Test edition', status: 'paused', pauseKind: 'outage', sent: 0, total: 2, createdAt: AT.toISOString(), completedAt: null },
      { id: ids.draft, list: 'dispatch', kind: 'story', subject: 'Test edition', status: 'draft', pauseKind: null, sent: 0, total: 0, createdAt: AT.toISOString(), completedAt: null },
      { id: ids.sent, list: 'dispatch', kind: 'story', subject: 'Test edition', status: 'sent', pauseKind: null, sent: 2, total: 3, createdAt: AT.toISOString(), completedAt: AT.toISOString() },
    ]);
  }, SLOW);

  it('with an id keeps its exit codes: 1 with the reason when paused, 0 when sent; --watch needs an id', async () => {
    const [paused, sent, watchAll] = await Promise.all([gazette(['status', String(ids.paused)], env), gazette(['status', String(ids.sent)], env), gazette(['status', '--watch'], env)]);
    expect(paused.code).toBe(1);
    expect(paused.stdout).toContain('status:  paused (outage');
    expect(paused.stderr).toMatch(/^gazette: edition \d+ is paused by an outage: 421 4\.3\.2 try again later/);
    expect(sent.code, sent.stderr).toBe(0);
    expect(sent.stdout).toContain('status:  sent');
    expect(watchAll).toMatchObject({ code: 1, stderr: 'gazette: --watch follows one edition: gazette status ID --watch\n' });
  }, SLOW);

  it('--watch prints the status until the edition is no longer sending, then exits by the same rules', async () => {
    const id = await withStore(sendingEdition);
    const run = startGazette(['status', String(id), '--watch'], env);
    let stdout = '';
    const firstBlock = new Promise<void>((resolve) =>
      run.child.stdout!.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        if (stdout.includes('status:  sending')) resolve();
      }),
    );
    await withTimeout(firstBlock, SLOW, 'the first status block');
    // While it watches, a worker delivers everything: the next read (within a second) sees it sent.
    await withStore(async (store) => {
      const deliveries = new DeliveriesRepo(store.db);
      const { claimed } = await deliveries.claim(await deliveries.queuedIds(id, 0, 100), 'test-worker', 60_000);
      await deliveries.record(claimed.map((d) => ({ deliveryId: d.id, claim: 'test-worker', outcome: { status: 'sent' as const } })));
      expect(await new EditionsRepo(store.db).finish(id)).toBe('sent');
    });
    const done = await withTimeout(run.done, 30_000, 'gazette status --watch', () => run.child.kill('SIGKILL'));
    expect(done.code, done.stderr).toBe(0);
    const blocks = done.stdout.split('\n\n');
    expect(blocks[0]).toContain('status:  sending');
    expect(blocks.at(-1)).toContain('status:  sent');
    expect(blocks.at(-1)).toContain('total 2 · queued 0 · sending 0 · sent 2');
  }, SLOW);
});
