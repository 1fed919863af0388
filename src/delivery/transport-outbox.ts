import path from 'node:path';
import { writeFileAtomic } from '../fs/atomic-write.ts';
import type { OutgoingMessage, Transport } from './transport.ts';

/** Writes each message as `<dir>/<key>.eml`, atomically: works with no mail server at all. */
export function createOutboxTransport(dir: string): Transport {
  return {
    name: 'outbox',
    async send(message: OutgoingMessage) {
      // The key is stable per delivery, so a retried message replaces its own file, never adds one.
      const safeKey = message.key.replace(/[^A-Za-z0-9._-]/g, '_');
      await writeFileAtomic(path.join(dir, `${safeKey}.eml`), message.raw);
    },
    async close() {},
  };
}
