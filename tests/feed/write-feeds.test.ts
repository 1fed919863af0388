import { mkdtemp, readFile, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GazetteError } from '../../src/errors.ts';
import { writeFeeds } from '../../src/feed/write-feeds.ts';

let root: string;
let feedsDir: string;

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'gazette-feeds-'));
  feedsDir = path.join(root, 'public', 'feeds');
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Every file under dir, as relative path → content. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const files: Record<string, string> = {};
  for (const entry of entries.filter((e) => e.isFile())) {
    const file = path.join(entry.parentPath, entry.name);
    files[path.relative(dir, file).split(path.sep).join('/')] = await readFile(file, 'utf8');
  }
  return files;
}

const first = new Map([
  ['rss.xml', '<rss>1</rss>'],
  ['feed.json', '{"v":1}'],
  ['tags/old-tag.xml', '<rss>old</rss>'],
  ['tags/україна.xml', '<rss>ua</rss>'],
]);

describe('writeFeeds', () => {
  it('creates the feeds folder, and its parents, when it does not exist', async () => {
    await writeFeeds(feedsDir, first);
    expect(await snapshot(feedsDir)).toEqual(Object.fromEntries(first));
    expect(await readdir(path.dirname(feedsDir))).toEqual(['feeds']);
  });

  it('replaces the whole set: stale tag feeds disappear and no temp folder is left', async () => {
    await writeFeeds(feedsDir, first);
    await writeFile(path.join(feedsDir, 'stray.txt'), 'left by hand');
    const second = new Map([
      ['rss.xml', '<rss>2</rss>'],
      ['feed.json', '{"v":2}'],
      ['tags/new-tag.xml', '<rss>new</rss>'],
    ]);
    await writeFeeds(feedsDir, second);
    expect(await snapshot(feedsDir)).toEqual(Object.fromEntries(second));
    expect(await readdir(path.dirname(feedsDir))).toEqual(['feeds']);
  });

  it('refuses a path outside the feeds folder and leaves the previous feeds untouched', async () => {
    await writeFeeds(feedsDir, first);
    const bad = new Map([
      ['rss.xml', '<rss>bad</rss>'],
      ['tags/../../escape', 'nope'],
    ]);
    await expect(writeFeeds(feedsDir, bad)).rejects.toMatchObject({ code: 'FEED_WRITE_FAILED' });
    expect(await snapshot(feedsDir)).toEqual(Object.fromEntries(first));
    expect(await readdir(path.dirname(feedsDir))).toEqual(['feeds']);
    expect(await readdir(root)).toEqual(['public']);
  });

  it('refuses absolute paths', async () => {
    await expect(writeFeeds(feedsDir, new Map([[path.join(root, 'abs.xml'), 'x']]))).rejects.toBeInstanceOf(GazetteError);
    await expect(readdir(root, { recursive: true })).resolves.not.toContain('abs.xml');
  });

  it('keeps the previous feeds when a write fails on the file system', async () => {
    await writeFeeds(feedsDir, first);
    // 'tags' as a file, then a file inside it: making the folder for the second write fails.
    const clash = new Map([
      ['tags', 'a file'],
      ['tags/x.xml', '<rss>x</rss>'],
    ]);
    const error = await writeFeeds(feedsDir, clash).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GazetteError);
    expect((error as GazetteError).code).toBe('FEED_WRITE_FAILED');
    expect((error as GazetteError).cause).toMatchObject({ code: expect.stringMatching(/^E[A-Z]+$/) });
    expect(await snapshot(feedsDir)).toEqual(Object.fromEntries(first));
    expect(await readdir(path.dirname(feedsDir))).toEqual(['feeds']);
  });

  it('leaves nothing behind when the first write fails', async () => {
    await expect(writeFeeds(feedsDir, new Map([['../x', 'nope']]))).rejects.toBeInstanceOf(GazetteError);
    expect(await readdir(path.dirname(feedsDir))).toEqual([]);
  });

  it('writes into an existing, empty feeds folder', async () => {
    await mkdir(feedsDir, { recursive: true });
    await writeFeeds(feedsDir, new Map([['rss.xml', 'x']]));
    expect(await snapshot(feedsDir)).toEqual({ 'rss.xml': 'x' });
  });
});
