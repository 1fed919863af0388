import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { simpleParser, type ParsedMail } from 'mailparser';
import type { App } from '../../src/app.ts';

/** One message found in data/outbox/. */
export interface OutboxMessage {
  file: string;
  raw: string;
  parsed: ParsedMail;
}

/** Every .eml in `<dataDir>/outbox`, parsed, oldest file name first. */
export async function readOutbox(dataDir: string): Promise<OutboxMessage[]> {
  const dir = path.join(dataDir, 'outbox');
  const names = (await readdir(dir).catch(() => [])).filter((n) => n.endsWith('.eml')).sort();
  return Promise.all(
    names.map(async (name) => {
      const raw = await readFile(path.join(dir, name), 'utf8');
      return { file: path.join(dir, name), raw, parsed: await simpleParser(raw) };
    }),
  );
}

/** The first https link in a message's text part whose path starts with `pathPrefix`. */
export function linkIn(message: OutboxMessage, pathPrefix: string): string {
  const links = (message.parsed.text ?? '').match(/https?:\/\/[^\s<>"]+/g) ?? [];
  const link = links.find((l) => new URL(l).pathname.startsWith(pathPrefix));
  if (!link) throw new Error(`no ${pathPrefix} link in ${message.file}`);
  return link;
}

/**
 * Runs a worker until no notice (confirmation, welcome) and no edition job is left to send: a
 * subscribe only queues its email, as in production, where `serve` runs the worker.
 */
export async function sendQueued(app: App): Promise<void> {
  const queue = await app.adapters.queue();
  const notices = await app.adapters.notices();
  const waiting = async () => (await notices.due()) + (await queue.size());
  if ((await waiting()) === 0) return;
  const worker = await app.worker({ pollMs: 10, retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 20 } });
  await worker.run({ signal: AbortSignal.timeout(20_000), stopWhenIdle: async () => (await waiting()) === 0 });
}
