import { readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { importStoryFile } from '../../src/content/import-story-file.ts';
import { loadContent } from '../../src/content/load-content.ts';
import { publishedStories } from '../../src/model/content.ts';
import { InputError } from '../../src/errors.ts';
import { gazette } from '../helpers/cli.ts';
import { tempContentDir } from '../helpers/content-dir.ts';

// Every run starts a Node process that loads the whole app through tsx: seconds each on a busy machine.
const SLOW = 180_000;
const ARTICLE = 'Harbour Cranes Return\n\nThe cranes at the harbour are working again after a month of repairs.\n\nMore text follows here.\n';

/** A content folder (golden site.yaml, no stories) with the article to import beside it. */
async function folder(): Promise<{ contentDir: string; input: string; env: Record<string, string> }> {
  const contentDir = await tempContentDir({});
  const input = path.join(contentDir, 'article.txt');
  await writeFile(input, ARTICLE);
  return { contentDir, input, env: { GAZETTE_CONTENT_DIR: contentDir, GAZETTE_DATA_DIR: path.join(contentDir, 'data') } };
}

const storyText = (contentDir: string, slug: string) => readFile(path.join(contentDir, 'stories', `${slug}.md`), 'utf8');

describe('gazette import', () => {
  it('writes a draft by default, says so and how to publish it; the site does not show it', async () => {
    const { contentDir, input, env } = await folder();
    const run = await gazette(['import', input], env);
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout.split('\n');
    expect(lines[0]).toMatch(/^wrote .*stories\/harbour-cranes-return\.md as a draft$/);
    expect(lines[1]).toMatch(/^ {2}it stays off the site, feeds and emails until published: set `draft: false` in .*harbour-cranes-return\.md \(or delete it and import again with --publish\)$/);
    expect(await storyText(contentDir, 'harbour-cranes-return')).toContain('\ndraft: true\n');
    const content = await loadContent(contentDir);
    expect(content.stories.map((s) => [s.slug, s.draft])).toEqual([['harbour-cranes-return', true]]);
    expect(publishedStories(content, new Date(Date.now() + 60_000))).toEqual([]);
  }, SLOW);

  it('publishes with --date (at that date) or --publish (now); --draft keeps a dated story a draft', async () => {
    const { contentDir, input, env } = await folder();
    const [dated, now, datedDraft] = await Promise.all([
      gazette(['import', input, '--slug', 'dated', '--date', '2025-07-03T21:00:00Z'], env),
      gazette(['import', input, '--slug', 'now', '--publish'], env),
      gazette(['import', input, '--slug', 'dated-draft', '--date', '2025-07-03T21:00:00Z', '--draft'], env),
    ]);
    for (const run of [dated, now, datedDraft]) expect(run.code, run.stderr).toBe(0);
    expect(dated.stdout.split('\n')[0]).toMatch(/stories\/dated\.md$/);
    expect(dated.stdout).not.toContain('draft');
    expect(now.stdout).not.toContain('draft');
    expect(datedDraft.stdout.split('\n')[0]).toMatch(/stories\/dated-draft\.md as a draft$/);
    expect(await storyText(contentDir, 'dated')).not.toContain('draft');
    expect(await storyText(contentDir, 'now')).not.toContain('draft');
    expect(await storyText(contentDir, 'dated-draft')).toContain('\ndraft: true\n');
    const content = await loadContent(contentDir);
    expect(publishedStories(content, new Date(Date.now() + 60_000)).map((s) => s.slug).sort()).toEqual(['dated', 'now']);
  }, SLOW);

  it('refuses --draft with --publish, writing nothing', async () => {
    const { contentDir, input, env } = await folder();
    const run = await gazette(['import', input, '--draft', '--publish'], env);
    expect(run).toMatchObject({ code: 1, stdout: '', stderr: 'gazette: --draft and --publish contradict each other: choose one\n' });
    expect(await readdir(path.join(contentDir, 'stories'))).toEqual([]);
  }, SLOW);
});

describe('importStoryFile draft rule', () => {
  const now = new Date('2025-07-04T09:00:00Z');

  it('is a draft unless a date or publish is given; draft wins over a date, and publish with draft is refused', async () => {
    const { contentDir, input } = await folder();
    const cases: [string, Parameters<typeof importStoryFile>[2], boolean][] = [
      ['plain', { now }, true],
      ['dated', { now, date: '2025-07-01T08:00:00Z' }, false],
      ['published', { now, publish: true }, false],
      ['dated-draft', { now, date: '2025-07-01T08:00:00Z', draft: true }, true],
      ['explicitly-not-draft', { now, draft: false }, false],
    ];
    for (const [slug, options, draft] of cases) {
      const result = await importStoryFile(input, contentDir, { ...options, slug });
      expect([slug, result.draft, result.imported.frontMatter.draft === true]).toEqual([slug, draft, draft]);
    }
    await expect(importStoryFile(input, contentDir, { now, slug: 'both', draft: true, publish: true })).rejects.toThrow(InputError);
  });
});
