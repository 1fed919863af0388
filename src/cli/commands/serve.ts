import type { FastifyInstance } from 'fastify';
import type { Command } from 'commander';
import type { App } from '../../app.ts';
import { GazetteError, InputError } from '../../errors.ts';
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
      let server: FastifyInstance | undefined;
      try {
        const { buildServer } = await import('../../server/server.ts');
        server = await buildServer(app, { logger: true });
        await app.checkDatabase(); // migrate before taking traffic
        await listen(server, effectivePort, options.host);
      } catch (error) {
        // Nothing was started yet: no worker, no scheduler; close what was opened so the process can exit.
        await server?.close().catch(() => undefined);
        await app.close();
        throw error;
      }
      process.stderr.write(await describeLinks(app, listeningPort(server, effectivePort)));
      const controller = new AbortController();
      // The worker stops only on a fatal error (the database gone or damaged): then the whole
      // process stops with it, exit 1, so a supervisor notices instead of a server answering 500s.
      let fatal: unknown;
      const stop = () => controller.abort();
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
      const stopped = new Promise<void>((resolve) => controller.signal.addEventListener('abort', () => resolve(), { once: true }));
      let worker: Promise<void> = Promise.resolve();
      let scheduler: { stop(): Promise<void> } | undefined;
      let inbound: Promise<void> = Promise.resolve();
      try {
        const sender = await app.worker({ resumeOutages: true }, (event, details) => server.log.info({ ...details, event }, `worker: ${event}`));
        worker = sender.run({ signal: controller.signal }).catch((error: unknown) => {
          fatal = error;
          server.log.fatal({ err: error }, 'worker stopped: shutting down');
          controller.abort();
        });
        scheduler = await app.schedules.start({ log: server.log });
        if (app.config.inbound.port !== undefined || app.config.inbound.mailboxUrl !== undefined) {
          const { startInbound } = await import('../../inbound/start-inbound.ts');
          const log = server.log;
          inbound = (
            await startInbound(app, {
              port: app.config.inbound.port,
              host: app.config.inbound.host,
              mailboxUrl: app.config.inbound.mailboxUrl,
              log: (line) => log.info(line),
              signal: controller.signal,
            })
          ).done;
        }
      } catch (error) {
        // Failing after listen (the database locked or gone as the scheduler starts) stops
        // everything already running, so the process exits instead of serving half a Gazette.
        fatal ??= error;
        controller.abort();
      }
      await stopped;
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      server.log.info('shutting down: finishing the messages in flight');
      await scheduler?.stop();
      await inbound;
      await worker;
      await server.close();
      await app.close();
      if (fatal) throw fatal;
    });
}

/** Listens, translating the socket errors an operator can fix into one line that says how. */
async function listen(server: FastifyInstance, port: number, host: string): Promise<void> {
  try {
    await server.listen({ port, host });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') {
      throw new GazetteError('PORT_IN_USE', `port ${port} is in use: pass --port N or set PORT (and point site.yaml's base_url at that port, so every command's links reach this server)`, { cause: error });
    }
    if (code === 'EACCES') throw new GazetteError('PORT_FORBIDDEN', `port ${port} needs privileges this user does not have: pass --port N (1024 or above) or set PORT`, { cause: error });
    if (code === 'EADDRNOTAVAIL') throw new GazetteError('HOST_UNAVAILABLE', `--host ${host} is not an address of this machine: pass another --host (default 0.0.0.0)`, { cause: error });
    throw error;
  }
}

function listeningPort(server: FastifyInstance, asked: number): number {
  const address = server.server.address();
  return typeof address === 'object' && address ? address.port : asked;
}

// The base URL every link starts with, where it comes from, and a warning when it cannot reach this server.
async function describeLinks(app: App, port: number): Promise<string> {
  const site = await app.content().then((c) => c.site, () => undefined);
  const baseUrl = site?.baseUrl ?? app.config.baseUrl;
  if (baseUrl === undefined) return 'links: content/ does not load yet, so neither does site.yaml base_url (the site answers 503 until it is fixed)\n';
  const source = app.config.baseUrl !== undefined ? 'BASE_URL, over site.yaml base_url' : 'site.yaml base_url; BASE_URL overrides it';
  const warning = baseUrlWarning(baseUrl, port);
  return `links point at ${baseUrl} (${source})\n${warning ? `warning: ${warning}\n` : ''}${await consoleLine(app, warning ? `http://localhost:${port}` : baseUrl)}`;
}

/** Where the editors' console is (this server, when the links point elsewhere), and how to make its first user when there is none. */
async function consoleLine(app: App, baseUrl: string): Promise<string> {
  const users = await app.users.list().catch(() => undefined);
  const first = users?.length === 0 ? ' (no users yet: add the first with `gazette users add EMAIL --role admin`)' : '';
  return `editors' console at ${baseUrl}/admin${first}\n`;
}

/**
 * Why links starting with `baseUrl` would not reach a server listening on `port`, or undefined when
 * they may: a local URL (localhost, 127.0.0.1, ::1) with another port, or a plain-http URL on a public
 * host with another port (an https URL is taken to be a proxy in front of this server).
 */
export function baseUrlWarning(baseUrl: string, port: number): string | undefined {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    return `${baseUrl} is not a URL`;
  }
  const linkPort = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  if (linkPort === port) return undefined;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isLoopback(host)) {
    return `links point at port ${linkPort}, but this server listens on port ${port}: set base_url in site.yaml to ${url.protocol}//${url.hostname}:${port} so they reach it (BASE_URL=… works too, but only for the processes it is set for: \`gazette edition create\` in another terminal would still use site.yaml's)`;
  }
  if (url.protocol === 'http:' && isPublicHost(host)) {
    return `links point at plain http on port ${linkPort} of ${url.hostname}, but this server listens on port ${port}: unless a proxy there forwards to it, set BASE_URL to the URL readers use (https:// for a public site)`;
  }
  return undefined;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host.endsWith('.localhost') || /^127\./.test(host) || host === '::1' || host === '0.0.0.0';
}

function isPublicHost(host: string): boolean {
  if (!host.includes('.') || /\.(local|lan|internal|home|test|example|invalid)$/.test(host)) return false;
  return !/^(10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|169\.254\.|fc|fd|fe80:)/i.test(host);
}
