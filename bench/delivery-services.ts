// What the delivery bench uses beside Gazette: Postgres (a private schema per mode), Redis (a
// private key prefix per mode) and postfix's smtp-sink as the receiving server.
import { randomBytes } from 'node:crypto';
import { connect, createServer } from 'node:net';
import pg from 'pg';
import { Scope, spawnGroup, stopGroup } from './delivery-processes.ts';

/** Postgres of this machine and CI (trust auth, database `test`); BENCH_POSTGRES_URL or TEST_DATABASE_URL. */
export const POSTGRES_URL = process.env.BENCH_POSTGRES_URL || process.env.TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';

/** Redis for the BullMQ queue; BENCH_REDIS_URL or TEST_REDIS_URL. */
export const REDIS_URL = process.env.BENCH_REDIS_URL || process.env.TEST_REDIS_URL || 'redis://127.0.0.1:6379';

const SINK = '/usr/sbin/smtp-sink';
const PROBE_TIMEOUT_MS = 2000;
/** Every prefix the bench makes, and the only ones it deletes keys of. */
const PREFIX_SHAPE = /^gz-bench-[0-9a-f]{12}$/;

/** Why Postgres does not answer `select 1` within 2 s, or undefined when it does. */
export async function postgresProblem(url: string = POSTGRES_URL): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: PROBE_TIMEOUT_MS });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('select 1');
    return undefined;
  } catch (error) {
    return reasonOf(error);
  } finally {
    await client.end().catch(() => {});
  }
}

/** Why Redis does not answer PING within 2 s, or undefined when it does. */
export async function redisProblem(url: string = REDIS_URL): Promise<string | undefined> {
  const { Redis } = await import('ioredis');
  const redis = new Redis(url, { lazyConnect: true, connectTimeout: PROBE_TIMEOUT_MS, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  let first: unknown;
  redis.on('error', (error) => (first ??= error));
  try {
    await redis.connect();
    await redis.ping();
    return undefined;
  } catch (error) {
    return reasonOf(first ?? error);
  } finally {
    redis.disconnect();
  }
}

/** A new, empty Postgres schema, dropped when `scope` closes; returns the URL whose connections use it. */
export async function privateSchema(scope: Scope, baseUrl: string = POSTGRES_URL): Promise<string> {
  const schema = `gz_bench_${randomBytes(6).toString('hex')}`;
  await postgres(baseUrl, `create schema ${schema}`);
  scope.defer(`Postgres schema ${schema}`, () => postgres(baseUrl, `drop schema if exists ${schema} cascade`));
  const url = new URL(baseUrl);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return url.toString();
}

/** A Redis key prefix nothing else uses; its keys are deleted when `scope` closes. */
export function privatePrefix(scope: Scope, url: string = REDIS_URL): string {
  const prefix = `gz-bench-${randomBytes(6).toString('hex')}`;
  scope.defer(`Redis keys ${prefix}:*`, () => deleteKeys(url, prefix));
  return prefix;
}

/** Deletes every key under `prefix:` (SCAN, so Redis is never blocked); returns how many. */
export async function deleteKeys(url: string, prefix: string): Promise<number> {
  if (!PREFIX_SHAPE.test(prefix)) throw new Error(`refusing to delete the keys of ${prefix}: not a bench prefix`);
  const { Redis } = await import('ioredis');
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  redis.on('error', () => {});
  await redis.connect();
  let deleted = 0;
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) deleted += await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
  return deleted;
}

/** The receiving server: one `smtp-sink -u nobody 127.0.0.1:PORT 512`, started again should it die. */
export class Sink {
  private child: ReturnType<typeof spawnGroup> | undefined;
  private stderr = '';
  port = 0;
  /** How many times it had to be started again. */
  restarts = 0;

  constructor(scope: Scope) {
    scope.defer('smtp-sink', () => this.child && stopGroup(this.child));
  }

  /** Starts it if it is not running; returns its port. */
  async ensure(): Promise<number> {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) return this.port;
    if (this.child) {
      this.restarts++;
      process.stderr.write(`bench delivery: smtp-sink on ${this.port} had exited (${this.stderr.trim() || 'no message'}): starting another\n`);
    }
    this.port = await freePort();
    this.stderr = '';
    const child = spawnGroup(SINK, ['-u', 'nobody', `127.0.0.1:${this.port}`, '512']);
    child.stderr!.on('data', (chunk: Buffer) => (this.stderr = (this.stderr + chunk.toString()).slice(-2000)));
    this.child = child;
    await waitForPort(this.port, () => (child.exitCode !== null ? `smtp-sink exited ${child.exitCode}: ${this.stderr.trim()}` : undefined));
    return this.port;
  }
}

async function postgres(url: string, statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
      .once('error', reject)
      .listen(0, '127.0.0.1', () => {
        const { port } = server.address() as { port: number };
        server.close(() => resolve(port));
      });
  });
}

async function waitForPort(port: number, failed: () => string | undefined): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const problem = failed();
    if (problem) throw new Error(problem);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.end();
        resolve(true);
      }).on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`smtp-sink did not listen on 127.0.0.1:${port} within 5 s`);
}

function reasonOf(error: unknown): string {
  const inner = error instanceof AggregateError && error.errors.length > 0 ? error.errors[0] : error;
  const { code, message } = inner as { code?: string; message?: string };
  if (code && /^E[A-Z]+$/.test(code)) return code;
  return message ?? String(inner);
}
