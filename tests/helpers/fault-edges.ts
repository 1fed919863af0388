import net from 'node:net';
import type { Kysely } from 'kysely';
import type { App, WorkerSettings } from '../../src/app.ts';
import type { Database } from '../../src/store/schema.ts';
import { afterThisTest, FAST } from './delivery-setup.ts';

// Helpers of the fault-edge suites: servers that are not there or never answer, and ways to
// watch a worker settle and to notice unhandled rejections.

/** A port on 127.0.0.1 nothing listens on: the kernel's pick, released at once (connections get ECONNREFUSED). */
export async function closedPort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = probe.address() as net.AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** A TCP server that takes every connection and never writes a byte: a relay hung before its greeting. */
export interface SilentServer {
  port: number;
  /** `smtp://127.0.0.1:PORT`. */
  url: string;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Connections still open. */
  readonly open: number;
  close(): Promise<void>;
}

/** Starts a SilentServer; it is closed (every socket destroyed) after the current test. */
export async function startSilentServer(): Promise<SilentServer> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    // Reads whatever the client says (nothing, before a greeting) and answers nothing.
    socket.resume();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  let closed: Promise<void> | undefined;
  const close = () =>
    (closed ??= new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    }));
  afterThisTest(close);
  return {
    port,
    url: `smtp://127.0.0.1:${port}`,
    get accepted() {
      return accepted;
    },
    get open() {
      return sockets.size;
    },
    close,
  };
}

/** Runs a worker until the edition is paused or has nothing queued (or `ms` pass, which throws). */
export async function deliverUntilSettled(app: App, editionId: number, settings: WorkerSettings = FAST, ms = 20_000): Promise<void> {
  const worker = await app.worker(settings);
  const deliveries = await app.adapters.deliveries();
  let settled = false;
  await worker.run({
    signal: AbortSignal.timeout(ms),
    stopWhenIdle: async () => (settled = (await deliveries.counts(editionId)).queued === 0 || (await editionRow(app, editionId)).status === 'paused'),
  });
  if (!settled) throw new Error(`edition ${editionId} neither paused nor finished within ${ms} ms`);
}

/** The addresses (keys) on the suppression list. */
export async function suppressedKeys(app: App): Promise<string[]> {
  return (await (await app.adapters.store()).db.selectFrom('suppressions').select('email_key').orderBy('email_key').execute()).map((r) => r.email_key);
}

/** Where an edition's send stands, read straight from its row (whatever the repositories make of it). */
export interface EditionState {
  status: string;
  pauseKind: string | null;
  resumeAt: string | null;
  outagePauses: number;
  lastError: string | null;
  completedAt: string | null;
}

/** The edition's send state, read from the editions table. */
export async function editionRow(app: App, id: number): Promise<EditionState> {
  return editionState((await app.adapters.store()).db, id);
}

/** The same over any database handle. */
export async function editionState(db: Kysely<Database>, id: number): Promise<EditionState> {
  const row = await db
    .selectFrom('editions')
    .select(['status', 'pause_kind', 'resume_at', 'outage_pauses', 'last_error', 'completed_at'])
    .where('id', '=', id)
    .executeTakeFirstOrThrow();
  return {
    status: row.status,
    pauseKind: row.pause_kind,
    resumeAt: row.resume_at,
    outagePauses: Number(row.outage_pauses ?? 0),
    lastError: row.last_error,
    completedAt: row.completed_at,
  };
}

/** One delivery, read from the deliveries table. */
export interface DeliveryState {
  subscriberId: number;
  status: string;
  attempts: number;
  lastError: string | null;
}

/** An edition's deliveries by subscriber id, read from the deliveries table. */
export async function deliveryStates(app: App, editionId: number): Promise<Map<number, DeliveryState>> {
  const rows = await (await app.adapters.store()).db
    .selectFrom('deliveries')
    .select(['subscriber_id', 'status', 'attempts', 'last_error'])
    .where('edition_id', '=', editionId)
    .execute();
  return new Map(rows.map((r) => [r.subscriber_id, { subscriberId: r.subscriber_id, status: r.status, attempts: Number(r.attempts), lastError: r.last_error }]));
}

/** A subscriber's status and consent timestamps, read from the subscribers table. */
export async function subscriberState(db: Kysely<Database>, by: { id: number } | { emailKey: string }) {
  const query = db.selectFrom('subscribers').select(['status', 'confirmed_at', 'unsubscribed_at']);
  const row = await ('id' in by ? query.where('id', '=', by.id) : query.where('email_key', '=', by.emailKey)).executeTakeFirstOrThrow();
  return { status: row.status, confirmedAt: row.confirmed_at, unsubscribedAt: row.unsubscribed_at };
}

/**
 * Records every 'unhandledRejection' of this process until stopped (after the test at the latest).
 * While it listens, vitest leaves such rejections to it (vitest only reports them when its own
 * listener is the only one), so a test can assert there were none.
 */
export function watchUnhandledRejections(): { readonly reasons: unknown[]; stop(): void } {
  const reasons: unknown[] = [];
  const listener = (reason: unknown) => void reasons.push(reason);
  process.on('unhandledRejection', listener);
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    process.off('unhandledRejection', listener);
  };
  afterThisTest(async () => stop());
  return { reasons, stop };
}

/** Lets every pending timer, immediate and I/O callback run: an unhandled rejection would be reported by then. */
export async function drainEventLoop(ms = 50): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
  await new Promise((resolve) => setImmediate(resolve));
}

/** Polls `check` every 25 ms until it holds; throws after `ms`. */
export async function waitFor(check: () => Promise<boolean> | boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`waited ${ms} ms for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
