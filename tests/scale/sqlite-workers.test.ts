import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { TokenSigner } from '../../src/links/tokens.ts';
import { withTimeout } from '../helpers/cli.ts';
import {
  allMessages,
  copiesByRecipient,
  gazetteEnv,
  ledgerRows,
  ledgerShape,
  NO_CONTENT_DIR,
  NO_TEMPLATES_DIR,
  readerEmails,
  SCALE_SECRET,
  scopedApp,
  scopedContent,
  scopedRecorder,
  scopedTempDir,
  seedReaders,
  spawnGazette,
  testScope,
  waitUntil,
  workerTrouble,
} from '../helpers/scale.ts';
import type { SmtpRecorder } from '../helpers/smtp-recorder.ts';

// The multi-process paths on SQLite alone (the data dir's gazette.db, the queue in it), so that a
// machine without Postgres or Redis covers them too.

describe('`gazette worker` processes on SQLite alone', () => {
  it(
    'a worker with no content/ and no templates/ sends an edition made elsewhere as it was made: sender, list, base URL, signed links',
    async () => {
      const scope = testScope();
      const dataDir = await scopedTempDir(scope, 'gazette-scale-sqlite-');
      // The editor's machine: a site of its own, so that nothing the worker sends can come from elsewhere.
      const contentDir = await scopedContent(scope, [
        ['https://gazette.example.org', 'https://made-elsewhere.example.net'],
        ['newsletter@gazette.example.org', 'letters@made-elsewhere.example.net'],
        ['editors@gazette.example.org', 'editors@made-elsewhere.example.net'],
        ['name: "The Dispatch"', 'name: "Elsewhere Dispatch"'],
      ]);
      const env = gazetteEnv({ dataDir, contentDir });
      const app = scopedApp(scope, env);
      const readers = 25;
      await seedReaders(app, readers);
      const { edition } = await app.editions.create({ list: 'dispatch', digest: true });
      expect((await app.editions.send(edition.id)).added).toBe(readers);
      // And the content is gone: the worker's machine has only the database.
      await rm(contentDir, { recursive: true, force: true });
      expect(existsSync(NO_CONTENT_DIR) || existsSync(NO_TEMPLATES_DIR)).toBe(false);

      const recorder = await scopedRecorder(scope);
      const worker = spawnGazette(scope, 'worker', ['worker', '--exit-when-idle'], {
        ...env,
        GAZETTE_CONTENT_DIR: NO_CONTENT_DIR,
        GAZETTE_TEMPLATES_DIR: NO_TEMPLATES_DIR,
        SMTP_URL: recorder.url,
      });
      const end = await withTimeout(worker.done, 60_000, 'gazette worker --exit-when-idle');
      expect(end.code, end.stderr).toBe(0);
      expect(workerTrouble(end.stderr)).toEqual([]);

      const copies = copiesByRecipient(recorder.messages);
      expect(readerEmails(readers).filter((email) => copies.get(email) !== 1)).toEqual([]);
      const ids = new Map((await (await app.adapters.store()).db.selectFrom('subscribers').select(['id', 'email_key']).execute()).map((r) => [r.email_key, Number(r.id)]));
      const tokens = new TokenSigner(SCALE_SECRET);
      for (const message of recorder.messages) {
        const rcpt = message.rcpt[0]!;
        const parsed = message.parsed!;
        // The return path's domain is the edition's too (frozen when it was made), not the worker's.
        expect(message.from).toMatch(/^bounces\+d[0-9a-z]+-[0-9a-f]{20}@made-elsewhere\.example\.net$/);
        expect(parsed.from?.value[0]).toMatchObject({ address: 'letters@made-elsewhere.example.net', name: 'The Gazette Dispatch' });
        expect(parsed.to && !Array.isArray(parsed.to) ? parsed.to.value[0]?.address : undefined).toBe(rcpt);
        expect(parsed.subject).toBe(edition.subject);
        expect(message.raw).toMatch(/^List-Id: "?Elsewhere Dispatch"? <dispatch\.made-elsewhere\.example\.net>/m);
        const unsubscribe = /^List-Unsubscribe: <https:\/\/made-elsewhere\.example\.net\/unsubscribe\?token=([^>]+)>,\r\n <mailto:unsubscribe\+d[0-9a-z]+-[0-9a-f]{20}@made-elsewhere\.example\.net\?/m.exec(message.raw);
        expect(unsubscribe, message.raw.slice(0, 1500)).not.toBeNull();
        expect(tokens.verify(unsubscribe![1]!, 'unsubscribe', new Date())).toMatchObject({ ok: true, subscriberId: ids.get(rcpt) });
        // The body's links are the edition's too, and no other site's.
        expect(parsed.html).toContain(`https://made-elsewhere.example.net/preferences?token=`);
        expect(parsed.text).toContain('Harbour cranes return to work');
        // (The golden story's image stays on its own host, images.gazette.example.org: that is content, not the site.)
        expect(`${parsed.html}\n${parsed.text}`.match(/https:\/\/gazette\.example\.org[^"\s]*/g) ?? []).toEqual([]);
      }
      expect(ledgerShape(await ledgerRows(app, edition.id))).toEqual({ 'sent/1': readers });
      expect((await app.editions.find(edition.id)).status).toBe('sent');
    },
    90_000,
  );

  it(
    'two workers at once deliver a 3,000-reader edition: each reader exactly once, each worker a share',
    async () => {
      const scope = testScope();
      const readers = 3_000;
      const dataDir = await scopedTempDir(scope, 'gazette-scale-sqlite-');
      const contentDir = await scopedContent(scope);
      const env = gazetteEnv({ dataDir, contentDir }, { GAZETTE_RATE: '100000', GAZETTE_CONCURRENCY: '5', GAZETTE_LEASE_SECONDS: '5' });
      const app = scopedApp(scope, env);
      await seedReaders(app, readers);
      const { edition } = await app.editions.create({ list: 'dispatch', digest: true });
      const recorders: SmtpRecorder[] = [await scopedRecorder(scope, { parse: false }), await scopedRecorder(scope, { parse: false })];
      const workers = recorders.map((recorder, i) => spawnGazette(scope, `worker ${i + 1}`, ['worker'], { ...env, SMTP_URL: recorder.url }));
      await Promise.all(workers.map((w) => w.waitForStderr(/^worker: sending through smtp/m, 60_000)));
      const enqueuedAt = Date.now();
      expect((await app.editions.send(edition.id)).added).toBe(readers);

      const deliveries = await app.adapters.deliveries();
      const total = () => recorders.reduce((sum, r) => sum + r.messages.length, 0);
      await waitUntil(async () => total() >= readers && (await deliveries.counts(edition.id)).queued === 0 && (await app.editions.find(edition.id)).status === 'sent', {
        timeoutMs: 90_000,
        what: 'the edition delivered',
        describe: async () => `${recorders.map((r) => r.messages.length).join(' + ')}; ${JSON.stringify(await deliveries.counts(edition.id))}\n${workers.map((w) => w.stderr()).join('\n')}`,
      });
      const tookMs = Date.now() - enqueuedAt;
      for (const [i, end] of (await Promise.all(workers.map((w) => w.stop()))).entries()) {
        expect(end.code, end.stderr).toBe(0);
        expect(workerTrouble(end.stderr), workers[i]!.name).toEqual([]);
      }

      const messages = allMessages(recorders);
      const copies = copiesByRecipient(messages);
      expect(readerEmails(readers).filter((email) => copies.get(email) !== 1)).toEqual([]);
      expect(messages).toHaveLength(readers);
      const shares = recorders.map((r) => r.messages.length);
      for (const share of shares) expect(share, `shares ${shares.join(' / ')}`).toBeGreaterThan(0);
      expect(ledgerShape(await ledgerRows(app, edition.id))).toEqual({ 'sent/1': readers });
      expect(await app.backlog()).toBe(0);
      console.info(`sqlite-workers: ${readers} readers by 2 workers in ${tookMs} ms; shares ${shares.join(' / ')}`);
    },
    120_000,
  );
});
