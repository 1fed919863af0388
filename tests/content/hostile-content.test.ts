import { execFileSync, spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { cachedContentLoader } from '../../src/content/content-cache.ts';
import { importPlainText } from '../../src/content/import-text.ts';
import { importStoryFile } from '../../src/content/import-story-file.ts';
import { loadContent } from '../../src/content/load-content.ts';
import { ContentError, InputError, type ContentIssue } from '../../src/errors.ts';
import { storyFile, tempContentDir } from '../helpers/content-dir.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const IS_ROOT = process.getuid?.() === 0;
const HAS_MKFIFO = process.platform !== 'win32';
const now = new Date('2025-07-04T09:00:00Z');

// "Billion laughs": nine anchors, each nine aliases of the one before: 9^9 strings once expanded.
const ALIAS_BOMB = ['a: &a [x,x,x,x,x,x,x,x,x]']
  .concat([...'bcdefghi'].map((name, i) => `${name}: &${name} [${Array(9).fill(`*${'abcdefghi'[i]}`).join(',')}]`))
  .join('\n');

let dirs: string[] = [];

afterEach(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  dirs = [];
});

/** A temp content folder (golden site.yaml, the given stories), removed after the test. */
async function contentDir(stories: Record<string, string> = {}): Promise<string> {
  const dir = await tempContentDir(stories);
  dirs.push(dir);
  return dir;
}

async function scratchDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gazette-hostile-'));
  dirs.push(dir);
  return dir;
}

/**
 * The issues loadContent reports: the story files it left out, or (for site.yaml and stories/
 * itself) the ContentError it throws; fails the test on anything else.
 */
async function issuesOf(dir: string): Promise<ContentIssue[]> {
  const outcome: unknown = await loadContent(dir).then(
    (content) => content.problems,
    (e: unknown) => e,
  );
  if (Array.isArray(outcome)) {
    expect(outcome.length, 'expected loadContent to report problems').toBeGreaterThan(0);
    return outcome as ContentIssue[];
  }
  expect(outcome).toBeInstanceOf(ContentError);
  return (outcome as ContentError).issues;
}

/** The one issue loadContent reports, checked to name `name` under stories/ (or at the content root). */
async function oneIssue(dir: string, name: string): Promise<ContentIssue> {
  const issues = await issuesOf(dir);
  expect(issues).toHaveLength(1);
  expect(issues[0]!.file).toBe(path.join(path.basename(dir), name));
  return issues[0]!;
}

function stories(dir: string, name = ''): string {
  return path.join(dir, 'stories', name);
}

