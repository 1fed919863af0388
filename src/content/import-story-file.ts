import { randomUUID } from 'node:crypto';
import { link, mkdir, readdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ContentError, GazetteError, InputError, type ContentIssue } from '../errors.ts';
import { parseYaml, splitFrontMatter } from './front-matter.ts';
import { importPlainText, type ImportedStory, type ImportTextOptions } from './import-text.ts';
import { parseStory } from './load-content.ts';
import { readTextFile } from './read-text-file.ts';

/** What the editor asked for an imported file; unlike importPlainText, the story is a draft unless told otherwise. */
export interface ImportStoryFileOptions extends ImportTextOptions {
  /**
   * Publish the story (at `date`, or now): writes no `draft: true`. Default: publish only when a
   * `date` is given, so an import never goes live by accident. `draft: true` keeps a dated story a draft.
   */
  publish?: boolean | undefined;
}

/** Where an imported story was written, and what it became. */
export interface ImportedStoryFile {
  path: string;
  imported: ImportedStory;
  /** True when the file says `draft: true`: kept out of the site, feeds and emails until it is set to false. */
  draft: boolean;
}

/** Imports a plain-text file as content/stories/<slug>.md; never overwrites a story, and writes a file that loads. */
export async function importStoryFile(inputFile: string, contentDir: string, options: ImportStoryFileOptions): Promise<ImportedStoryFile> {
  if (options.publish && options.draft) throw new InputError('--draft and --publish contradict each other: choose one');
  const draft = options.draft ?? !(options.publish || options.date !== undefined);
  const imported = importPlainText(await readInput(inputFile), { ...options, draft });
  const storiesDir = path.join(contentDir, 'stories');
  const target = path.join(storiesDir, `${imported.slug}.md`);
  const shown = path.join(path.basename(contentDir), 'stories', `${imported.slug}.md`);

  const issues: ContentIssue[] = [];
  parseStory(imported.markdown, shown, '', issues);
  if (issues.length > 0) throw new ContentError(issues);

  await checkContentDir(contentDir);
  try {
    await mkdir(storiesDir, { recursive: true });
    const taken = await storyWithSlug(storiesDir, imported.slug);
    if (taken) throw slugTaken(imported.slug, path.join(storiesDir, taken));
    await writeNew(target, imported.markdown, imported.slug);
  } catch (error) {
    if (error instanceof GazetteError) throw error;
    const code = (error as NodeJS.ErrnoException).code ?? '';
    const why = WRITE_ERRORS[code] ?? (error instanceof Error ? error.message : String(error));
    throw new GazetteError('STORY_WRITE_FAILED', `could not write ${target}: ${why}`, { cause: error });
  }
  return { path: target, imported, draft };
}

const WRITE_ERRORS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EEXIST: 'the stories folder is a file',
  ENOTDIR: 'the stories folder is a file',
  EROFS: 'the file system is read-only',
  ENOSPC: 'no space left on the device',
};

async function readInput(file: string): Promise<string> {
  const text = await readTextFile(file, { expected: 'a plain-text article' });
  if (typeof text === 'string') return text;
  const where = text.line === undefined ? file : `${file}:${text.line}`;
  throw new InputError(`cannot import ${where}: ${text.missing ? 'no such file' : text.problem}`);
}

async function checkContentDir(contentDir: string): Promise<void> {
  const found = await stat(contentDir).catch(() => undefined);
  if (!found?.isDirectory()) throw new InputError(`content folder ${contentDir} does not exist (set --content or GAZETTE_CONTENT_DIR)`);
}

/** Finds a story file already using `slug`, by file name (date prefix aside) or by its front matter. */
async function storyWithSlug(storiesDir: string, slug: string): Promise<string | undefined> {
  const names = (await readdir(storiesDir)).filter((name) => name.endsWith('.md')).sort();
  for (const name of names) {
    if (name.replace(/^\d{4}-\d{2}-\d{2}-/, '') === `${slug}.md`) return name;
    // An unreadable story (a folder, a pipe, a huge file) cannot claim the slug; loadContent reports it.
    const source = await readTextFile(path.join(storiesDir, name), { expected: 'a Markdown file' });
    const split = typeof source === 'string' ? splitFrontMatter(source) : undefined;
    const yaml = split ? parseYaml(split.yaml, name) : undefined;
    const data = yaml && 'data' in yaml ? yaml.data : undefined;
    if (typeof data === 'object' && data !== null && (data as { slug?: unknown }).slug === slug) return name;
  }
  return undefined;
}

function slugTaken(slug: string, file: string): InputError {
  return new InputError(`a story with slug "${slug}" already exists: ${file} (choose another with --slug)`);
}

/** Writes a temp file beside the target, then links it into place: the story appears whole, and never replaces one. */
async function writeNew(target: string, text: string, slug: string): Promise<void> {
  // The temp name does not end in .md, so a build running meanwhile never reads a half-written story.
  const temp = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}-${randomUUID()}.tmp`);
  await writeFile(temp, text, { encoding: 'utf8', flag: 'wx' });
  try {
    await link(temp, target);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw slugTaken(slug, target);
    // Some file systems have no hard links: fall back to check-then-rename.
    if (await stat(target).then(() => true, () => false)) throw slugTaken(slug, target);
    await rename(temp, target);
    return;
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}
