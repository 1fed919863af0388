import path from 'node:path';
import type { Command } from 'commander';
import { describeLeftOut } from '../../content/load-content.ts';
import { writePreview } from '../../edition/write-preview.ts';
import { InputError } from '../../errors.ts';
import type { AppFactory } from '../main.ts';

/** `gazette preview`: an edition rendered for a sample recipient, as .html, .txt and .eml files. */
export function registerPreview(program: Command, makeApp: AppFactory): void {
  program
    .command('preview')
    .description('render a story or a digest email for a sample recipient (NAME.html, NAME.txt, NAME.eml)')
    .option('--story <slug>', 'preview this story as a single-story edition')
    .option('--digest', 'preview a digest of the latest published stories')
    .option('--list <slug>', 'the list the edition is for (default: the first list in site.yaml)')
    .option('--out <dir>', 'output folder (default: <data dir>/preview)')
    .action(async (options: { story?: string; digest?: boolean; list?: string; out?: string }) => {
      if (options.story && options.digest) throw new InputError('--story and --digest: choose one');
      const app = makeApp();
      const content = await app.content();
      const leftOut = describeLeftOut(content);
      if (leftOut) process.stderr.write(`${leftOut}\n`);
      const result = await writePreview({
        content,
        templates: await app.emailTemplates(),
        tokens: await app.tokens(),
        signMessage: await app.signMessage(),
        outDir: path.resolve(options.out ?? path.join(app.config.dataDir, 'preview')),
        now: app.now(),
        story: options.story,
        digest: options.digest,
        list: options.list,
      });
      const shown = (file: string) => path.relative(process.cwd(), file);
      process.stdout.write(
        `preview "${result.name}" (${(result.htmlBytes / 1024).toFixed(1)} KB of HTML):\n` +
          `  ${shown(result.files.html)}\n  ${shown(result.files.text)}\n  ${shown(result.files.eml)}\n` +
          'its unsubscribe and preferences links belong to a made-up reader and lead nowhere; every other link is real\n',
      );
    });
}
