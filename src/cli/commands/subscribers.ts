import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Writable } from 'node:stream';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import type { App } from '../../app.ts';
import { InputError, NotFoundError, type GazetteError } from '../../errors.ts';
import { FREQUENCIES, type Frequency, type LiftedSuppression, type Subscriber, type SubscriberStatus, type SuppressionReason, type WithSuppression } from '../../model/subscriber.ts';
import { formatLists, subscriberJson } from '../../subscribers/csv-export.ts';
import { type ImportSummary } from '../../subscribers/csv-import.ts';
import type { AppFactory } from '../main.ts';
import { runWithApp } from '../with-app.ts';

const STATUSES: readonly SubscriberStatus[] = ['pending', 'active', 'unsubscribed', 'bounced', 'complained'];

const CONSENT_HELP = 'mark them active (confirmed) at once: use only for people whose consent to receive the newsletter you hold';

const REASON_WORDS: Record<SuppressionReason, string> = { bounced: 'bounced', complained: 'complained', manual: 'suppressed by hand' };

/** `gazette subscribers add | import | export | list | remove | unsuppress`: the operator's view of the subscriber base. */
export function registerSubscribers(program: Command, makeApp: AppFactory): void {
  const subscribers = program.command('subscribers').description('add, import, export, list and remove subscribers, and lift suppressions');

  subscribers
    .command('add')
    .description('add one subscriber; prints the new id (without --confirmed, a confirmation email is queued)')
    .argument('<email>', 'the address')
    .option('--name <name>', 'their name')
    .option('--list <slugs>', 'list slug(s), comma-separated (default: the first list in site.yaml)')
    .option('--frequency <f>', `how often: ${FREQUENCIES.join(', ')} (default: instant)`)
    .option('--confirmed', CONSENT_HELP)
    .action((email: string, flags: { name?: string; list?: string; frequency?: string; confirmed?: boolean }) =>
      runWithApp(makeApp, async (app) => {
        const added = await app.subscribers.add({
          email,
          name: flags.name,
          lists: flags.list,
          frequency: checkFrequency(flags.frequency),
          confirmed: flags.confirmed ?? false,
          source: 'cli',
        });
        process.stdout.write(`${added.id}\n`);
        if (!flags.confirmed) {
          process.stderr.write(`a confirmation email to ${email.trim()} is queued (a running \`gazette serve\` or \`gazette worker\` sends it): they are pending until they confirm\n`);
        }
      }),
    );

  subscribers
    .command('import')
    .description('import subscribers from a CSV file with a header row (email, and optionally name, lists, frequency)')
    .argument('<file>', 'the CSV file')
    .option('--list <slug>', 'list for rows without a lists column value (default: the first list in site.yaml)')
    .option('--frequency <f>', `frequency for rows that give none: ${FREQUENCIES.join(', ')} (default: instant)`)
    .option('--confirmed', CONSENT_HELP)
    .action((file: string, flags: { list?: string; frequency?: string; confirmed?: boolean }) =>
      runWithApp(makeApp, (app) => importFile(app, file, flags)),
    );

  subscribers
    .command('export')
    .description('write every subscriber as CSV on stdout (email, name, status, lists, created_at, confirmed_at, source)')
    .option('--list <slug>', 'only subscribers of this list')
    .action((flags: { list?: string }) =>
      runWithApp(makeApp, async (app) => {
        const list = flags.list === undefined ? undefined : await app.subscribers.knownList(flags.list, '--list');
        await toStdout((out) => app.subscribers.export(out, { list, end: false }));
      }),
    );

  subscribers
    .command('list')
    .description('list subscribers, oldest first')
    .option('--json', 'a JSON array (stable field names, for scripts)')
    .option('--status <status>', `only this status: ${STATUSES.join(', ')}`)
    .option('--list <slug>', 'only subscribers of this list')
    .action((flags: { json?: boolean; status?: string; list?: string }) =>
      runWithApp(makeApp, async (app) => {
        if (flags.status !== undefined && !STATUSES.includes(flags.status as SubscriberStatus)) {
          throw new InputError(`--status: expected one of ${STATUSES.join(', ')}, got "${flags.status}"`);
        }
        const list = flags.list === undefined ? undefined : await app.subscribers.knownList(flags.list, '--list');
        await toStdout((out) => listAll(app, out, { json: flags.json ?? false, status: flags.status as SubscriberStatus | undefined, list }));
      }),
    );

  subscribers
    .command('remove')
    .description('erase a subscriber: their row and subscriptions are deleted (personal data gone)')
    .argument('<email>', 'the address')
    .action((email: string) =>
      runWithApp(makeApp, async (app) => {
        const subscriber = await app.subscribers.remove(email);
        process.stdout.write(`removed ${subscriber.email} (subscriber ${subscriber.id}): personal data erased\n`);
      }),
    );

  subscribers
    .command('unsuppress')
    .description('take addresses off the suppression list so they are mailed again; a bounced subscriber with lists is active again')
    .argument('[emails...]', 'the addresses')
    .option('--edition <id>', 'lift every suppression the bounces of this edition caused (a relay that refused a whole send)')
    .action((emails: string[], flags: { edition?: string }) => runWithApp(makeApp, (app) => unsuppress(app, emails, flags.edition)));
}

