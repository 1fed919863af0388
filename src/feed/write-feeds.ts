import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { GazetteError } from '../errors.ts';
import type { FeedFiles } from './build-feeds.ts';

/** Replaces the feeds folder with exactly `files`; on any failure the previous feeds stay as they were. */
export async function writeFeeds(feedsDir: string, files: FeedFiles): Promise<void> {
  const target = path.resolve(feedsDir);
  const temp = `${target}.tmp-${randomBytes(6).toString('hex')}`;
  try {
    await mkdir(path.dirname(target), { recursive: true });
    await mkdir(temp);
    for (const [relative, content] of files) {
      const file = resolveInside(temp, relative);
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, content, 'utf8');
    }
    await swapIn(temp, target);
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    if (error instanceof GazetteError) throw error;
    throw new GazetteError('FEED_WRITE_FAILED', `could not write feeds to ${target}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

// Two renames: the folder is missing for an instant in between, but never half old and half new.
async function swapIn(temp: string, target: string): Promise<void> {
  if (!(await exists(target))) {
    await rename(temp, target);
    return;
  }
  const old = `${target}.old-${randomBytes(6).toString('hex')}`;
  await rename(target, old);
  try {
    await rename(temp, target);
  } catch (error) {
    await rename(old, target);
    throw error;
  }
  // The new feeds are live; a leftover old folder is litter, not a failed build.
  await rm(old, { recursive: true, force: true }).catch(() => undefined);
}

function resolveInside(dir: string, relative: string): string {
  const file = path.resolve(dir, relative);
  if (path.isAbsolute(relative) || !file.startsWith(dir + path.sep)) {
    throw new GazetteError('FEED_WRITE_FAILED', `feed path ${JSON.stringify(relative)} is not inside the feeds folder`);
  }
  return file;
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}