describe('files that are not readable text become one issue each', () => {
  it('a symlink loop in stories/', async () => {
    const dir = await contentDir();
    await symlink('loop.md', stories(dir, 'loop.md'));
    const issue = await oneIssue(dir, 'stories/loop.md');
    expect(issue.message).toBe('is a symlink loop (following its links never reaches a file)');
  });

  it('a symlinked folder pointing at its parent: no hang, and a .md one is reported as a directory', async () => {
    const dir = await contentDir({ 'ok.md': storyFile() });
    await symlink('..', stories(dir, 'parent'));
    await symlink('.', stories(dir, 'self'));
    expect((await loadContent(dir)).stories).toHaveLength(1);
    await symlink('..', stories(dir, 'up.md'));
    expect((await oneIssue(dir, 'stories/up.md')).message).toBe('is a directory, expected a Markdown file');
  });

  it('a directory named x.md', async () => {
    const dir = await contentDir();
    await mkdir(stories(dir, 'x.md'));
    const issue = await oneIssue(dir, 'stories/x.md');
    expect(issue.message).toBe('is a directory, expected a Markdown file');
    expect((await issuesOf(dir)).length).toBe(1);
  });

  it('a dangling symlink, as a story and as site.yaml', async () => {
    const dir = await contentDir();
    await symlink('gone.md', stories(dir, 'dangling.md'));
    expect((await oneIssue(dir, 'stories/dangling.md')).message).toBe('is a broken symlink (it points to gone.md, which does not exist)');
    await rm(path.join(dir, 'site.yaml'));
    await symlink('nowhere.yaml', path.join(dir, 'site.yaml'));
    const issues = await issuesOf(dir);
    expect(issues.map((i) => i.file)).toEqual([path.join(path.basename(dir), 'site.yaml'), path.join(path.basename(dir), 'stories/dangling.md')]);
    expect(issues[0]!.message).toMatch(/^is a broken symlink \(it points to nowhere\.yaml/);
  });

  it.skipIf(IS_ROOT)('an unreadable story and site.yaml (EACCES; skipped when run as root, who reads any file: the CLI test below covers it as another user)', async () => {
    const dir = await contentDir({ 'secret.md': storyFile() });
    await chmod(stories(dir, 'secret.md'), 0o000);
    await chmod(path.join(dir, 'site.yaml'), 0o000);
    const issues = await issuesOf(dir);
    expect(issues.map((i) => [i.file, i.message])).toEqual([
      [path.join(path.basename(dir), 'site.yaml'), 'cannot be read: permission denied'],
      [path.join(path.basename(dir), 'stories/secret.md'), 'cannot be read: permission denied'],
    ]);
  });

  it.skipIf(!HAS_MKFIFO)('a named pipe and a device are refused without blocking', async () => {
    const dir = await contentDir();
    execFileSync('mkfifo', [stories(dir, 'pipe.md')]);
    await symlink('/dev/zero', stories(dir, 'zero.md'));
    const issues = await issuesOf(dir);
    expect(issues.map((i) => i.message)).toEqual(['is a named pipe, expected a Markdown file', 'is a device, expected a Markdown file']);
  });

  it('a 200 MB story is refused unread', async () => {
    const dir = await contentDir();
    // Sparse: the size is 200 MB, the disk use nothing; reading it would still take seconds.
    await writeFile(stories(dir, 'huge.md'), storyFile());
    await truncate(stories(dir, 'huge.md'), 200 * 1024 * 1024);
    const started = Date.now();
    expect((await oneIssue(dir, 'stories/huge.md')).message).toBe('is too large (200 MB; at most 5 MB is allowed)');
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('invalid UTF-8, binary junk, a NUL byte and UTF-16, with the line to look at', async () => {
    const dir = await contentDir();
    const text = Buffer.from(storyFile({}, 'Intro.\n\nCaf\u00e9 au lait.\n'));
    await writeFile(stories(dir, 'latin1.md'), Buffer.from(text.toString('utf8'), 'latin1'));
    await writeFile(stories(dir, 'nul.md'), Buffer.concat([text, Buffer.from('\n\0\n')]));
    await writeFile(stories(dir, 'junk.md'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0xff]));
    await writeFile(stories(dir, 'utf16.md'), Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text.toString('utf8'), 'utf16le')]));
    const issues = await issuesOf(dir);
    const shown = (name: string) => path.join(path.basename(dir), 'stories', name);
    expect(issues).toEqual([
      { file: shown('junk.md'), field: '', line: 3, message: 'contains a NUL byte: expected UTF-8 text, not a binary file' },
      {
        file: shown('latin1.md'),
        field: '',
        line: 10,
        message: 'is not valid UTF-8 (a binary file, or text in another encoding such as Latin-1): save it as UTF-8',
      },
      { file: shown('nul.md'), field: '', line: 12, message: 'contains a NUL byte: expected UTF-8 text, not a binary file' },
      { file: shown('utf16.md'), field: '', line: 1, message: 'is UTF-16 text: save it as UTF-8' },
    ]);
  });

  it('a broken site.yaml and stories/ folder are named too', async () => {
    const dir = await contentDir();
    await rm(path.join(dir, 'site.yaml'));
    await mkdir(path.join(dir, 'site.yaml'));
    await rm(stories(dir), { recursive: true });
    await symlink('stories', stories(dir));
    const issues = await issuesOf(dir);
    expect(issues.map((i) => i.message)).toEqual([
      'is a directory, expected the site configuration (a YAML file)',
      'is a symlink loop (following its links never reaches a file), expected a folder of .md stories',
    ]);
  });
});

describe('YAML that would exhaust memory or the stack', () => {
  it('an alias bomb in front matter is reported at its first alias, fast', async () => {
    const source = `---\ntitle: "Bomb"\n${ALIAS_BOMB}\n---\nBody.\n`;
    const dir = await contentDir({ 'bomb.md': source });
    const started = Date.now();
    const issue = await oneIssue(dir, 'stories/bomb.md');
    expect(Date.now() - started).toBeLessThan(1000);
    // Line 1 is ---, 2 the title, 3 `a: &a`, 4 the first alias.
    expect(issue.line).toBe(4);
    expect(issue.message).toMatch(/^invalid YAML: its aliases \(from \*a on\) expand to too many copies .*billion laughs/);
  });

  it('an alias bomb in site.yaml', async () => {
    const dir = await contentDir();
    await writeFile(path.join(dir, 'site.yaml'), `title: x\n${ALIAS_BOMB}\n`);
    const issue = await oneIssue(dir, 'site.yaml');
    expect(issue.line).toBe(3);
    expect(issue.message).toMatch(/billion laughs/);
  });

  it('front matter nested 50,000 levels deep', async () => {
    const dir = await contentDir({ 'deep.md': `---\ntitle: ${'['.repeat(50_000)}${']'.repeat(50_000)}\n---\nBody.\n` });
    const issue = await oneIssue(dir, 'stories/deep.md');
    expect(issue.message).toBe('invalid YAML: nested too deeply to read');
    expect(issue.line).toBe(2);
  });
});

