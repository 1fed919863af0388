import { access, constants, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { DeliveryFault } from '../errors.ts';
import { writeFileAtomic } from '../fs/atomic-write.ts';
import type { OutgoingMessage, Transport } from './transport.ts';

/** Writes each message as `<dir>/<key>.eml`, atomically: works with no mail server at all. */
export function createOutboxTransport(dir: string): Transport {
  return {
    name: 'outbox',
    async send(message: OutgoingMessage) {
      // The key is stable per delivery, so a retried message replaces its own file, never adds one.
      const safeKey = message.key.replace(/[^A-Za-z0-9._-]/g, '_');
      try {
        // The envelope sender goes first as Return-Path, as a delivering MTA writes it, so what would be sent can be read back.
        await writeFileAtomic(path.join(dir, `${safeKey}.eml`), `Return-Path: <${message.envelopeFrom}>\r\n${message.raw}`);
      } catch (error) {
        throw outboxFault(dir, error);
      }
    },
    async probe() {
      try {
        await mkdir(dir, { recursive: true });
        await access(dir, constants.W_OK);
      } catch (error) {
        throw outboxFault(dir, error);
      }
    },
    async close() {},
  };
}

// A full disk or a folder we may not write is the same for every message: an outage, never the recipient's fault.
function outboxFault(dir: string, error: unknown): DeliveryFault {
  const failure = error as NodeJS.ErrnoException;
  return new DeliveryFault('unreachable', `cannot write to the outbox ${dir} (${failure.code ?? 'error'}): ${failure.message}`, {
    reply: failure.code ?? '',
    cause: error,
  });
}
