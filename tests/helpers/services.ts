import { existsSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

// What the suites use from outside the repository (Postgres, Redis, ../shared/tools), how to tell
// whether it is there, and the one line a run prints for each missing one. Also vitest's
// globalSetup (see vitest.config.ts): it probes once per run and prints those lines; the helpers
// that decide per test file (databases.ts, check-eml.ts) read its verdict with inject().
// No `vitest` import here: globalSetup runs outside the test runner.

/** Postgres of this machine and CI (trust auth, database `test`); env TEST_DATABASE_URL. */
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';

/** Redis for the Redis-backed suites; env TEST_REDIS_URL. */
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL || 'redis://127.0.0.1:6379';

/** GAZETTE_TEST_SERVICES=required (CI): a service that does not answer fails the run instead of skipping. */
export const SERVICES_REQUIRED = process.env.GAZETTE_TEST_SERVICES === 'required';

/** ../shared/tools/check-eml.py beside the repository (never copied in). */
export const CHECK_EML = fileURLToPath(new URL('../../../shared/tools/check-eml.py', import.meta.url));

/** The interpreter check-eml.py is run with (Debian's, which has python3-dkim). */
export const PYTHON = '/usr/bin/python3';

/** How long a probe waits for a service before calling it unreachable. */
const PROBE_TIMEOUT_MS = 2_000;

/** A service the suites talk to, and what a probe found. */
export interface ServiceStatus {
  service: 'Postgres' | 'Redis';
  /** The URL probed, password masked. */
  url: string;
  /** The variable that points the suites at another server. */
  variable: 'TEST_DATABASE_URL' | 'TEST_REDIS_URL';
  reachable: boolean;
  /** Why not, e.g. ECONNREFUSED; undefined when reachable. */
  reason?: string | undefined;
}

/** Connects to Postgres and runs `select 1`, with a short timeout. */
export async function probePostgres(url: string = TEST_DATABASE_URL): Promise<ServiceStatus> {
  const status = { service: 'Postgres', url: maskPassword(url), variable: 'TEST_DATABASE_URL' } as const;
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: PROBE_TIMEOUT_MS });
  // A server that dies after connecting must not crash the process with an unhandled 'error'.
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('select 1');
    return { ...status, reachable: true };
  } catch (error) {
    return { ...status, reachable: false, reason: reasonOf(error) };
  } finally {
    await client.end().catch(() => {});
  }
}

/** Connects to Redis and sends PING (after AUTH when the URL has a password), with a short timeout. */
export async function probeRedis(url: string = TEST_REDIS_URL): Promise<ServiceStatus> {
  const status = { service: 'Redis', url: maskPassword(url), variable: 'TEST_REDIS_URL' } as const;
  try {
    await redisPing(new URL(url));
    return { ...status, reachable: true };
  } catch (error) {
    return { ...status, reachable: false, reason: reasonOf(error) };
  }
}

/** The one line a run prints for a service that does not answer. */
export function unreachableLine(status: ServiceStatus): string {
  const what = `${status.service} at ${status.url} is not reachable (${status.reason})`;
  if (SERVICES_REQUIRED) return `${what}: GAZETTE_TEST_SERVICES=required, so the ${status.service} suites fail; set ${status.variable} to one that is`;
  return `${what}: skipping the ${status.service} suites; set ${status.variable} to one that is (GAZETTE_TEST_SERVICES=required fails instead)`;
}

/** Whether the shared checker can run here: ../shared/tools/check-eml.py and /usr/bin/python3. */
export function checkEmlAvailable(): boolean {
  return existsSync(CHECK_EML) && existsSync(PYTHON);
}

/** The one line a run prints when the shared checker is not there. */
export function checkEmlMissingLine(): string {
  const missing = existsSync(CHECK_EML) ? `${PYTHON} not found` : `check-eml.py not found at ${CHECK_EML}`;
  return (
    `${missing}: skipping the shared bulk-sender checker; checkEml() reports come from the project's own ` +
    'tests/helpers/message-conformance.ts instead (the tests\' own checks still ran)'
  );
}

/** What the once-per-run probe found, handed to every test file through inject(). */
export interface ServicesReport {
  postgres: ServiceStatus;
  redis: ServiceStatus;
  checkEml: boolean;
}

declare module 'vitest' {
  export interface ProvidedContext {
    services: ServicesReport;
  }
}

/** vitest globalSetup: probes every service once per run and prints one line for each one missing. */
export async function setup(project: { provide(key: 'services', value: ServicesReport): void }): Promise<void> {
  const [postgres, redis] = await Promise.all([probePostgres(), probeRedis()]);
  const report: ServicesReport = { postgres, redis, checkEml: checkEmlAvailable() };
  for (const status of [postgres, redis]) if (!status.reachable) console.warn(unreachableLine(status));
  if (!report.checkEml) console.warn(checkEmlMissingLine());
  project.provide('services', report);
}

function redisPing(url: URL): Promise<void> {
  const port = Number(url.port || 6379);
  const host = url.hostname || '127.0.0.1';
  const commands: string[][] = [];
  if (url.password) commands.push(url.username ? ['AUTH', decodeURIComponent(url.username), decodeURIComponent(url.password)] : ['AUTH', decodeURIComponent(url.password)]);
  commands.push(['PING']);
  const request = commands.map((args) => `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`).join('');
  return new Promise((resolve, reject) => {
    const socket = url.protocol === 'rediss:' ? tls.connect({ host, port, servername: host }) : net.connect({ host, port });
    let answer = '';
    const done = (error?: Error) => {
      socket.destroy();
      if (error) reject(error);
      else resolve();
    };
    socket.setTimeout(PROBE_TIMEOUT_MS, () => done(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    socket.once(url.protocol === 'rediss:' ? 'secureConnect' : 'connect', () => socket.write(request));
    socket.on('data', (chunk) => {
      answer += chunk.toString('utf8');
      const error = /^-(.*)\r\n/m.exec(answer);
      if (error) done(new Error(error[1]));
      else if (answer.includes('+PONG\r\n')) done();
    });
    socket.on('error', (error) => done(error));
    socket.on('close', () => done(new Error('connection closed before PONG')));
  });
}

function reasonOf(error: unknown): string {
  // Node's happy-eyeballs connect (localhost: ::1 and 127.0.0.1) throws an AggregateError.
  const inner = error instanceof AggregateError && error.errors.length > 0 ? error.errors[0] : error;
  const { code, message } = inner as { code?: string; message?: string };
  if (code && /^E[A-Z]+$/.test(code)) return code;
  if (/timeout/i.test(message ?? '')) return 'ETIMEDOUT';
  return code ? `${code}: ${message}` : (message ?? String(inner));
}

function maskPassword(url: string): string {
  try {
    const parsed = new URL(url);
    if (!parsed.password) return url;
    parsed.password = '***';
    return parsed.toString();
  } catch {
    return url;
  }
}
