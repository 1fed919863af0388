import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
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
  if (name === 'sqlite') return { name, url: `sqlite:${path.join(dataDir, 'test.db')}`, dataDir, drop: async () => {} };
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
    },
  };
}