describe('Markdown nested too deeply for marked is refused before it overflows the stack', () => {
  const deep: Record<string, string> = {
    '50,000 nested block quotes': `${'>'.repeat(50_000)} deep\n`,
    'spaced block quotes': `${'> '.repeat(5_000)}deep\n`,
    'lists nested on one line': `${'- '.repeat(5_000)}deep\n`,
    'ordered lists nested on one line': `${'1. '.repeat(5_000)}deep\n`,
    'lists nested by indentation': Array.from({ length: 1_000 }, (_, i) => `${' '.repeat(2 * i)}- item`).join('\n'),
    'emphasis opened 5,000 times': `${'*a '.repeat(5_000)}deep${' a*'.repeat(5_000)}\n`,
    'a 50,000-long emphasis run': `${'_'.repeat(50_000)}deep${'_'.repeat(50_000)}\n`,
    'quotes and lists mixed': `${'> - '.repeat(2_000)}deep\n`,
  };
  for (const [what, body] of Object.entries(deep)) {
    it(what, async () => {
      const dir = await contentDir({ 'deep.md': storyFile({}, `Intro.\n\n${body}`) });
      const started = Date.now();
      const issue = await oneIssue(dir, 'stories/deep.md');
      expect(Date.now() - started).toBeLessThan(1000);
      expect(issue.field).toBe('body');
      // The front matter takes lines 1-7, the intro 8 and the blank line 9.
      expect(issue.line).toBeGreaterThanOrEqual(10);
      expect(issue.message).toMatch(/^the Markdown is nested too deeply to render \(\d+ levels; at most 100 levels are allowed\)$/);
    });
  }

  it('names the depth and the line of 50,000 block quotes exactly', async () => {
    const dir = await contentDir({ 'deep.md': storyFile({}, `Intro.\n\n${'>'.repeat(50_000)} deep\n`) });
    expect(await oneIssue(dir, 'stories/deep.md')).toMatchObject({
      line: 10,
      message: 'the Markdown is nested too deeply to render (50000 levels; at most 100 levels are allowed)',
    });
  });

  it('leaves ordinary nesting, and 50,000 nested brackets marked copes with, alone', async () => {
    const nested = '> quote\n>\n> - item\n>   - sub-item with *emphasis and **strong** text*\n';
    const brackets = `${'['.repeat(50_000)}x${']'.repeat(50_000)}\n`;
    const dir = await contentDir({ 'ok.md': storyFile({}, `Intro.\n\n${nested}\n${brackets}`) });
    const started = Date.now();
    const [story] = (await loadContent(dir)).stories;
    expect(Date.now() - started).toBeLessThan(1500);
    expect(story!.bodyHtml).toContain('<blockquote>');
  });
});

describe('every problem at once, and through every reader', () => {
  async function hostileDir(): Promise<string> {
    const dir = await contentDir({
      'good.md': storyFile(),
      'bomb.md': `---\n${ALIAS_BOMB}\n---\nBody.\n`,
      'deep.md': storyFile({}, `${'>'.repeat(50_000)}\n`),
      'nul.md': 'a\0b',
    });
    await symlink('loop.md', stories(dir, 'loop.md'));
    await mkdir(stories(dir, 'x.md'));
    return dir;
  }

  it('loadContent reports one issue per bad file, in file order', async () => {
    const dir = await hostileDir();
    const issues = await issuesOf(dir);
    expect(issues.map((i) => path.basename(i.file))).toEqual(['bomb.md', 'deep.md', 'loop.md', 'nul.md', 'x.md']);
    const message = new ContentError(issues).message.split('\n');
    expect(message).toHaveLength(5);
    expect(message[4]).toBe(`${path.basename(dir)}/stories/x.md: is a directory, expected a Markdown file`);
  });

  it('the cached loader (the server and worker) leaves the same files out, with the same problems', async () => {
    const dir = await hostileDir();
    const load = cachedContentLoader(dir, {});
    const { problems } = await load();
    expect(new ContentError(problems).message).toMatch(/loop\.md: is a symlink loop/);
    expect(problems).toEqual(await issuesOf(dir));
  });

  it('gazette build prints one line per problem and exits 1, without a stack trace', { timeout: 60_000 }, async () => {
    const dir = await hostileDir();
    const out = await scratchDir();
    const run = await gazette(['build', '--content', dir, '--feeds', path.join(out, 'feeds')], out);
    expect(run.code).toBe(1);
    expect(run.stderr).not.toMatch(/^\s+at /m);
    const lines = run.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(5);
    expect(lines[0]).toMatch(/^gazette: .*\/stories\/bomb\.md:3: invalid YAML: its aliases/);
    expect(lines[2]).toBe(`${path.basename(dir)}/stories/loop.md: is a symlink loop (following its links never reaches a file)`);
    expect(await readdir(out)).not.toContain('feeds');
  });

  it.runIf(IS_ROOT)('gazette build as an ordinary user names the files it may not read', { timeout: 60_000 }, async () => {
    const dir = await contentDir({ 'secret.md': storyFile() });
    await chmod(dir, 0o755);
    await chmod(stories(dir), 0o755);
    await chmod(stories(dir, 'secret.md'), 0o000);
    const out = await scratchDir();
    await chmod(out, 0o777);
    const run = await gazette(['build', '--content', dir, '--feeds', path.join(out, 'feeds')], out, 65534);
    expect(run.stderr).not.toMatch(/^\s+at /m);
    expect(run.stderr).toBe(`gazette: ${path.basename(dir)}/stories/secret.md: cannot be read: permission denied\n`);
    expect(run.code).toBe(1);
  });
});