/** Lifts each address (or one edition's bounces), one line each; an address that is not suppressed fails after the others are done. */
async function unsuppress(app: App, emails: string[], edition: string | undefined): Promise<void> {
  if (edition !== undefined && emails.length > 0) throw new InputError('give addresses or --edition ID, not both');
  if (edition !== undefined) {
    const lifted = await app.subscribers.unsuppressEdition(edition);
    process.stdout.write(
      lifted.length === 0
        ? `edition ${edition}: nothing to lift (none of its bounces is suppressed)\n`
        : `edition ${edition}: lifted ${lifted.length} suppression${lifted.length === 1 ? '' : 's'}\n${lifted.map(liftedLine).join('')}`,
    );
    return;
  }
  if (emails.length === 0) throw new InputError('give the addresses to lift, or --edition ID');
  const failures: GazetteError[] = [];
  for (const email of emails) {
    try {
      process.stdout.write(liftedLine(await app.subscribers.unsuppress(email)));
    } catch (error) {
      if (!(error instanceof InputError || error instanceof NotFoundError)) throw error;
      failures.push(error);
    }
  }
  // One line per address not lifted; the last is thrown, so main prints it and the exit code is 1.
  const last = failures.pop();
  for (const failure of failures) process.stderr.write(`gazette: ${failure.message}\n`);
  if (last) throw last;
}

function liftedLine(lifted: LiftedSuppression): string {
  // The detail is what a remote mail server said: no control characters on the operator's terminal.
  const detail = lifted.detail ? `: ${printable(lifted.detail)}` : '';
  const status = lifted.status ? `status now ${lifted.status}` : 'no subscriber has this address';
  return `lifted suppression of ${lifted.email} (${REASON_WORDS[lifted.reason]} on ${lifted.since.slice(0, 10)}${detail}); ${status}\n`;
}

function checkFrequency(value: string | undefined): Frequency | undefined {
  if (value === undefined) return undefined;
  if (!FREQUENCIES.includes(value as Frequency)) throw new InputError(`--frequency: expected one of ${FREQUENCIES.join(', ')}, got "${value}"`);
  return value as Frequency;
}


