import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { inject } from 'vitest';
import {
  probePostgres,
  probeRedis,
  SERVICES_REQUIRED,
  TEST_DATABASE_URL,
  TEST_REDIS_URL,
  unreachableLine,
  type ServicesReport,
  type ServiceStatus,
} from './services.ts';

/** Postgres of this machine and CI (trust auth, database `test`); env TEST_DATABASE_URL. */
export const POSTGRES_URL = TEST_DATABASE_URL;

/** Redis for the Redis-backed suites (default redis://127.0.0.1:6379); env TEST_REDIS_URL. */
export const REDIS_URL = TEST_REDIS_URL;

/** A database a contract suite runs against, and how to throw it away. */
export interface TestDatabase {
  name: 'sqlite' | 'postgres';
  url: string;
  dataDir: string;
  drop(): Promise<void>;
}

/**
 * Whether a probed service may be used by this test file. An unreachable one is skipped with one
 * line (printed once per run by the globalSetup in services.ts, or here when that did not see it
 * missing), or, with GAZETTE_TEST_SERVICES=required, throws so the file fails to load.
 */
function usable(status: ServiceStatus, seenByRun: ServiceStatus | undefined): boolean {
  if (status.reachable) return true;
  if (SERVICES_REQUIRED) throw new Error(unreachableLine(status));
  if (seenByRun?.reachable !== false) console.warn(unreachableLine(status));
  return false;
}

// What the run's globalSetup found (undefined when the file runs without it).
const probedByRun = inject('services') as ServicesReport | undefined;

const postgres = await probePostgres(POSTGRES_URL);

/** Whether this file's Postgres answers: probed once per test file. */
export const POSTGRES_AVAILABLE: boolean = usable(postgres, probedByRun?.postgres);

/** Throws the skip line, so a suite that asks for Postgres outside BACKENDS says why it cannot have it. */
function needPostgres(): void {
  if (!POSTGRES_AVAILABLE) throw new Error(`${unreachableLine(postgres)} (this test asked for Postgres outside BACKENDS)`);
}

/** The backends every store contract suite runs against: SQLite, and Postgres when it answers. */
export const BACKENDS: readonly ('sqlite' | 'postgres')[] = POSTGRES_AVAILABLE ? ['sqlite', 'postgres'] : ['sqlite'];

let redis: Promise<boolean> | undefined;

/** Whether Redis answers at REDIS_URL, probed on the first call once per test file: `describe.runIf(await redisAvailable())`. */
export function redisAvailable(): Promise<boolean> {
  redis ??= probeRedis(REDIS_URL).then((status) => usable(status, probedByRun?.redis));
  return redis;
}

/** A fresh, empty database: a new SQLite file, or a new Postgres schema. */
export async function freshDatabase(name: 'sqlite' | 'postgres'): Promise<TestDatabase> {
  if (name === 'postgres') needPostgres();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'gazette-db-'));
  const removeDir = () => rm(dataDir, { recursive: true, force: true });
  if (name === 'sqlite') return { name, url: `sqlite:${path.join(dataDir, 'test.db')}`, dataDir, drop: removeDir };
  const schema = `gz_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  await client.query(`create schema ${schema}`);
  await client.end();
  const url = withSearchPath(POSTGRES_URL, schema);
  return {
    name,
    url,
    dataDir,
    async drop() {
      const c = new pg.Client({ connectionString: POSTGRES_URL });
      await c.connect();
      await c.query(`drop schema ${schema} cascade`);
      await c.end();
      await removeDir();
    },
  };
}

/**
 * Test databases of one test file: on Postgres, schemas inside a database of the file's own, so
 * files never see each other's schemas; also whole new databases for tests that need one.
 */
export function privateDatabases() {
  let database: string | undefined;
  const run = async (url: string, statement: string) => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(statement);
    } finally {
      await client.end();
    }
  };
  const urlOf = (name: string) => {
    const url = new URL(POSTGRES_URL);
    url.pathname = `/${name}`;
    return url.toString();
  };
  return {
    /** A whole new, empty Postgres database. */
    async newPostgresDatabase(): Promise<TestDatabase> {
      needPostgres();
      const name = `gzdb_${randomBytes(6).toString('hex')}`;
      await run(POSTGRES_URL, `create database ${name}`);
      const dataDir = await mkdtemp(path.join(os.tmpdir(), 'gazette-db-'));
      const drop = async () => {
        await run(POSTGRES_URL, `drop database ${name} with (force)`);
        await rm(dataDir, { recursive: true, force: true });
      };
      return { name: 'postgres', url: urlOf(name), dataDir, drop };
    },
    /** A fresh SQLite file, or a fresh schema in this file's Postgres database. */
    async fresh(backend: 'sqlite' | 'postgres'): Promise<TestDatabase> {
      if (backend === 'sqlite') return freshDatabase('sqlite');
      needPostgres();
      if (!database) {
        database = `gzdb_${randomBytes(6).toString('hex')}`;
        await run(POSTGRES_URL, `create database ${database}`);
      }
      const base = urlOf(database);
      const schema = `gz_${randomBytes(6).toString('hex')}`;
      await run(base, `create schema ${schema}`);
      const dataDir = await mkdtemp(path.join(os.tmpdir(), 'gazette-db-'));
      const url = withSearchPath(base, schema);
      const drop = async () => {
        await run(base, `drop schema ${schema} cascade`);
        await rm(dataDir, { recursive: true, force: true });
      };
      return { name: 'postgres', url, dataDir, drop };
    },
    async close(): Promise<void> {
      if (database) await run(POSTGRES_URL, `drop database ${database} with (force)`);
      database = undefined;
    },
  };
}

/** `url` whose connections use `schema` (kept with any query the URL already has, e.g. sslmode). */
function withSearchPath(url: string, schema: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set('options', `-c search_path=${schema}`);
  return parsed.toString();
}
