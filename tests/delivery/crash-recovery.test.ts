import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { createEdition } from '../../src/edition/create-edition.ts';
import { enqueueEdition } from '../../src/edition/enqueue-edition.ts';
import { startGazette, withTimeout } from '../helpers/cli.ts';
import { storyFile, tempContentDir, TEMPLATES_DIR } from '../helpers/content-dir.ts';
import { startSmtpRecorder, type SmtpRecorder } from '../helpers/smtp-recorder.ts';

const SECRET = 'crash-test-secret-0123456789abcdef';
const SUBSCRIBERS = 5_000;
const KILL_AT = 1_500;
const CONCURRENCY = 5;

describe('a worker killed mid-send (SIGKILL)', () => {
  let dataDir: string;
  let contentDir: string;
  let recorder: SmtpRecorder;
  let editionId: number;
  const children: ChildProcess[] = [];
  let onCount: (count: number) => void = () => {};

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'gazette-crash-'));
    contentDir = await tempContentDir({ 'harbour-cranes.md': storyFile({ title: '"Harbour cranes return to work"' }) }, { withGolden: true });
    const app = createApp(
      loadConfig({ GAZETTE_DATA_DIR: dataDir, GAZETTE_CONTENT_DIR: contentDir, GAZETTE_TEMPLATES_DIR: TEMPLATES_DIR, GAZETTE_SECRET: SECRET }),
    );
    try {
      const subscribers = await app.adapters.subscribers();
      for (let start = 0; start < SUBSCRIBERS; start += 1_000) {
        const batch = Array.from({ length: Math.min(1_000, SUBSCRIBERS - start) }, (_, i) => {
          const email = `reader${start + i + 1}@example.com`;
          return { email, emailKey: email, name: null, status: 'active' as const, source: 'test', consentIp: null, lists: [{ slug: 'dispatch', frequency: 'weekly' as const }] };
        });
        expect(await subscribers.insertMany(batch, new Date())).toBe(batch.length);
      }
      const edition = await createEdition(
        { content: await app.content(), templates: await app.adapters.emailTemplates(), editions: await app.adapters.editions(), now: app.now() },
        { list: 'dispatch', digest: true },
      );
      editionId = edition.id;
      const result = await enqueueEdition({ editions: await app.adapters.editions(), deliveries: await app.adapters.deliveries(), queue: await app.adapters.queue(), now: app.now }, editionId);
      expect(result.added).toBe(SUBSCRIBERS);
    } finally {
      await app.close();
    }
    recorder = await startSmtpRecorder({ parse: false, onMessage: (_message, count) => onCount(count) });
  }, 180_000);

  afterAll(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await recorder?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
    if (contentDir) await rm(contentDir, { recursive: true, force: true });
  });

  it(
    'is taken over after its lease by `send --wait`: everyone gets the edition, at most the in-flight messages twice',
    async () => {
      const env = {
        GAZETTE_DATA_DIR: dataDir,
        GAZETTE_CONTENT_DIR: contentDir,
        GAZETTE_TEMPLATES_DIR: TEMPLATES_DIR,
        GAZETTE_SECRET: SECRET,
        SMTP_URL: recorder.url,
        GAZETTE_CONCURRENCY: String(CONCURRENCY),
        GAZETTE_RATE: '100000',
        // Shorter than the default minute: the test waits out the dead worker's lease.
        GAZETTE_LEASE_SECONDS: '3',
      };
      const started = Date.now();

      const worker = startGazette(['worker'], env);
      children.push(worker.child);
      onCount = (count) => {
        if (count >= KILL_AT && worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill('SIGKILL');
      };
      const killed = await withTimeout(worker.done, 120_000, 'gazette worker');
      onCount = () => {};
      expect(killed.signal, `the worker ended on its own before ${KILL_AT} messages:\n${killed.stderr}`).toBe('SIGKILL');
      const atKill = recorder.messages.length;
      expect(atKill).toBeGreaterThanOrEqual(KILL_AT);
      expect(atKill).toBeLessThan(SUBSCRIBERS);
      const killedAfterMs = Date.now() - started;

      const send = startGazette(['send', String(editionId), '--wait'], env);
      children.push(send.child);
      const finished = await withTimeout(send.done, 180_000, 'gazette send --wait');
      expect(finished.code, finished.stderr).toBe(0);
      expect(finished.stderr).toMatch(new RegExp(`edition ${editionId}: it already went out, so nobody new was added`));

      // Everyone got it; only messages in flight at the kill went twice; nobody three times.
      const byRecipient = recorder.byRecipient();
      const missing = Array.from({ length: SUBSCRIBERS }, (_, i) => `reader${i + 1}@example.com`).filter((email) => !byRecipient.has(email));
      expect(missing).toEqual([]);
      expect(byRecipient.size).toBe(SUBSCRIBERS);
      const twice = [...byRecipient].filter(([, list]) => list.length === 2).map(([email]) => email);
      const more = [...byRecipient].filter(([, list]) => list.length > 2).map(([email]) => email);
      expect(more).toEqual([]);
      expect(twice.length).toBeLessThanOrEqual(CONCURRENCY);
      expect(recorder.messages.length).toBe(SUBSCRIBERS + twice.length);

      // The ledger agrees: 5,000 sent, nothing left queued, the edition done.
      const app = createApp(loadConfig({ GAZETTE_DATA_DIR: dataDir, GAZETTE_CONTENT_DIR: contentDir, GAZETTE_TEMPLATES_DIR: TEMPLATES_DIR, GAZETTE_SECRET: SECRET }));
      try {
        const counts = await (await app.adapters.deliveries()).counts(editionId);
        expect(counts).toEqual({ queued: 0, sent: SUBSCRIBERS, failed: 0, bounced: 0, skipped: 0, sending: 0 });
        expect((await (await app.adapters.editions()).find(editionId))!.status).toBe('sent');
        const jobs = await (await app.adapters.store()).db.selectFrom('queue_jobs').select('id').execute();
        expect(jobs).toEqual([]);
      } finally {
        await app.close();
      }
      console.info(
        `crash-recovery: killed after ${atKill} messages (${killedAfterMs} ms), ${twice.length} sent twice, done in ${Date.now() - started} ms`,
      );
    },
    // About 45 s on a quiet machine; generous for a loaded CI runner.
    240_000,
  );
});
