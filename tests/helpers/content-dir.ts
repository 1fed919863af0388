import { cp, mkdtemp, readdir, rm, utimes, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll } from 'vitest';

/** The repository's templates/ folder. */
export const TEMPLATES_DIR = fileURLToPath(new URL('../../templates', import.meta.url));

/** The golden fixture: site.yaml plus the golden story. */
export const GOLDEN_DIR = fileURLToPath(new URL('../fixtures/golden', import.meta.url));

const made = new Set<string>();

/** Removes every folder tempContentDir made in this test file; runs by itself after the file's tests. */
export async function removeTempContentDirs(): Promise<void> {
  const dirs = [...made];
  made.clear();
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
}

// Registered when a test file first imports this helper: the file's last hook, after its suites' own.
afterAll(removeTempContentDirs);

/**
 * A throwaway content folder: the golden site.yaml plus the given story files. Removed after the
 * test file's tests (a test may remove it sooner).
 */
export async function tempContentDir(stories: Record<string, string>, options: { withGolden?: boolean } = {}): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gazette-content-'));
  made.add(dir);
  await cp(path.join(GOLDEN_DIR, 'site.yaml'), path.join(dir, 'site.yaml'));
  await mkdir(path.join(dir, 'stories'));
  if (options.withGolden) await cp(path.join(GOLDEN_DIR, 'stories', 'golden.md'), path.join(dir, 'stories', 'golden.md'));
  for (const [name, text] of Object.entries(stories)) await writeFile(path.join(dir, 'stories', name), text);
  await backdate(dir);
  return dir;
}

/**
 * Sets every file under `dir` to a 2001 mtime: tests run on fixed clocks in 2025, and a content
 * file edited "after now" would otherwise count as the latest change (Last-Modified).
 */
export async function backdate(dir: string): Promise<void> {
  const old = new Date('2001-01-01T00:00:00Z');
  for (const name of await readdir(dir, { recursive: true })) await utimes(path.join(dir, name), old, old);
}

/** A valid story file; `fields` replace or add front matter lines. */
export function storyFile(fields: Record<string, string> = {}, body = 'Body text.\n\n## Section\n\nMore text.\n'): string {
  const base: Record<string, string> = {
    title: '"A story"',
    date: '2025-07-01T08:00:00+02:00',
    author: '"Ann Writer"',
    summary: '"What it is about."',
    tags: '[World]',
    ...fields,
  };
  const lines = Object.entries(base)
    .filter(([, value]) => value !== '')
    .map(([key, value]) => `${key}: ${value}`);
  return `---\n${lines.join('\n')}\n---\n${body}`;
}
