import path from 'node:path';
import type { Command } from 'commander';
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
      let result;
      try {
        const made = await app.editions.previewContent({ story: options.story, digest: options.digest, list: options.list }, path.resolve(options.out ?? path.join(app.config.dataDir, 'preview')));
        if (made.leftOut) process.stderr.write(`${made.leftOut}\n`);
        result = made.preview;
      } finally {
        await app.close();
      }
      const shown = (file: string) => path.relative(process.cwd(), file);
      process.stdout.write(
        `preview "${result.name}" (${(result.htmlBytes / 1024).toFixed(1)} KB of HTML):\n` +
          `  ${shown(result.files.html)}\n  ${shown(result.files.text)}\n  ${shown(result.files.eml)}\n` +
          'its unsubscribe and preferences links belong to a made-up reader and lead nowhere; every other link is real\n',
      );
    });
}
