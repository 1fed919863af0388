import path from 'node:path';
import type { Command } from 'commander';
import { publishedStories } from '../../model/content.ts';
import type { AppFactory } from '../main.ts';

/** `gazette build`: stories → feeds/ (rss.xml, feed.json, tags/<tag>.xml). */
export function registerBuild(program: Command, makeApp: AppFactory): void {
  program
    .command('build')
    .description('validate content/ and write the RSS, JSON and per-tag feeds')
    .option('--content <dir>', 'content folder (default: GAZETTE_CONTENT_DIR or ./content)')
    .option('--feeds <dir>', 'output folder (default: GAZETTE_FEEDS_DIR or ./feeds)')
    .action(async (options: { content?: string; feeds?: string }) => {
      const app = makeApp({
        contentDir: options.content && path.resolve(options.content),
        feedsDir: options.feeds && path.resolve(options.feeds),
      });
      // Feeds are the public record: an invalid story stops the build rather than vanish from them.
      // Loaded here, not with the program: a worker never needs the feed builders.
      const [{ requireValid }, { buildFeeds }, { writeFeeds }] = await Promise.all([import('../../content/load-content.ts'), import('../../feed/build-feeds.ts'), import('../../feed/write-feeds.ts')]);
      const content = requireValid(await app.content());
      const stories = publishedStories(content, app.now());
      const files = buildFeeds(content.site, stories, app.now());
      await writeFeeds(app.config.feedsDir, files);
      const tagFeeds = [...files.keys()].filter((name) => name.startsWith('tags/')).length;
      const left = content.stories.length - stories.length;
      process.stdout.write(
        `built ${path.relative(process.cwd(), app.config.feedsDir) || '.'}/: rss.xml, feed.json and ${tagFeeds} tag feeds ` +
          `from ${stories.length} ${stories.length === 1 ? 'story' : 'stories'}${left ? ` (${left} ${left === 1 ? 'draft or story scheduled for later' : 'drafts or stories scheduled for later'} left out)` : ''}\n`,
      );
    });
}
