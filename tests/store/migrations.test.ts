import { rm, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatabaseGoneError, DatabaseMissingError } from '../../src/errors.ts';
import { openStore, type Store } from '../../src/store/database.ts';
import { BACKENDS, freshDatabase, privateDatabases, type TestDatabase } from '../helpers/databases.ts';

const databases = privateDatabases();
afterAll(() => databases.close());

describe.each(BACKENDS)('opening and migrating a store on %s', (backend) => {
  // A store already migrated in another schema (Postgres) or file of the same server.
  let database: TestDatabase;
  let store: Store;
  beforeAll(async () => {
    database = await databases.fresh(backend);
    store = await openStore({ databaseUrl: database.url, dataDir: database.dataDir });
  });
  afterAll(async () => {
    await store.close();
    await database.drop();
  });

  it('refuses to create a database when not allowed to, saying how to make one, and opens one that exists', async () => {
    const fresh = await databases.fresh(backend);
    try {
      const refused = await openStore({ databaseUrl: fresh.url, dataDir: fresh.dataDir, create: false }).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(DatabaseMissingError);
      expect((refused as Error).message).toMatch(/gazette migrate/);
      const created = await openStore({ databaseUrl: fresh.url, dataDir: fresh.dataDir, create: true });
      await created.close();
      const reopened = await openStore({ databaseUrl: fresh.url, dataDir: fresh.dataDir, create: false });
      await reopened.close();
    } finally {
      await fresh.drop();
    }
  });
  it('opens a fresh database while another one on the same server is already migrated', async () => {
    // BUG (src/store/database.ts, migrate): on Postgres, Kysely's Migrator looks for its
    // kysely_migration tables in *every* schema (no migrationTableSchema is given), finds those of the
    // store this suite opened in beforeAll (another schema of the same database), skips creating its
    // own and fails with MIGRATION_FAILED ("relation \"kysely_migration_lock\" does not exist").
    // A Gazette in its own schema next to another Kysely app hits it, and so do test files running
    // side by side on tests/helpers/databases.ts schemas. Fix: pass migrationTableSchema (the
    // connection's current_schema()) to the Migrator on Postgres.
    const other = await databases.fresh(backend);
    try {
      const opened = await openStore({ databaseUrl: other.url, dataDir: other.dataDir }).then(
        (s) => s,
        (e: unknown) => e as Error,
      );
      const message = opened instanceof Error ? opened.message : 'opened';
      if (!(opened instanceof Error)) await opened.close();
      expect(message, 'a fresh schema must migrate whatever other schemas hold').toBe('opened');
    } finally {
      await other.drop();
    }
  });

  it('two connections opened at once to a fresh database both come up (workers starting together)', async () => {
    // BUG (src/store/database.ts, migrate): Kysely's SQLite adapter takes no migration lock, so two
    // openStore() racing on a fresh file both run 0001 and one fails with MIGRATION_FAILED
    // ("UNIQUE constraint failed: kysely_migration.name"). Tried several times: it does not fail every time.
    // On Postgres each try uses a database of its own, away from the schema bug above.
    const tries = backend === 'sqlite' ? 15 : 1;
    const failures: string[] = [];
    for (let i = 0; i < tries; i++) {
      const fresh = backend === 'sqlite' ? await freshDatabase('sqlite') : await databases.newPostgresDatabase();
      const opened = await Promise.allSettled([0, 1].map(() => openStore({ databaseUrl: fresh.url, dataDir: fresh.dataDir })));
      for (const result of opened) {
        if (result.status === 'fulfilled') await result.value.close();
        else failures.push((result.reason as Error).message);
      }
      await fresh.drop();
    }
    expect(failures, 'concurrent openStore on a fresh database must not fail its migrations').toEqual([]);
  });

});

describe('a SQLite file that goes away while open', () => {
  it.each(['deleted', 'replaced'] as const)('the next query fails with DatabaseGoneError when the file is %s', async (how) => {
    const fresh = await freshDatabase('sqlite');
    const file = fresh.url.replace(/^sqlite:/, '');
    const opened = await openStore({ databaseUrl: fresh.url, dataDir: fresh.dataDir });
    try {
      await opened.db.selectFrom('subscribers').select('id').execute();
      if (how === 'deleted') await rm(file);
      else {
        await writeFile(path.join(fresh.dataDir, 'other.db'), '');
        await rename(path.join(fresh.dataDir, 'other.db'), file);
      }
      await new Promise((resolve) => setTimeout(resolve, 120));
      const error = await opened.db.selectFrom('subscribers').select('id').execute().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DatabaseGoneError);
      expect((error as Error).message).toContain(`was ${how}`);
    } finally {
      await opened.close();
      await fresh.drop();
    }
  });
});