describe('the importer refuses what it cannot read as text, in one line', () => {
  it('a folder, a binary file, a huge file and a pipe', async () => {
    const dir = await contentDir();
    const scratch = await scratchDir();
    const input = (name: string) => path.join(scratch, name);
    await mkdir(input('folder.txt'));
    await writeFile(input('binary.txt'), Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x00]));
    await writeFile(input('huge.txt'), '');
    await truncate(input('huge.txt'), 6 * 1024 * 1024);
    const cases: [string, RegExp][] = [
      ['folder.txt', /folder\.txt: is a directory, expected a plain-text article$/],
      ['binary.txt', /binary\.txt:1: contains a NUL byte/],
      ['huge.txt', /huge\.txt: is too large \(6 MB; at most 5 MB is allowed\)$/],
      ['missing.txt', /missing\.txt: no such file$/],
    ];
    if (HAS_MKFIFO) {
      execFileSync('mkfifo', [input('pipe.txt')]);
      cases.push(['pipe.txt', /pipe\.txt: is a named pipe, expected a plain-text article$/]);
    }
    for (const [name, message] of cases) {
      const attempt = importStoryFile(input(name), dir, { now });
      await expect(attempt).rejects.toBeInstanceOf(InputError);
      await expect(attempt).rejects.toThrow(message);
    }
  });

  it.skipIf(!HAS_MKFIFO)('a pipe or loop among the stories does not hang the slug check', async () => {
    const dir = await contentDir();
    execFileSync('mkfifo', [stories(dir, 'pipe.md')]);
    await symlink('loop.md', stories(dir, 'loop.md'));
    const scratch = await scratchDir();
    await writeFile(path.join(scratch, 'a.txt'), 'A Title\n\nSome text.\n');
    const result = await importStoryFile(path.join(scratch, 'a.txt'), dir, { now });
    expect(path.basename(result.path)).toBe('a-title.md');
  });

  it('text built to be slow (mostly blank lines, one huge paragraph) imports fast', () => {
    const started = Date.now();
    importPlainText(`${'\n'.repeat(100_000)}Title\n\nSome text.\n`, { now });
    importPlainText(`Title\n\nThe ${'word Name '.repeat(50_000)}end.\n`, { now });
    importPlainText(`Title\n\n${')'.repeat(100_000)}\n\nEnd.\n`, { now });
    expect(Date.now() - started).toBeLessThan(1500);
  });
});

interface Run {
  code: number | null;
  stderr: string;
}

/** Runs the real CLI; its temp files (tsx's cache) go under `scratch`, which the test removes. */
async function gazette(args: string[], scratch: string, uid?: number): Promise<Run> {
  await mkdir(path.join(scratch, 'tmp'), { mode: 0o777 });
  await chmod(path.join(scratch, 'tmp'), 0o777);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin/gazette.js'), ...args], {
      cwd: scratch,
      env: { PATH: process.env.PATH, HOME: scratch, TMPDIR: path.join(scratch, 'tmp'), GAZETTE_DATA_DIR: path.join(scratch, 'data') },
      stdio: ['ignore', 'ignore', 'pipe'],
      ...(uid === undefined ? {} : { uid, gid: uid }),
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}
