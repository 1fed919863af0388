import type { Command } from 'commander';
import type { App } from '../../app.ts';
import { enqueueEdition } from '../../edition/enqueue-edition.ts';
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

/** `gazette send ID [--wait]` and `gazette status ID [--json]`. */
export function registerSend(program: Command, makeApp: AppFactory): void {
  program
    .command('send')
    .description('enqueue an edition for every subscriber of its list (--wait: also deliver it, then exit)')
    .argument('<id>', 'edition id')
    .option('--wait', 'run a worker in this process until the edition is fully delivered')
    .action(withApp(makeApp, (app, id: string, options: { wait?: boolean }) => sendEdition(app, editionId(id), options.wait ?? false)));

  program
    .command('status')
    .description('show an edition\'s send: queued, sending, sent, failed, bounced, rate, ETA')
    .argument('<id>', 'edition id')
    .option('--json', 'machine-readable output')
    .action(
      withApp(makeApp, async (app, id: string, options: { json?: boolean }) => {
        const report = await statusOf(app, editionId(id));
        process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatStatus(report));
      }),
    );
}

async function statusOf(app: App, id: number): Promise<EditionStatusReport> {
  return editionStatus({ editions: await app.editions(), deliveries: await app.deliveries(), queue: await app.queue() }, id, app.now());
}

async function sendEdition(app: App, id: number, wait: boolean): Promise<void> {
  const editions = await app.editions();
  const deliveries = await app.deliveries();
  const edition = await editions.find(id);
  const total = edition ? await deliveries.countEligible(edition.list_slug, edition.audience) : 0;
  const bar = progressBar(`enqueue #${id}`, total);
  const result = await enqueueEdition({ editions, deliveries, queue: await app.queue(), now: app.now }, id, (added) => bar.update(added));
  bar.stop();
  process.stderr.write(`edition ${id}: ${result.added} deliveries added, ${result.enqueued} jobs queued\n`);
  if (!wait) return;
  const sent = progressBar(`send #${id}`, (await statusOf(app, id)).total);
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const worker = await app.worker();
  let pausedError: string | null = null;
  await worker.run({
    signal: controller.signal,
    stopWhenIdle: async () => {
      const report = await statusOf(app, id);
      sent.update(report.total - report.queued);
      if (report.status === 'paused') pausedError = report.lastError;
      return report.queued === 0 || report.status === 'paused';
    },
  });
  sent.stop();
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  const report = await statusOf(app, id);
  process.stderr.write(formatStatus(report));
  if (pausedError) throw new GazetteError('SEND_PAUSED', `edition ${id} is paused: ${pausedError}`);
  if (controller.signal.aborted) throw new GazetteError('SEND_INTERRUPTED', `stopped; ${report.queued} still queued: run gazette send ${id} --wait (or a worker) to finish`);
}

/** The human-readable status block. */
export function formatStatus(r: EditionStatusReport): string {
  const eta = r.etaSeconds === null ? 'unknown' : r.etaSeconds === 0 ? 'done' : `${Math.ceil(r.etaSeconds / 60)} min`;
  const lines = [
    `edition ${r.id} (${r.list}): ${r.subject}`,
    `status:  ${r.status}${r.stalled ? ' (STALLED: no progress for 2 minutes)' : ''}`,
    `total ${r.total} · queued ${r.queued} · sending ${r.sending} · sent ${r.sent} · failed ${r.failed} · bounced ${r.bounced} · skipped ${r.skipped}`,
    `rate ${r.rate}/s · ETA ${eta}`,
  ];
  if (r.lastError) lines.push(`last error: ${r.lastError}`);
  return `${lines.join('\n')}\n`;
}
