import type { Command } from 'commander';
import type { AppFactory } from '../main.ts';

/** `gazette worker`: delivers queued messages until SIGTERM/SIGINT. */
export function registerWorker(program: Command, makeApp: AppFactory): void {
  program
    .command('worker')
    .description('deliver queued messages (GAZETTE_CONCURRENCY at once, GAZETTE_RATE per second) until stopped')
    .action(async () => {
      const app = makeApp();
      const controller = new AbortController();
      const stop = () => {
        process.stderr.write('worker: stopping after the messages in flight\n');
        controller.abort();
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
      try {
        const worker = await app.worker();
        process.stderr.write(`worker: sending through ${(await app.transport()).name}, ${app.config.concurrency} at once, ${app.config.rate}/s\n`);
        await worker.run({ signal: controller.signal });
      } finally {
        await app.close();
      }
    });
}
