import path from 'node:path';
import type { Command } from 'commander';
import { describeLeftOut } from '../../content/load-content.ts';
import type { App } from '../../app.ts';
import type { MailingList, Site } from '../../content/model.ts';
import type { StoredEdition } from '../../store/editions-repo.ts';
import { createEdition } from '../../edition/create-edition.ts';
import { sampleMessage, writeSample } from '../../edition/write-preview.ts';
import { NotFoundError } from '../../errors.ts';
import { FREQUENCIES, type Audience } from '../../store/schema.ts';
import { parseEmailAddress } from '../../subscribers/email-address.ts';
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
        const content = await app.content();
        // One invalid story holds back nothing: the edition is made of the valid ones, and the editor is told.
        const leftOut = describeLeftOut(content);
        if (leftOut) process.stderr.write(`${leftOut}\n`);
        const result = await createEdition(
          { content, templates: await app.emailTemplates(), editions: await app.editions(), now: app.now(), publications: await app.publications() },
          { list: flags.list!, story: flags.story, digest: flags.digest, sinceLast: flags.sinceLast, subject: flags.subject, audience: flags.audience as Audience },
        );
        const created = (await (await app.editions()).find(result.id))!;
        process.stderr.write(`edition ${result.id}: "${created.subject}" to ${created.list_slug}, ${result.stories.length} ${result.stories.length === 1 ? 'story' : 'stories'}, ${(created.html_bytes / 1024).toFixed(1)} KB HTML\n`);
        process.stdout.write(`${result.id}\n`);
      }),
    );

  edition
    .command('list')
    .description('editions, newest first')
    .option('--json', 'machine-readable output')
    .action(
      withApp(makeApp, async (app, flags: { json?: boolean }) => {
        const rows = await (await app.editions()).list();
        if (flags.json) {
          const out = rows.map((r) => ({ id: r.id, list: r.list_slug, kind: r.kind, audience: r.audience, subject: r.subject, status: r.status, stories: JSON.parse(r.story_slugs) as string[], created_at: r.created_at, completed_at: r.completed_at }));
          process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
          return;
        }
        for (const r of rows) process.stdout.write(`${String(r.id).padStart(5)}  ${r.status.padEnd(8)} ${r.kind.padEnd(6)} ${r.list_slug.padEnd(12)} ${r.subject}\n`);
      }),
    );

  edition
    .command('show')
    .description('an edition\'s details')
    .argument('<id>')
    .action(
      withApp(makeApp, async (app, id: string) => {
        const e = await findEdition(app, editionId(id));
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
        const e = await findEdition(app, editionId(id));
        const { site, list } = await originOf(app, e);
        const result = await writeSample(
          { tokens: await app.tokens(), signMessage: await app.signMessage(), outDir: path.resolve(flags.out ?? path.join(app.config.dataDir, 'preview')), now: app.now() },
          site,
          list,
          e.compiled,
          `edition-${e.id}`,
        );
        process.stdout.write(`${result.files.html}\n${result.files.text}\n${result.files.eml}\n`);
      }),
    );

  edition
    .command('test')
    .description('send the edition to one address, marked as a test and not recorded as a delivery')
    .argument('<id>')
    .requiredOption('--to <email>', 'where the test goes')
    .action(
      withApp(makeApp, async (app, id: string, flags: { to: string }) => {
        const address = parseEmailAddress(flags.to);
        if ('error' in address) throw new InputError(`--to: ${address.error.replace(/^email: /, '')}`);
        const e = await findEdition(app, editionId(id));
        const { site, list } = await originOf(app, e);
        const { raw } = sampleMessage(await app.tokens(), site, list, e.compiled, app.now(), { id: 0, email: address.address, name: 'Test reader' }, { 'X-Gazette-Test': 'yes' }, '[TEST] ');
        const transport = await app.transport();
        await transport.send({ key: `test.e${e.id}.${app.now().getTime()}`, envelopeFrom: site.sender.address, to: address.address, raw: await (await app.signMessage())(raw) });
        process.stderr.write(`test of edition ${e.id} sent to ${address.address} through ${transport.name}\n`);
      }),
    );
}

/** Who an edition is sent as: its own frozen origin, or (made before origins were kept) site.yaml's. */
async function originOf(app: App, edition: StoredEdition): Promise<{ site: Pick<Site, 'baseUrl' | 'sender'>; list: MailingList }> {
  if (edition.origin) return { site: edition.origin, list: edition.origin.list };
  const { site } = await app.content();
  return { site, list: site.lists.find((l) => l.slug === edition.list_slug) ?? { slug: edition.list_slug, name: edition.list_slug, description: '' } };
}

async function findEdition(app: App, id: number) {
  const edition = await (await app.editions()).find(id);
  if (!edition) throw new NotFoundError(`no edition ${id}`);
  return edition;
}
