import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql } from 'kysely';
import { ConfigError, GazetteError } from '../errors.ts';
import { migrations } from './migrations.ts';
import type { Database } from './schema.ts';

/** Which SQL engine a store runs on. */
export type Dialect = 'sqlite' | 'postgres';

/** An open, migrated database. */
export interface Store {
  db: Kysely<Database>;
  dialect: Dialect;
  close(): Promise<void>;
}

/** Opens DATABASE_URL (postgres://…) or the SQLite file in the data dir, and migrates it to the latest schema. */
export async function openStore(options: { databaseUrl: string | undefined; dataDir: string }): Promise<Store> {
  const url = options.databaseUrl;
  const store = url && /^postgres(ql)?:\/\//.test(url) ? await openPostgres(url) : await openSqlite(sqliteFile(url, options.dataDir));
  await migrate(store);
  return store;
}

function sqliteFile(url: string | undefined, dataDir: string): string {
  if (!url) return path.join(dataDir, 'gazette.db');
  if (url.startsWith('sqlite:')) return url.replace(/^sqlite:(\/\/)?/, '') || ':memory:';
  throw new ConfigError(`DATABASE_URL: expected postgres://… or sqlite:PATH, got "${url}"`);
}

async function openSqlite(file: string): Promise<Store> {
  const { default: SqliteDatabase } = await import('better-sqlite3');
  if (file !== ':memory:') mkdirSync(path.dirname(file), { recursive: true });
  const sqlite = new SqliteDatabase(file);
  // WAL lets readers (server, status) run while a worker writes; busy_timeout makes
  // concurrent processes wait for the lock instead of failing.
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('busy_timeout = 10000');
  sqlite.pragma('foreign_keys = ON');
  cachePreparedStatements(sqlite);
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
  return { db, dialect: 'sqlite', close: () => db.destroy() };
}

// Kysely prepares every query anew; the worker's hot path runs the same few statements
// thousands of times a second, so prepared statements are kept by their SQL text.
function cachePreparedStatements(sqlite: import('better-sqlite3').Database): void {
  const prepare = sqlite.prepare.bind(sqlite);
  const cache = new Map<string, ReturnType<typeof prepare>>();
  sqlite.prepare = ((source: string) => {
    let statement = cache.get(source);
    if (!statement) {
      statement = prepare(source);
      if (cache.size >= 500) cache.delete(cache.keys().next().value!);
      cache.set(source, statement);
    }
    return statement;
  }) as typeof sqlite.prepare;
}

async function openPostgres(url: string): Promise<Store> {
  // Loaded only when asked for, so SQLite users never load the driver.
  const { default: pg } = await import('pg');
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return { db, dialect: 'postgres', close: () => db.destroy() };
}

async function migrate(store: Store): Promise<void> {
  // Postgres: keep Kysely's bookkeeping tables in our own schema, or another app's copy in
  // another schema of the same database would be found first.
  const schema =
    store.dialect === 'postgres'
      ? (await sql<{ schema: string }>`select current_schema() as schema`.execute(store.db)).rows[0]?.schema
      : undefined;
  const migrator = new Migrator({
    db: store.db,
    provider: { getMigrations: async () => migrations(store.dialect) },
    ...(schema ? { migrationTableSchema: schema } : {}),
  });
  let { error, results } = await migrator.migrateToLatest();
  // SQLite has no migration lock: two processes opening a fresh file at once (serve and a
  // worker) race, and the loser fails on the migration record. Once the winner is done, retry.
  for (let attempt = 0; error && store.dialect === 'sqlite' && attempt < 10; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 50 + Math.random() * 100));
    ({ error, results } = await migrator.migrateToLatest());
  }
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    await store.close();
    throw new GazetteError('MIGRATION_FAILED', `database migration ${failed} failed: ${(error as Error).message}`, { cause: error });
  }
}
