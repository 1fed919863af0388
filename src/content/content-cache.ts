import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { loadContent, type LoadContentOptions } from './load-content.ts';
import type { Content } from '../model/content.ts';

/**
 * Content loaded once and reloaded only when a file under content/ changed: a server must not
 * parse every story per request. Changes are looked for at most once per `checkEveryMs`.
 */
export function cachedContentLoader(contentDir: string, options: LoadContentOptions, checkEveryMs = 1000): () => Promise<Content> {
  let cached: { content: Promise<Content>; signature: string; checkedAt: number } | undefined;
  return async () => {
    const now = Date.now();
    if (cached && now - cached.checkedAt < checkEveryMs) return cached.content;
    const signature = await contentSignature(contentDir);
    if (cached && cached.signature === signature) {
      cached.checkedAt = now;
      return cached.content;
    }
    const content = loadContent(contentDir, options);
    // A failed load is not kept: the next call tries again (and reports the errors again).
    cached = { content, signature, checkedAt: now };
    content.catch(() => (cached = undefined));
    return content;
  };
}

/**
 * What changes whenever a content file does, without reading any: never throws, so a symlink loop, an
 * unreadable folder or a vanished file only changes the signature, and loadContent reports the problem.
 */
async function contentSignature(contentDir: string): Promise<string> {
  const files = [path.join(contentDir, 'site.yaml')];
  const storiesDir = path.join(contentDir, 'stories');
  for (const name of await readdir(storiesDir).catch(() => [])) files.push(path.join(storiesDir, name));
  const parts = await Promise.all(
    files.map(async (file) => {
      // ctime and inode too: a chmod, or a symlink pointed at another file, changes neither mtime nor size.
      const info = await stat(file).catch((error: NodeJS.ErrnoException) => error.code ?? 'unreadable');
      return typeof info === 'string' ? `${file}:${info}` : `${file}:${info.ino}:${info.mtimeMs}:${info.ctimeMs}:${info.size}`;
    }),
  );
  return parts.join('|');
}
