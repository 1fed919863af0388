import { setTimeout as sleepFor } from 'node:timers/promises';
import type { Command } from 'commander';
import type { App } from '../../app.ts';
import { type EnqueueResult } from '../../edition/enqueue-edition.ts';
import { type EditionStatusReport } from '../../edition/edition-status.ts';
import { type RecentEdition } from '../../edition/recent-editions.ts';
import { GazetteError, InputError } from '../../errors.ts';
import type { AppFactory } from '../main.ts';
import { withApp } from '../with-app.ts';
import { progressBar, type Progress } from '../progress.ts';

/** Parses an edition id argument. */
export function editionId(value: string): number {
  const id = Number(value);
  if (!Number.isInteger(id) || id <= 0) throw new InputError(`expected an edition id (a positive whole number), got "${value}"`);
  return id;
}

/** `gazette send ID [--wait] [--include-new]` and `gazette status [ID] [--json] [--watch]`. */
export function registerSend(program: Command, makeApp: AppFactory): void {
  program
    .command('send')
    .description('send an edition to every subscriber of its list; again: resume it if paused, retry failed deliveries (--wait: deliver it here, then exit)')
    .argument('<id>', 'edition id')
    .option('--wait', 'run a worker in this process until the edition is fully delivered')
    .option('--include-new', 'on an edition that already went out, also send it to subscribers who joined since')
    .action(
      withApp(makeApp, (app, id: string, options: { wait?: boolean; includeNew?: boolean }) =>
        sendEdition(app, editionId(id), { wait: options.wait ?? false, includeNew: options.includeNew ?? false }),
      ),
    );

  program
    .command('pause')
    .description('hold a send back: workers give its messages back unsent until `gazette send ID` resumes it')
    .argument('<id>', 'edition id')
    .option('--reason <text>', 'why, shown by `gazette status`')
    .action(
      withApp(makeApp, async (app, id: string, options: { reason?: string }) => {
        const edition = await app.editions.pause(editionId(id), options.reason);
        process.stderr.write(`edition ${edition.id}: paused (${edition.lastError}); \`gazette send ${edition.id}\` resumes it\n`);
      }),
    );

  program
    .command('status')
    .description('without an id: the 20 newest editions; with one: its send: queued, sending, sent, failed, bounced, rate, ETA (exit 1 when paused, failed or incomplete)')
    .argument('[id]', 'edition id (without one: list the newest editions)')
    .option('--json', 'machine-readable output')
    .option('--watch', 'print the status again every second (a progress bar on a terminal) until the edition is no longer sending')
    .action(
      withApp(makeApp, async (app, id: string | undefined, options: { json?: boolean; watch?: boolean }) => {
        if (id === undefined) {
          if (options.watch) throw new InputError('--watch follows one edition: gazette status ID --watch');
          const editions = await app.editions.recent();
          process.stdout.write(options.json ? `${JSON.stringify(editions, null, 2)}\n` : formatRecent(editions));
          return;
        }
        const edition = editionId(id);
        let report: EditionStatusReport;
        if (options.watch) {
          report = await watchHere(app, edition, options.json ?? false);
        } else {
          report = await statusOf(app, edition);
          process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatStatus(report));
        }
        const trouble = troubleOf(report);
        if (trouble) throw trouble;
      }),
    );
}

function statusOf(app: App, id: number): Promise<EditionStatusReport> {
  return app.editions.status(id);
}

async function sendEdition(app: App, id: number, flags: { wait: boolean; includeNew: boolean }): Promise<void> {
  const edition = await app.editions.find(id);
  const bar = progressBar(`enqueue #${id}`, await app.editions.audienceSize(id));
  const result = await app.editions.send(id, { includeNew: flags.includeNew, onProgress: (added) => bar.update(added) });
  bar.stop();
  process.stderr.write(describeEnqueue(result, edition.lastError, flags.includeNew));
  if (!flags.wait) return;
  await deliverHere(app, id);
  const report = await statusOf(app, id);
  process.stderr.write(formatStatus(report));
  const trouble = troubleOf(report);
  if (trouble) throw trouble;
}

