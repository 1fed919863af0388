import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { App } from '../app.ts';
import { requireValid } from '../content/load-content.ts';
import { type Content, publishedStories, type Story } from '../model/content.ts';
import { buildFeeds } from '../feed/build-feeds.ts';

/** One feed file held in memory, ready to send. */
export interface CachedFile {
  body: Buffer;
  /** Strong validator: the quoted SHA-1 of the body, base64url. */
  etag: string;
  /** Content-Type header, charset included. */
  contentType: string;
}

/** What the public site shows at one moment: built once, served from memory until content or the clock moves on. */
export interface SiteSnapshot {
  content: Content;
  /** Published stories (no drafts, none dated after the build), newest first. */
  stories: Story[];
  /** Published stories by slug. */
  storiesBySlug: Map<string, Story>;
  /** Feed files by path: 'rss.xml', 'feed.json', 'tags/<slug>.xml'. */
  files: Map<string, CachedFile>;
  /** The newest published story's date, else the build time; whole seconds, as HTTP dates carry. */
  lastModified: Date;
  /** lastModified as an HTTP date (toUTCString), computed once. */
  lastModifiedHttp: string;
  builtAt: Date;
}

/** Options of FeedCache; the defaults suit a server. */
export interface FeedCacheOptions {
  /**
   * Told when something goes wrong that readers do not see: a rebuild failed (the last good snapshot is still
   * served) or watching failed (mtimes are compared instead). `what` says which, in one line. Default: console.warn.
   */
  onError?: (error: unknown, what: string) => void;
  /** Quiet time after the last file event before content counts as changed; default 100 ms. */
  debounceMs?: number;
  /** Watch content/ for changes; false (or a watcher that fails) means comparing mtimes instead. Default true. */
  watch?: boolean;
  /** How often, at most, mtimes are compared when not watching; default 2000 ms. */
  pollIntervalMs?: number;
}

/** Holds the current site snapshot; rebuilds it when content/ changes or a scheduled story comes due. */
export class FeedCache {
  private readonly app: App;
  private readonly onError: (error: unknown, what: string) => void;
  private readonly debounceMs: number;
  private readonly pollIntervalMs: number;
  private good: { snapshot: SiteSnapshot; promise: Promise<SiteSnapshot>; nextChangeAt: number } | undefined;
  private pending: Promise<SiteSnapshot> | undefined;
  private stale = false;
  private started = false;
  private closed = false;
  private watcher: FSWatcher | undefined;
  private debounce: NodeJS.Timeout | undefined;
  // Polling mode (no working watcher): the last mtime fingerprint and when it was taken.
  private polling: boolean;
  private fingerprint: string | undefined;
  private lastPoll = Number.NEGATIVE_INFINITY;

  constructor(app: App, options: FeedCacheOptions = {}) {
    this.app = app;
    this.onError = options.onError ?? ((error, what) => console.warn(`gazette: ${what}:\n${(error as Error).message}`));
    this.debounceMs = options.debounceMs ?? 100;
    this.pollIntervalMs = options.pollIntervalMs ?? 2000;
    this.polling = options.watch === false;
  }

  /** The snapshot to serve now; builds on first use and after a change, sharing one build between concurrent callers. */
  current(): Promise<SiteSnapshot> {
    if (this.pending) return this.pending;
    const good = this.good;
    if (good && !this.stale && !this.pollDue() && this.app.now().getTime() < good.nextChangeAt) return good.promise;
    const pending = this.refresh().finally(() => {
      if (this.pending === pending) this.pending = undefined;
    });
    this.pending = pending;
    return pending;
  }

  /** Stops watching content/; the last snapshot stays readable. */
  close(): void {
    this.closed = true;
    clearTimeout(this.debounce);
    this.watcher?.close();
    this.watcher = undefined;
  }

  private async refresh(): Promise<SiteSnapshot> {
    this.startWatching();
    if (this.pollDue()) await this.poll();
    const good = this.good;
    const now = this.app.now();
    if (good && !this.stale && now.getTime() < good.nextChangeAt) return good.snapshot;
    // Cleared before reading, so a change made while loading marks the new snapshot stale again.
    this.stale = false;
    let content: Content;
    try {
      // Live feeds keep the last good version of a story an editor just broke, rather than drop it.
      content = requireValid(await this.app.freshContent());
    } catch (error) {
      if (!good) throw error;
      // An editor mid-save or a typo must not take the site down: keep the last good content.
      this.onError(error, 'content could not be loaded; still serving the last good version');
      if (now.getTime() < good.nextChangeAt) return good.snapshot;
      content = good.snapshot.content;
    }
    const snapshot = buildSnapshot(content, now, await newestMtime(this.app.config.contentDir));
    this.good = { snapshot, promise: Promise.resolve(snapshot), nextChangeAt: nextScheduled(content, now) };
    return snapshot;
  }

