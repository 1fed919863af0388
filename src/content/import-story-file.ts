import { randomUUID } from 'node:crypto';
import { link, mkdir, readFile, readdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ContentError, InputError, type ContentIssue } from '../errors.ts';
import { parseYaml, splitFrontMatter } from './front-matter.ts';
import { importPlainText, type ImportedStory, type ImportTextOptions } from './import-text.ts';
import { parseStory } from './load-content.ts';

/** Where an imported story was written, and what it became. */
export interface ImportedStoryFile {
  path: string;
  imported: ImportedStory;
}

/** Imports a plain-text file as content/stories/<slug>.md; never overwrites a story, and writes a file that loads. */
export async function importStoryFile(inputFile: string, contentDir: string, options: ImportTextOptions): Promise<ImportedStoryFile> {
  const imported = importPlainText(await readInput(inputFile), options);
  const storiesDir = path.join(contentDir, 'stories');
  const target = path.join(storiesDir, `${imported.slug}.md`);
  const shown = path.join(path.basename(contentDir), 'stories', `${imported.slug}.md`);

  const issues: ContentIssue[] = [];
  parseStory(imported.markdown, shown, '', issues);
  if (issues.length > 0) throw new ContentError(issues);

  await checkContentDir(contentDir);
  await mkdir(storiesDir, { recursive: true });
  const taken = await storyWithSlug(storiesDir, imported.slug);
  if (taken) throw slugTaken(imported.slug, path.join(storiesDir, taken));
  await writeNew(target, imported.markdown, imported.slug);
  return { path: target, imported };
}

async function readInput(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a folder' : (code ?? String(error));
    throw new InputError(`cannot read ${file}: ${why}`);
  }
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
    const split = splitFrontMatter(await readFile(path.join(storiesDir, name), 'utf8').catch(() => ''));
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
