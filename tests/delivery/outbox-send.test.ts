import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { checkEml } from '../helpers/check-eml.ts';
import { gazette } from '../helpers/cli.ts';
import { storyFile, tempContentDir, TEMPLATES_DIR } from '../helpers/content-dir.ts';
import { readOutbox } from '../helpers/outbox.ts';

const SECRET = 'outbox-test-secret-0123456789abcdef';
const SUBSCRIBERS = 30;

describe('gazette send --wait with the outbox transport (no SMTP_URL)', () => {
  let dataDir: string;
  let contentDir: string;
  let env: Record<string, string>;
  const emails = Array.from({ length: SUBSCRIBERS }, (_, i) => `reader${i + 1}@example.com`);

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'gazette-outbox-'));
    contentDir = await tempContentDir({ 'harbour-cranes.md': storyFile({ title: '"Harbour cranes return to work"' }) }, { withGolden: true });
    env = { GAZETTE_DATA_DIR: dataDir, GAZETTE_CONTENT_DIR: contentDir, GAZETTE_TEMPLATES_DIR: TEMPLATES_DIR, GAZETTE_SECRET: SECRET };
    const app = createApp(loadConfig(env));
    try {
      await (await app.adapters.subscribers()).insertMany(
        emails.map((email, i) => ({
          email,
          emailKey: email,
          name: i % 2 ? `Reader ${i + 1}` : null,
          status: 'active' as const,
          source: 'test',
          consentIp: null,
          lists: [{ slug: 'dispatch', frequency: 'weekly' as const }],
        })),
        new Date(),
      );
    } finally {
      await app.close();
    }
  });

  afterAll(async () => {
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
    if (contentDir) await rm(contentDir, { recursive: true, force: true });
  });

  it('writes one valid .eml per subscriber, and a second send adds nothing', async () => {
    const created = await gazette(['edition', 'create', '--digest', '--list', 'dispatch'], env);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toMatch(/^\d+\n$/);
    const id = created.stdout.trim();

    const sent = await gazette(['send', id, '--wait'], env);
    expect(sent.code, sent.stderr).toBe(0);
    expect(sent.stderr).toMatch(new RegExp(`edition ${id}: ${SUBSCRIBERS} deliveries added`));

    const outbox = await readOutbox(dataDir);
    const names = (await readdir(path.join(dataDir, 'outbox'))).filter((n) => n.endsWith('.eml'));
    expect(names).toHaveLength(SUBSCRIBERS);

    // `gazette outbox` shows the newest of them with their links, decoded from quoted-printable.
    const listed = await gazette(['outbox', '--last', '2', '--json'], env);
    expect(listed.code, listed.stderr).toBe(0);
    const shown = JSON.parse(listed.stdout) as { to: string; subject: string; links: string[] }[];
    expect(shown).toHaveLength(2);
    for (const message of shown) {
      expect(message.to).toMatch(/reader\d+@example\.com/);
      expect(message.links.some((l) => /^https:\/\/gazette\.example\.org\/unsubscribe\?token=[^=\s]+$/.test(l))).toBe(true);
    }
    expect(outbox).toHaveLength(SUBSCRIBERS);
    const recipients = outbox.map((m) => {
      const to = Array.isArray(m.parsed.to) ? m.parsed.to : m.parsed.to ? [m.parsed.to] : [];
      const addresses = to.flatMap((a) => a.value.map((v) => v.address));
      expect(addresses).toHaveLength(1);
      return addresses[0]!;
    });
    expect(recipients.sort()).toEqual([...emails].sort());

    const checked = await checkEml(outbox.map((m) => m.file));
    expect(checked.code, checked.output).toBe(0);
    expect(checked.output.match(/RESULT: PASS/g)).toHaveLength(SUBSCRIBERS);

    const again = await gazette(['send', id], env);
    expect(again.code, again.stderr).toBe(0);
    expect(`${again.stdout}${again.stderr}`).toMatch(/already went out, so nobody new was added/);
    const after = (await readdir(path.join(dataDir, 'outbox'))).filter((n) => n.endsWith('.eml'));
    expect(after.sort()).toEqual(names.sort());

    const app = createApp(loadConfig(env));
    try {
      expect(await (await app.adapters.deliveries()).counts(Number(id))).toEqual({ queued: 0, sent: SUBSCRIBERS, failed: 0, bounced: 0, skipped: 0, sending: 0 });
      expect((await (await app.adapters.editions()).find(Number(id)))!.status).toBe('sent');
    } finally {
      await app.close();
    }
  }, 240_000);
});
