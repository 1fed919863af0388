import type { Command } from 'commander';
import type { AppFactory } from '../main.ts';
import { runWithApp } from '../with-app.ts';

/** `gazette migrate`: creates the database, or brings it to the latest schema. */
export function registerMigrate(program: Command, makeApp: AppFactory): void {
  program
    .command('migrate')
    .description('create the database (SQLite file in the data dir, or DATABASE_URL) or bring it to the latest schema')
    .action(() =>
      runWithApp(
        () => makeApp({ createDatabase: true }),
        async (app) => {
          await app.checkDatabase();
          process.stderr.write(`database ready: ${app.config.databaseUrl ? 'DATABASE_URL' : `${app.config.dataDir}/gazette.db`}\n`);
        },
      ),
    );
}