/** What a send did, in words, one fact a line. */
function describeEnqueue(r: EnqueueResult, pausedFor: string | null, includeNew: boolean): string {
  const lines: string[] = [];
  if (r.resumed) lines.push(`edition ${r.editionId}: resumed (it was paused${pausedFor ? `: ${pausedFor}` : ''})`);
  if (r.alreadySent && !includeNew) {
    lines.push(`edition ${r.editionId}: it already went out, so nobody new was added (--include-new sends it to subscribers who joined since)`);
  } else if (r.alreadySent) {
    lines.push(`edition ${r.editionId}: ${r.added} new ${r.added === 1 ? 'subscriber gets' : 'subscribers get'} it`);
  } else {
    lines.push(`edition ${r.editionId}: ${r.added} deliveries added`);
  }
  if (r.requeued > 0) lines.push(`edition ${r.editionId}: ${r.requeued} failed ${r.requeued === 1 ? 'delivery' : 'deliveries'} queued again (bounces whose suppression was lifted included)`);
  const waiting = r.queued - r.enqueued;
  lines.push(`edition ${r.editionId}: ${r.enqueued} jobs queued${waiting > 0 ? ` (${waiting} more already waiting)` : ''}`);
  return `${lines.join('\n')}\n`;
}

// Runs a worker here until the edition has nothing left to send or is paused, with a bar read from the ledger.
async function deliverHere(app: App, id: number): Promise<void> {
  const first = await statusOf(app, id);
  const bar = progressBar(`send #${id}`, first.total);
  const ticker = setInterval(() => {
    statusOf(app, id).then((r) => bar.update(r.total - r.queued), () => {});
  }, 500);
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const worker = await app.worker({}, (event, details) => {
      if (event === 'paused' || event === 'error') process.stderr.write(`worker: ${event} ${JSON.stringify(details)}\n`);
    });
    await worker.run({
      signal: controller.signal,
      stopWhenIdle: async () => {
        const report = await statusOf(app, id);
        bar.update(report.total - report.queued);
        return report.queued === 0 || report.status === 'paused';
      },
    });
  } finally {
    clearInterval(ticker);
    bar.stop();
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
  if (controller.signal.aborted) {
    const report = await statusOf(app, id);
    if (report.queued > 0) throw new GazetteError('SEND_INTERRUPTED', `stopped; ${report.queued} still queued: run \`gazette send ${id} --wait\` (or a worker) to finish`);
  }
}

/** The error a send or status ends with when the edition needs attention, or undefined when it is fine. */
export function troubleOf(r: EditionStatusReport): GazetteError | undefined {
  if (r.status === 'paused') {
    if (r.pauseKind === 'outage') {
      const when = r.resumeAt ? ` from ${r.resumeAt}` : '';
      return new GazetteError(
        'SEND_PAUSED',
        `edition ${r.id} is paused by an outage: ${r.lastError ?? 'the mail server cannot be reached'}. Nothing was lost and no attempt was spent; a running \`gazette worker\` or \`gazette serve\` tries again by itself${when}, or resume it now with \`gazette send ${r.id} --wait\` once the server is back`,
      );
    }
    if (r.pauseKind === 'refused') {
      return new GazetteError(
        'SEND_PAUSED',
        `edition ${r.id} is paused because the mail server refuses us: ${r.lastError ?? 'no reason given'}. Nobody was suppressed; fix the SMTP settings (SMTP_URL, the sender address, the relay's permissions), then resume with \`gazette send ${r.id}\``,
      );
    }
    return new GazetteError('SEND_PAUSED', `edition ${r.id} is paused${r.lastError ? `: ${r.lastError}` : ''}; resume with \`gazette send ${r.id}\``);
  }
  if (r.status === 'failed' || r.status === 'incomplete') {
    return new GazetteError(
      'SEND_FAILED',
      `edition ${r.id} is ${r.status}: ${r.failed} of ${r.total} deliveries failed after every retry${r.lastError ? ` (${r.lastError})` : ''}; \`gazette send ${r.id}\` tries them again`,
    );
  }
  return undefined;
}