  private startWatching(): void {
    if (this.started || this.closed) return;
    this.started = true;
    if (this.polling) return;
    try {
      this.watcher = watch(this.app.config.contentDir, { recursive: true }, () => this.changed());
      this.watcher.on('error', (error) => this.fallBackToPolling(error));
      // The watcher must not keep a process alive that has nothing else to do.
      this.watcher.unref();
    } catch (error) {
      this.fallBackToPolling(error);
    }
  }

  private changed(): void {
    clearTimeout(this.debounce);
    // Editors save in bursts (temp file, rename, backup): rebuild once, after the burst.
    this.debounce = setTimeout(() => {
      this.stale = true;
    }, this.debounceMs);
    this.debounce.unref();
  }

  private fallBackToPolling(error: unknown): void {
    this.watcher?.close();
    this.watcher = undefined;
    if (this.polling) return;
    this.polling = true;
    // Events may have been lost before the failure: rebuild once, then trust mtimes.
    this.stale = true;
    this.fingerprint = undefined;
    this.onError(error, `cannot watch ${this.app.config.contentDir}; checking its mtimes every ${this.pollIntervalMs} ms instead`);
  }

  private pollDue(): boolean {
    return this.polling && !this.closed && performance.now() - this.lastPoll >= this.pollIntervalMs;
  }

  private async poll(): Promise<void> {
    this.lastPoll = performance.now();
    const fingerprint = await mtimeFingerprint(this.app.config.contentDir);
    if (this.fingerprint !== undefined && fingerprint !== this.fingerprint) this.stale = true;
    this.fingerprint = fingerprint;
  }
}

/** Builds the snapshot of `content` as readers see it at `now`. */
function buildSnapshot(content: Content, now: Date, contentChangedAt: number): SiteSnapshot {
  const stories = publishedStories(content, now);
  const files = new Map<string, CachedFile>();
  for (const [name, text] of buildFeeds(content.site, stories, now)) {
    const body = Buffer.from(text, 'utf8');
    const contentType = name.endsWith('.json') ? 'application/feed+json; charset=utf-8' : 'application/rss+xml; charset=utf-8';
    files.set(name, cachedFile(body, contentType));
  }
  // The newest story, or the last edit under content/ when later: an edited or backdated story
  // changes what readers get, so If-Modified-Since must see it too.
  const newest = Math.max(stories[0]?.date.getTime() ?? now.getTime(), Math.min(contentChangedAt, now.getTime()));
  const lastModified = new Date(Math.floor(newest / 1000) * 1000);
  return {
    content,
    stories,
    storiesBySlug: new Map(stories.map((story) => [story.slug, story])),
    files,
    lastModified,
    lastModifiedHttp: lastModified.toUTCString(),
    builtAt: now,
  };
}

/** Wraps a body with its strong ETag (quoted SHA-1, base64url) for serving from memory. */
export function cachedFile(body: Buffer, contentType: string): CachedFile {
  return { body, etag: `"${createHash('sha1').update(body).digest('base64url')}"`, contentType };
}

/** The instant the next scheduled (future, not draft) story comes due; Infinity when none is. */
function nextScheduled(content: Content, now: Date): number {
  let next = Number.POSITIVE_INFINITY;
  for (const story of content.stories) {
    const at = story.date.getTime();
    if (!story.draft && at > now.getTime() && at < next) next = at;
  }
  return next;
}

/** The latest mtime of any file under dir, in epoch milliseconds (0 when unreadable). */
async function newestMtime(dir: string): Promise<number> {
  const names = await readdir(dir, { recursive: true }).catch(() => [] as string[]);
  const times = await Promise.all(names.map(async (name) => (await stat(path.join(dir, name)).catch(() => undefined))?.mtimeMs ?? 0));
  return Math.max(0, ...times);
}

/** Name, size and mtime of every entry under dir: changes when any file is added, removed or edited. */
async function mtimeFingerprint(dir: string): Promise<string> {
  let names: string[];
  try {
    names = (await readdir(dir, { recursive: true })).sort();
  } catch (error) {
    return `unreadable: ${(error as NodeJS.ErrnoException).code ?? 'error'}`;
  }
  const parts = await Promise.all(
    names.map(async (name) => {
      const info = await stat(path.join(dir, name)).catch(() => undefined);
      return info ? `${name}\0${info.size}\0${info.mtimeMs}` : `${name}\0gone`;
    }),
  );
  return parts.join('\n');
}
