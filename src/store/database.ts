import { existsSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql, type KyselyPlugin } from 'kysely';
import { ConfigError, DatabaseGoneError, DatabaseMissingError, GazetteError } from '../errors.ts';
import { migrations } from './migrations.ts';
import { storeFailure } from './store-failure.ts';
import type { Database } from './schema.ts';

/** Which SQL engine a store runs on. */
export type Dialect = 'sqlite' | 'postgres';

/** An open, migrated database. */
export interface Store {
  db: Kysely<Database>;
  dialect: Dialect;
  close(): Promise<void>;
}

/** Where the database is, and whether opening may create it. */
export interface StoreOptions {
  databaseUrl: string | undefined;
  dataDir: string;
  /**
   * True lets an absent database be created (serve, migrate, tests). False refuses with a
   * DatabaseMissingError saying how to create one, so a mistyped data dir never silently starts
   * an empty list. Default true.
   */
  create?: boolean;
}

/** How to make the database a command found missing. */
const HOW_TO_CREATE = 'run `gazette migrate` to create it (`gazette serve` also does), or point GAZETTE_DATA_DIR / DATABASE_URL at the existing one';

/** Opens DATABASE_URL (postgres://…) or the SQLite file in the data dir, and migrates it to the latest schema. */
export async function openStore(options: StoreOptions): Promise<Store> {
  const url = options.databaseUrl;
  const create = options.create ?? true;
  let store: Store;
  if (url && /^postgres(ql)?:\/\//.test(url)) {
    store = await openPostgres(url);
    if (!create && !(await hasMigrations(store))) {
      await store.close();
      throw new DatabaseMissingError(`the Postgres database at ${redact(url)} has no Gazette tables: ${HOW_TO_CREATE}`);
    }
  } else {
    const file = sqliteFile(url, options.dataDir);
    if (!create && file !== ':memory:' && !existsSync(file)) throw new DatabaseMissingError(`no database at ${file}: ${HOW_TO_CREATE}`);
    store = await openSqlite(file);
  }
  await migrate(store);
  return store;
}

async function hasMigrations(store: Store): Promise<boolean> {
  const result = await sql<{ n: number | string }>`
    select count(*) as n from information_schema.tables where table_schema = current_schema() and table_name = 'kysely_migration'`.execute(store.db);
  return Number(result.rows[0]?.n ?? 0) > 0;
}

function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
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
  const plugins = file === ':memory:' ? [] : [fileStaysPlugin(file)];
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }), plugins });
  return { db, dialect: 'sqlite', close: () => db.destroy() };
}

/**
 * Checks, before queries, that the SQLite file is still the one opened. SQLite keeps writing into
 * a deleted (or renamed-over) file without a word, so a send would report thousands of messages
 * recorded into nothing; this turns that into a DatabaseGoneError. At most one stat per 100 ms.
 */
function fileStaysPlugin(file: string): KyselyPlugin {
  const opened = statSync(file);
  let checkedAt = 0;
  // Once gone, gone for every later query too: the file does not come back under this handle.
  let gone: DatabaseGoneError | undefined;
  return {
    transformQuery(args) {
      if (gone) throw gone;
      const now = Date.now();
      if (now - checkedAt >= 100) {
        checkedAt = now;
        const current = statSync(file, { throwIfNoEntry: false });
        if (!current || current.ino !== opened.ino || current.dev !== opened.dev) {
          gone = new DatabaseGoneError(
            `the database file ${file} was ${current ? 'replaced' : 'deleted'} while Gazette was running: stopped so that nothing more is recorded into a file nobody can read; restore it (or ${HOW_TO_CREATE}) and start again`,
          );
          throw gone;
        }
      }
      return args.node;
    },
    async transformResult(args) {
      return args.result;
    },
  };
}

// Kysely prepares every query anew; the worker's hot path runs the same few statements
// thousands of times a second, so prepared statements are kept by their SQL text.
// Also where the driver's errors are read: a file that is no longer a sound database (overwritten
// in place, damaged) fails every statement with a DatabaseGoneError instead of a driver error.
function cachePreparedStatements(sqlite: import('better-sqlite3').Database): void {
  const prepare = sqlite.prepare.bind(sqlite);
  const cache = new Map<string, ReturnType<typeof prepare>>();
  const guarded = <F extends (...args: never[]) => unknown>(run: F): F =>
    ((...args: Parameters<F>) => {
      try {
        return run(...args);
      } catch (error) {
        throw storeFailure(error) ?? error;
      }
    }) as F;
  sqlite.prepare = ((source: string) => {
    let statement = cache.get(source);
    if (!statement) {
      try {
        statement = prepare(source);
      } catch (error) {
        throw storeFailure(error) ?? error;
      }
      for (const method of ['all', 'get', 'run', 'iterate'] as const) statement[method] = guarded(statement[method].bind(statement)) as never;
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