/** The human-readable status block. */
export function formatStatus(r: EditionStatusReport): string {
  const eta = r.status === 'paused' ? '— (paused)' : r.etaSeconds === null ? 'unknown' : r.etaSeconds === 0 ? 'done' : `${Math.ceil(r.etaSeconds / 60)} min`;
  const paused = r.status === 'paused' && r.pauseKind ? ` (${r.pauseKind}${r.resumeAt ? `, retried from ${r.resumeAt}` : ''})` : '';
  const lines = [
    `edition ${r.id} (${r.list}): ${r.subject}`,
    `status:  ${r.status}${paused}${r.stalled ? ' (STALLED: no progress for 2 minutes)' : ''}`,
    `total ${r.total} · queued ${r.queued} · sending ${r.sending} · sent ${r.sent} · failed ${r.failed} · bounced ${r.bounced} · skipped ${r.skipped}`,
    `rate ${r.rate}/s · ETA ${eta}`,
  ];
  const back = r.cameBack;
  if (back.hardBounces + back.softBounces + back.complaints + back.unsubscribes > 0) {
    lines.push(`came back: ${back.hardBounces} bounced later · ${back.softBounces} soft bounces · ${back.complaints} complaints · ${back.unsubscribes} unsubscribed by mail`);
  }
  if (r.lastError) lines.push(`last error: ${r.lastError}`);
  return `${lines.join('\n')}\n`;
}

/** How `gazette status ID --watch` waits and reports; the sleep is injected so tests need no real time. */
export interface WatchOptions {
  /** Time between two reads; default 1000 ms. */
  intervalMs?: number;
  /** Waits `ms`, ending early (without throwing) when `signal` aborts; default: a real timer. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Stops the watch (Ctrl-C): the last report read is returned. */
  signal?: AbortSignal;
  /** Hears every report read, the first and the last included. */
  onReport(report: EditionStatusReport): void;
}

/** Reads an edition's status every interval until it is no longer sending (or the signal aborts); returns the last report. */
export async function watchStatus(read: () => Promise<EditionStatusReport>, options: WatchOptions): Promise<EditionStatusReport> {
  const { intervalMs = 1000, sleep = realSleep, signal } = options;
  let report = await read();
  options.onReport(report);
  while (report.status === 'sending' && !signal?.aborted) {
    await sleep(intervalMs, signal);
    if (signal?.aborted) break;
    report = await read();
    options.onReport(report);
  }
  return report;
}

async function realSleep(ms: number, signal?: AbortSignal): Promise<void> {
  await sleepFor(ms, undefined, { signal }).catch(() => undefined);
}

// A bar on a terminal (then the final block); elsewhere each changed block (or one JSON line per change with --json).
async function watchHere(app: App, id: number, json: boolean): Promise<EditionStatusReport> {
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const terminal = !json && process.stderr.isTTY === true;
  let bar: { total: number; progress: Progress } | undefined;
  let last = '';
  try {
    const report = await watchStatus(() => statusOf(app, id), {
      signal: controller.signal,
      onReport: (r) => {
        if (terminal) {
          if (bar?.total !== r.total) {
            bar?.progress.stop();
            bar = { total: r.total, progress: progressBar(`send #${id}`, r.total) };
          }
          bar.progress.update(r.total - r.queued);
          return;
        }
        const text = json ? `${JSON.stringify(r)}\n` : formatStatus(r);
        // Rate and ETA aside, a send often stands still for seconds: print a block only when it changed.
        if (text !== last) process.stdout.write(json || last === '' ? text : `\n${text}`);
        last = text;
      },
    });
    bar?.progress.stop();
    if (terminal) process.stdout.write(formatStatus(report));
    return report;
  } finally {
    bar?.progress.stop();
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

/** The `gazette status` listing: one edition a line, newest first, subject last. */
export function formatRecent(editions: RecentEdition[]): string {
  if (editions.length === 0) return 'no editions yet (make one with gazette edition create)\n';
  const when = (iso: string | null) => (iso ? iso.replace(/\.\d{3}Z$/, 'Z') : '-');
  const rows = editions.map((e) => [
    String(e.id),
    e.list,
    e.kind,
    e.pauseKind ? `${e.status} (${e.pauseKind})` : e.status,
    `${e.sent}/${e.total}`,
    when(e.createdAt),
    when(e.completedAt),
    e.subject,
  ]);
  const header = ['ID', 'LIST', 'KIND', 'STATUS', 'SENT/TOTAL', 'CREATED', 'COMPLETED', 'SUBJECT'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : i === 0 || i === 4 ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ');
  return `${[header, ...rows].map(line).join('\n')}\n`;
}
