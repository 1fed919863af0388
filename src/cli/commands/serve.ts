import type { Command } from 'commander';
import { InputError } from '../../errors.ts';
import { buildServer } from '../../server/server.ts';
import { startScheduler } from '../../schedule/start-scheduler.ts';
import type { AppFactory } from '../main.ts';

/** `gazette serve`: the HTTP server (pages, feeds, subscriptions, admin API). */
export function registerServe(program: Command, makeApp: AppFactory): void {
  program
    .command('serve')
    .description('run the HTTP server (pages, feeds, subscriptions, admin API) with the worker and the scheduler')
    .option('--port <n>', 'port to listen on (default: PORT or 8080)')
    .option('--host <address>', 'address to listen on', '0.0.0.0')
    .action(async (options: { port?: string; host: string }) => {
      const port = options.port === undefined ? undefined : Number(options.port);
      if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) {
        throw new InputError(`--port: expected a port number from 0 to 65535, got "${options.port}"`);
      }
      const base = makeApp();
      const effectivePort = port ?? base.config.port;
      // One base URL for the whole deployment (BASE_URL, else site.yaml's base_url): never this process's own idea.
      const app = makeApp({ port: effectivePort, createDatabase: true });
      const server = await buildServer(app, { logger: true });
      await (await app.store()).db.selectFrom('subscribers').select('id').limit(1).execute(); // migrate before taking traffic
      await server.listen({ port: effectivePort, host: options.host });
      const controller = new AbortController();
      const worker = (await app.worker({ resumeOutages: true }, (event, details) => server.log.info({ ...details, event }, `worker: ${event}`))).run({ signal: controller.signal }).catch((error: unknown) => server.log.error({ err: error }, 'worker stopped'));
      const scheduler = await startScheduler(app, { log: server.log });
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
      server.log.info('shutting down: finishing the messages in flight');
      controller.abort();
      await scheduler.stop();
      await worker;
      await server.close();
      await app.close();
    });
}
