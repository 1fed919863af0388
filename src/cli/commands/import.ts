import path from 'node:path';
import type { Command } from 'commander';
import type { AppFactory } from '../main.ts';

interface ImportFlags {
  slug?: string;
  date?: string;
  title?: string;
  author?: string;
  tags?: string;
  draft?: boolean;
  publish?: boolean;
  content?: string;
}

/** `gazette import FILE.txt`: a plain-text article → content/stories/<slug>.md. */
export function registerImport(program: Command, makeApp: AppFactory): void {
  program
    .command('import')
    .description('turn a plain-text article into a story file in content/stories/: a draft unless --date or --publish is given')
    .argument('<file>', 'the plain-text article')
    .option('--slug <slug>', 'file name and URL of the story (default: from the title)')
    .option('--date <iso>', 'publication date, ISO 8601 with timezone: the story is published then (default: now, and a draft)')
    .option('--title <title>', 'story title (default: the first heading-like line)')
    .option('--author <name>', 'author name')
    .option('--tags <list>', 'comma-separated tags')
    .option('--publish', 'publish the story (now, or at --date) instead of writing a draft')
    .option('--draft', 'keep the story a draft even with --date (a draft is kept out of the site, feeds and emails)')
    .option('--content <dir>', 'content folder (default: GAZETTE_CONTENT_DIR or ./content)')
    .action(async (file: string, flags: ImportFlags) => {
      const app = makeApp({ contentDir: flags.content && path.resolve(flags.content) });
      const { importStoryFile } = await import('../../content/import-story-file.ts');
      const result = await importStoryFile(path.resolve(file), app.config.contentDir, {
        slug: flags.slug,
        date: flags.date,
        title: flags.title,
        author: flags.author,
        tags: flags.tags?.split(',').map((tag) => tag.trim()).filter(Boolean),
        draft: flags.draft,
        publish: flags.publish,
        now: app.now(),
      });
      const shown = path.relative(process.cwd(), result.path);
      process.stdout.write(`wrote ${shown}${result.draft ? ' as a draft' : ''}\n`);
      if (result.draft) {
        process.stdout.write(`  it stays off the site, feeds and emails until published: set \`draft: false\` in ${shown} (or delete it and import again with --publish)\n`);
      }
      for (const guess of result.imported.guesses) {
        const value = guess.value.length > 90 ? `${guess.value.slice(0, 87)}...` : guess.value;
        const fix = ['summary', 'faq'].includes(guess.field) ? 'edit the file' : `--${guess.field} or edit the file`;
        process.stdout.write(`  guessed ${guess.field}: ${value}   (${fix})\n`);
      }
    });
}
