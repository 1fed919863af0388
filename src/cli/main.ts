import { Command, CommanderError } from 'commander';
import { createApp, type App } from '../app.ts';
import { loadConfig, type Config } from '../config.ts';
import { GazetteError } from '../errors.ts';
import { registerBuild } from './commands/build.ts';
import { registerImport } from './commands/import.ts';
import { registerPreview } from './commands/preview.ts';
import { registerServe } from './commands/serve.ts';
import { registerEdition } from './commands/edition.ts';
import { registerSend } from './commands/send.ts';
import { registerWorker } from './commands/worker.ts';
import { registerInbound } from './commands/inbound.ts';
import { registerMigrate } from './commands/migrate.ts';
import { registerOutbox } from './commands/outbox.ts';
import { registerSubscribers } from './commands/subscribers.ts';
import { registerUsers } from './commands/users.ts';
import { registerSchedule, registerScheduler } from './commands/schedule.ts';

/** Gives commands the App, built once from the environment plus their own overrides. */
export type AppFactory = (overrides?: Partial<Config>) => App;

/** Builds the `gazette` program; every command is a thin shell over the core. */
export function buildProgram(makeApp: AppFactory): Command {
  const program = new Command('gazette')
    .description('Newsletter pipeline: stories in, feeds and emails out, sent from a durable queue.')
    .version('0.1.0')
    .showHelpAfterError('(run gazette --help for usage)')
    .exitOverride();
  registerBuild(program, makeApp);
  registerPreview(program, makeApp);
  registerImport(program, makeApp);
  registerServe(program, makeApp);
  registerEdition(program, makeApp);
  registerSend(program, makeApp);
  registerWorker(program, makeApp);
  registerInbound(program, makeApp);
  registerSubscribers(program, makeApp);
  registerUsers(program, makeApp);
  registerSchedule(program, makeApp);
  registerScheduler(program, makeApp);
  registerMigrate(program, makeApp);
  registerOutbox(program, makeApp);
  return program;
}

/** Runs the CLI and maps every error to a one-line (or one-per-problem) reason and exit code 1. */
export async function main(argv: string[]): Promise<number> {
  let config: Config | undefined;
  // Only `serve` and `migrate` may create a database: any other command finding none says how to make one.
  const makeApp: AppFactory = (overrides = {}) => {
    config ??= loadConfig();
    return createApp({ ...config, createDatabase: false, ...definedOnly(overrides) });
  };
  try {
    await buildProgram(makeApp).parseAsync(argv);
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander already printed the reason (or the help text, which exits 0).
      return error.exitCode === 0 ? 0 : 1;
    }
    if (error instanceof GazetteError) {
      process.stderr.write(`gazette: ${error.message}\n`);
      return 1;
    }
    process.stderr.write(`gazette: unexpected error: ${(error as Error).stack ?? String(error)}\n`);
    return 1;
  }
}

function definedOnly<T extends object>(values: T): Partial<T> {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined)) as Partial<T>;
}

process.exitCode = await main(process.argv);
