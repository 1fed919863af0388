import type { Command } from 'commander';
import type { AppFactory } from '../main.ts';

/** `gazette worker`: delivers queued messages until SIGTERM/SIGINT. */
export function registerWorker(program: Command, makeApp: AppFactory): void {
  program
    .command('worker')
    .description('deliver queued messages (GAZETTE_CONCURRENCY at once, GAZETTE_RATE per second) until stopped')
    .option('--exit-when-idle', 'exit once nothing is left to send now (drain and stop)')
    .action(async (options: { exitWhenIdle?: boolean }) => {
      const app = makeApp();
      const controller = new AbortController();
      const stop = () => {
        process.stderr.write('worker: stopping after the messages in flight\n');
        controller.abort();
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
      try {
        // A long-running worker retries editions paused by an outage once their backoff is over.
        const worker = await app.worker({ resumeOutages: !options.exitWhenIdle }, (event, details) =>
          process.stderr.write(`worker: ${event} ${JSON.stringify(details)}\n`),
        );
        process.stderr.write(`worker: sending through ${worker.transportName}, ${app.config.concurrency} at once, ${app.config.rate}/s\n`);
        let idlePolls = 0;
        await worker.run({
          signal: controller.signal,
          // Twice empty in a row: another worker may still hold a few jobs for a moment.
          stopWhenIdle: options.exitWhenIdle
            ? async () => {
                idlePolls = (await app.backlog()) === 0 ? idlePolls + 1 : 0;
                return idlePolls >= 2;
              }
            : undefined,
        });
      } finally {
        await app.close();
      }
    });
}
