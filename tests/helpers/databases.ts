import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

/** Postgres of this machine and CI (trust auth, database `test`). */
export const POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A database a contract suite runs against, and how to throw it away. */
export interface TestDatabase {
  name: 'sqlite' | 'postgres';
  url: string;
  dataDir: string;
  drop(): Promise<void>;
}

/** The backends every store contract suite runs against. */
export const BACKENDS = ['sqlite', 'postgres'] as const;

/** A fresh, empty database: a new SQLite file, or a new Postgres schema. */
export async function freshDatabase(name: 'sqlite' | 'postgres'): Promise<TestDatabase> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'gazette-db-'));
  const removeDir = () => rm(dataDir, { recursive: true, force: true });
  if (name === 'sqlite') return { name, url: `sqlite:${path.join(dataDir, 'test.db')}`, dataDir, drop: removeDir };
  const schema = `gz_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  await client.query(`create schema ${schema}`);
  await client.end();
  const url = `${POSTGRES_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
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
      if (!database) {
        database = `gzdb_${randomBytes(6).toString('hex')}`;
        await run(POSTGRES_URL, `create database ${database}`);
      }
      const base = urlOf(database);
      const schema = `gz_${randomBytes(6).toString('hex')}`;
      await run(base, `create schema ${schema}`);
      const dataDir = await mkdtemp(path.join(os.tmpdir(), 'gazette-db-'));
      const url = `${base}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
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
