import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import type { OutgoingMessage, Transport } from '../../src/delivery/transport.ts';
import { createEdition } from '../../src/edition/create-edition.ts';
import { enqueueEdition } from '../../src/edition/enqueue-edition.ts';
import { storyFile, tempContentDir, TEMPLATES_DIR } from '../helpers/content-dir.ts';

describe('worker', () => {
  it('sends an edition with content/ broken or gone: the edition carries its sender, list and links', async () => {
    const contentDir = await tempContentDir({ 'a.md': storyFile({ title: '"A"' }) });
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'gazette-recovery-'));
    const sent: OutgoingMessage[] = [];
    const transport: Transport = { name: 'memory', send: async (m) => void sent.push(m), probe: async () => {}, close: async () => {} };
    const app = createApp(
      loadConfig({ GAZETTE_CONTENT_DIR: contentDir, GAZETTE_DATA_DIR: dataDir, GAZETTE_TEMPLATES_DIR: TEMPLATES_DIR, GAZETTE_SECRET: 'test-secret-0123456789abcdef' }),
      { transport },
    );
    try {
      const repo = await app.adapters.subscribers();
      await repo.insertMany(
        Array.from({ length: 5 }, (_, i) => ({ email: `r${i}@example.com`, emailKey: `r${i}@example.com`, name: null, status: 'active' as const, source: 'test', consentIp: null, lists: [{ slug: 'dispatch', frequency: 'instant' as const }] })),
        new Date(),
      );
      const { id } = await createEdition({ content: await app.content(), templates: await app.adapters.emailTemplates(), editions: await app.adapters.editions(), now: new Date() }, { list: 'dispatch', digest: true });
      await enqueueEdition({ editions: await app.adapters.editions(), deliveries: await app.adapters.deliveries(), queue: await app.adapters.queue(), now: () => new Date() }, id);
      // An editor saves a broken story, and site.yaml is gone too: the worker reads neither.
      await writeFile(path.join(contentDir, 'stories', 'broken.md'), storyFile({ date: 'yesterday' }));
      await rm(path.join(contentDir, 'site.yaml'));
      const worker = await app.worker({ retry: { maxAttempts: 2, baseDelayMs: 20, maxDelayMs: 50 }, pollMs: 20 });
      const deliveries = await app.adapters.deliveries();
      await worker.run({ signal: AbortSignal.timeout(15_000), stopWhenIdle: async () => (await deliveries.counts(id)).queued === 0 });
      expect(await deliveries.counts(id)).toMatchObject({ sent: 5, failed: 0 });
      expect(new Set(sent.map((m) => m.to)).size).toBe(5);
      expect(sent.every((m) => /^bounces\+d[0-9a-z]+-[0-9a-f]{20}@gazette\.example\.org$/.test(m.envelopeFrom) && m.raw.includes('List-Id: The Dispatch'))).toBe(true);
    } finally {
      await app.close();
      await rm(dataDir, { recursive: true, force: true });
      await rm(contentDir, { recursive: true, force: true });
    }
  });
});
