import { cp, mkdtemp, rm } from 'node:fs/promises';
import { backdate } from './content-dir.ts';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { createApp, type App } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import type { Transport } from '../../src/delivery/transport.ts';
import { buildServer, type ServerOptions } from '../../src/server/server.ts';
import { readOutbox, sendQueued, type OutboxMessage } from './outbox.ts';

/** The repository's sample content/ folder. */
export const REPO_CONTENT_DIR = fileURLToPath(new URL('../../content', import.meta.url));
const REPO_TEMPLATES_DIR = fileURLToPath(new URL('../../templates', import.meta.url));

/** Options of testServer; every one has a default that suits most tests. */
export interface TestServerOptions {
  /** Content folder, used as is; default: a fresh temp copy of the repo's content/ (safe to edit). */
  content?: string;
  /** The App's clock; default: the wall clock. */
  now?: () => Date;
  /** Extra environment, applied over the defaults (e.g. GAZETTE_ADMIN_TOKEN). */
  env?: Record<string, string>;
  /** Options of buildServer; logging is off unless asked for. */
  server?: ServerOptions;
  /** A transport of the test's own; default: the outbox under dataDir. */
  transport?: Transport;
}

/** A built App and server over throwaway folders; drive it with `server.inject()`. */
export interface TestServer {
  app: App;
  server: FastifyInstance;
  /** Fresh temp data folder: SQLite file, outbox/. */
  dataDir: string;
  /** The content folder the App reads. */
  contentDir: string;
  /** Sends what the app queued (confirmations, welcomes, editions), then reads data/outbox/. */
  outbox(): Promise<OutboxMessage[]>;
  /** Closes the server and the App, and removes the temp folders this helper made. */
  close(): Promise<void>;
}

/** Builds an App (fresh data dir, test secret, https://gazette.test) and its Fastify server. */
export async function testServer(options: TestServerOptions = {}): Promise<TestServer> {
  const made: string[] = [];
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'gazette-data-'));
  made.push(dataDir);
  let contentDir = options.content;
  if (contentDir === undefined) {
    contentDir = await mkdtemp(path.join(os.tmpdir(), 'gazette-content-'));
    made.push(contentDir);
    await cp(REPO_CONTENT_DIR, contentDir, { recursive: true });
    await backdate(contentDir);
  }
  const config = loadConfig({
    GAZETTE_CONTENT_DIR: contentDir,
    GAZETTE_DATA_DIR: dataDir,
    GAZETTE_TEMPLATES_DIR: REPO_TEMPLATES_DIR,
    GAZETTE_SECRET: 'test-secret-0123456789abcdef',
    BASE_URL: 'https://gazette.test',
    ...options.env,
  });
  const app = createApp(config, { now: options.now, transport: options.transport });
  const server = await buildServer(app, { logger: false, ...options.server });
  await server.ready();
  return {
    app,
    server,
    dataDir,
    contentDir,
    async outbox() {
      await sendQueued(app);
      return readOutbox(dataDir);
    },
    async close() {
      await server.close();
      await app.close();
      await Promise.all(made.map((dir) => rm(dir, { recursive: true, force: true })));
    },
  };
}
