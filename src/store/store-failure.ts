import { DatabaseGoneError } from '../errors.ts';

// SQLite's answers when the file under it is no longer a database it can trust.
const BROKEN = new Set(['SQLITE_CORRUPT', 'SQLITE_NOTADB', 'SQLITE_IOERR', 'SQLITE_READONLY_DBMOVED', 'SQLITE_IOERR_DELETE', 'SQLITE_IOERR_READ', 'SQLITE_IOERR_SHORT_READ']);

/**
 * The DatabaseGoneError an error of the database driver means, or undefined when it is an ordinary
 * error (a lock, a constraint): a damaged or overwritten file must stop the process like a deleted one.
 */
export function storeFailure(error: unknown): DatabaseGoneError | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !(BROKEN.has(code) || code.startsWith('SQLITE_IOERR'))) return undefined;
  return new DatabaseGoneError(
    `the database is damaged or was overwritten while Gazette was running (${code}: ${(error as Error).message}): stopped so that nothing more is recorded into it; restore it from a backup and start again`,
  );
}
