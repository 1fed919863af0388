import path from 'node:path';
import type { Command } from 'commander';
import type { Audience } from '../../model/edition.ts';
import { FREQUENCIES } from '../../model/subscriber.ts';
import { InputError } from '../../errors.ts';
import type { AppFactory } from '../main.ts';
import { withApp } from '../with-app.ts';
import { editionId } from './send.ts';

interface CreateFlags {
  story?: string;
  digest?: boolean;
  sinceLast?: boolean;
  list?: string;
  subject?: string;
  audience?: string;
}

/** `gazette edition create | list | show | preview | test`. */
export function registerEdition(program: Command, makeApp: AppFactory): void {
  const edition = program.command('edition').description('make, inspect, preview and test-send editions');

  edition
    .command('create')
    .description('make an edition (rendered once, kept for sending); prints its id on stdout')
    .option('--story <slug>', 'a single-story edition')
    .option('--digest', 'a digest of the latest stories')
    .option('--since-last', 'with --digest: the stories published since the list\'s last sent edition')
    .requiredOption('--list <slug>', 'the list it goes to')
    .option('--subject <text>', 'subject line (default: the story title, or the digest\'s)')
    .option('--audience <who>', `all subscribers of the list, or only those at one frequency (${FREQUENCIES.join(', ')})`, 'all')
    .action(
      withApp(makeApp, async (app, flags: CreateFlags) => {
        if (flags.sinceLast && !flags.digest) throw new InputError('--since-last goes with --digest');
        if (flags.audience !== 'all' && !FREQUENCIES.includes(flags.audience as never)) {
          throw new InputError(`--audience: expected all, ${FREQUENCIES.join(', ')}, got "${flags.audience}"`);
        }
        const { edition: created, leftOut } = await app.editions.create({
          list: flags.list!,
          story: flags.story,
          digest: flags.digest,
          sinceLast: flags.sinceLast,
          subject: flags.subject,
          audience: flags.audience as Audience,
        });
        // One invalid story holds back nothing: the edition is made of the valid ones, and the editor is told.
        if (leftOut) process.stderr.write(`${leftOut}\n`);
        const stories = created.storySlugs.length;
        process.stderr.write(`edition ${created.id}: "${created.subject}" to ${created.listSlug}, ${stories} ${stories === 1 ? 'story' : 'stories'}, ${(created.htmlBytes / 1024).toFixed(1)} KB HTML\n`);
        process.stdout.write(`${created.id}\n`);
      }),
    );

  edition
    .command('list')
    .description('editions, newest first')
    .option('--json', 'machine-readable output')
    .action(
      withApp(makeApp, async (app, flags: { json?: boolean }) => {
        const rows = await app.editions.list();
        if (flags.json) {
          const out = rows.map((r) => ({ id: r.id, list: r.listSlug, kind: r.kind, audience: r.audience, subject: r.subject, status: r.status, stories: r.storySlugs, createdAt: r.createdAt, completedAt: r.completedAt }));
          process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
          return;
        }
        for (const r of rows) process.stdout.write(`${String(r.id).padStart(5)}  ${r.status.padEnd(8)} ${r.kind.padEnd(6)} ${r.listSlug.padEnd(12)} ${r.subject}\n`);
      }),
    );

  edition
    .command('show')
    .description('an edition\'s details')
    .argument('<id>')
    .action(
      withApp(makeApp, async (app, id: string) => {
        const e = await app.editions.find(editionId(id));
        const { compiled, ...rest } = e;
        process.stdout.write(`${JSON.stringify({ ...rest, preheader: compiled.preheader, recipientFields: [...new Set(compiled.html.fields)] }, null, 2)}\n`);
      }),
    );

  edition
    .command('preview')
    .description('write the stored edition for a sample recipient (NAME.html, .txt, .eml)')
    .argument('<id>')
    .option('--out <dir>', 'output folder (default: <data dir>/preview)')
    .action(
      withApp(makeApp, async (app, id: string, flags: { out?: string }) => {
        const files = await app.editions.preview(editionId(id), path.resolve(flags.out ?? path.join(app.config.dataDir, 'preview')));
        process.stdout.write(`${files.html}\n${files.text}\n${files.eml}\n`);
      }),
    );

  edition
    .command('test')
    .description('send the edition to one address, marked as a test and not recorded as a delivery')
    .argument('<id>')
    .requiredOption('--to <email>', 'where the test goes')
    .action(
      withApp(makeApp, async (app, id: string, flags: { to: string }) => {
        const sent = await app.editions.sendTest(editionId(id), flags.to);
        process.stderr.write(`test of edition ${id} sent to ${sent.to} through ${sent.transport}\n`);
      }),
    );
}