async function importFile(app: App, file: string, flags: { list?: string; frequency?: string; confirmed?: boolean }): Promise<void> {
  const size = await stat(file).then(
    (s) => (s.isFile() ? s.size : undefined),
    () => undefined,
  );
  if (size === undefined) throw new InputError(`${file}: no such file`);
  const bar = process.stderr.isTTY ? new cliProgress.SingleBar({ format: '{phase} [{bar}] {percentage}% | {rows} rows', stream: process.stderr }, cliProgress.Presets.shades_classic) : undefined;
  // The file is read twice, checked then stored (nothing is stored from a broken file): one bar over both passes.
  bar?.start(size * 2, 0, { phase: 'checking ', rows: 0 });
  let summary: ImportSummary;
  try {
    summary = await app.subscribers.import({
      open: () => createReadStream(file),
      list: flags.list,
      confirmed: flags.confirmed ?? false,
      frequency: checkFrequency(flags.frequency),
      onProgress: ({ phase, rows, bytes }) =>
        phase === 'validate' ? bar?.update(bytes, { phase: 'checking ', rows }) : bar?.update(size + bytes, { phase: 'importing', rows }),
    });
  } finally {
    bar?.stop();
  }
  for (const row of summary.invalid) process.stderr.write(`line ${row.line}: ${row.reason}\n`);
  const untold = summary.invalidCount - summary.invalid.length;
  if (untold > 0) process.stderr.write(`... and ${untold} more invalid rows\n`);
  const status = flags.confirmed ? 'active' : 'pending';
  process.stdout.write(
    `${path.basename(file)}: ${summary.rows} rows: ${summary.imported} imported as ${status}, ${summary.existing} already subscribed (unchanged), ` +
      `${summary.suppressed} suppressed (skipped), ${summary.invalidCount} invalid\n`,
  );
  if (!flags.confirmed && summary.imported > 0) {
    process.stdout.write('note: no confirmation email was sent to the imported subscribers; pending subscribers get no editions until they confirm\n');
  }
  if (summary.imported + summary.existing + summary.suppressed === 0 && summary.invalidCount > 0) {
    throw new InputError(`${path.basename(file)}: no row could be imported (${summary.invalidCount} invalid)`);
  }
}

/** Runs `write` against stdout; a reader that went away (`| head`) ends the command quietly. */
async function toStdout(write: (out: Writable) => Promise<void>): Promise<void> {
  const ignore = () => {};
  process.stdout.on('error', ignore);
  try {
    await write(process.stdout);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPIPE') throw error;
  } finally {
    process.stdout.off('error', ignore);
  }
}

/** Writes and waits until the text is handed to the OS, so memory stays flat and a closed pipe is noticed. */
function writeOut(out: Writable, text: string): Promise<void> {
  return new Promise((resolve, reject) => out.write(text, (error) => (error ? reject(error) : resolve())));
}

async function listAll(app: App, out: Writable, options: { json: boolean; status: SubscriberStatus | undefined; list: string | undefined }): Promise<void> {
  let count = 0;
  let suppressed = 0;
  await writeOut(out, options.json ? '[' : `${'ID'.padEnd(7)} ${'EMAIL'.padEnd(36)} ${'STATUS'.padEnd(13)} ${'LISTS'.padEnd(28)} NAME\n`);
  for await (const batch of app.subscribers.batches({ list: options.list, status: options.status })) {
    const text = batch
      .map((s) => {
        count += 1;
        if (s.suppression) suppressed += 1;
        return options.json ? `${count > 1 ? ',' : ''}\n  ${JSON.stringify(subscriberJson(s))}` : row(s);
      })
      .join('');
    await writeOut(out, text);
  }
  const marked = suppressed ? `, ${suppressed} suppressed (marked *: never mailed; \`gazette subscribers unsuppress EMAIL\` lifts it)` : '';
  await writeOut(out, options.json ? `${count ? '\n' : ''}]\n` : `${count} subscriber${count === 1 ? '' : 's'}${marked}\n`);
}

function row(s: WithSuppression<Subscriber>): string {
  const status = `${s.status}${s.suppression ? '*' : ''}`;
  return `${String(s.id).padEnd(7)} ${s.email.padEnd(36)} ${status.padEnd(13)} ${(formatLists(s.lists) || '-').padEnd(28)} ${printable(s.name ?? '')}\n`;
}

// Names come from a public form: control characters must not reach the operator's terminal.
function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}
