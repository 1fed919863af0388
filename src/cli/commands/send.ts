import type { Command } from 'commander';
import type { App } from '../../app.ts';
import { enqueueEdition, type EnqueueResult } from '../../edition/enqueue-edition.ts';
import { editionStatus, type EditionStatusReport } from '../../edition/edition-status.ts';
import { GazetteError, InputError } from '../../errors.ts';
import type { AppFactory } from '../main.ts';
import { withApp } from '../with-app.ts';
import { progressBar } from '../progress.ts';

/** Parses an edition id argument. */
export function editionId(value: string): number {
  const id = Number(value);
  if (!Number.isInteger(id) || id <= 0) throw new InputError(`expected an edition id (a positive whole number), got "${value}"`);
  return id;
}

/** `gazette send ID [--wait] [--include-new]` and `gazette status ID [--json]`. */
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
    .command('status')
    .description('show an edition\'s send: queued, sending, sent, failed, bounced, rate, ETA (exit 1 when paused, failed or incomplete)')
    .argument('<id>', 'edition id')
    .option('--json', 'machine-readable output')
    .action(
      withApp(makeApp, async (app, id: string, options: { json?: boolean }) => {
        const report = await statusOf(app, editionId(id));
        process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatStatus(report));
        const trouble = troubleOf(report);
        if (trouble) throw trouble;
      }),
    );
}

async function statusOf(app: App, id: number): Promise<EditionStatusReport> {
  return editionStatus({ editions: await app.editions(), deliveries: await app.deliveries() }, id, app.now());
}

async function sendEdition(app: App, id: number, flags: { wait: boolean; includeNew: boolean }): Promise<void> {
  const editions = await app.editions();
  const deliveries = await app.deliveries();
  const edition = await editions.find(id);
  const total = edition ? await deliveries.countEligible(edition.list_slug, edition.audience) : 0;
  const bar = progressBar(`enqueue #${id}`, total);
  const result = await enqueueEdition({ editions, deliveries, queue: await app.queue(), now: app.now }, id, {
    includeNew: flags.includeNew,
    onProgress: (added) => bar.update(added),
  });
  bar.stop();
  process.stderr.write(describeEnqueue(result, edition?.last_error ?? null, flags.includeNew));
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
  lines.push(`edition ${r.editionId}: ${r.enqueued} jobs queued`);
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
  const eta = r.etaSeconds === null ? 'unknown' : r.etaSeconds === 0 ? 'done' : `${Math.ceil(r.etaSeconds / 60)} min`;
  const paused = r.status === 'paused' && r.pauseKind ? ` (${r.pauseKind}${r.resumeAt ? `, retried from ${r.resumeAt}` : ''})` : '';
  const lines = [
    `edition ${r.id} (${r.list}): ${r.subject}`,
    `status:  ${r.status}${paused}${r.stalled ? ' (STALLED: no progress for 2 minutes)' : ''}`,
    `total ${r.total} · queued ${r.queued} · sending ${r.sending} · sent ${r.sent} · failed ${r.failed} · bounced ${r.bounced} · skipped ${r.skipped}`,
    `rate ${r.rate}/s · ETA ${eta}`,
  ];
  if (r.lastError) lines.push(`last error: ${r.lastError}`);
  return `${lines.join('\n')}\n`;
}
