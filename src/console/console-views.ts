import { readFile } from 'node:fs/promises';
import path from 'node:path';
import Handlebars from 'handlebars';
import { RenderError } from '../errors.ts';
import { cachedFile, type CachedFile } from '../server/feed-cache.ts';
import { compileTemplateDir } from '../server/web-templates.ts';
import { formatInZone } from '../schedule/zone-time.ts';

/** A console asset (stylesheet or script) with the address naming its version, so it may be cached for good. */
export interface ConsoleAsset extends CachedFile {
  href: string;
  version: string;
}

/** What every console page is rendered with, besides its own fields. */
export interface PageFrame {
  title: string;
  /** The signed-in user (absent on the login page). */
  user?: { email: string; role: string; isAdmin: boolean; timeZone: string } | undefined;
  csrf?: string | undefined;
  /** Which nav entry is current: dashboard, stories, editions, schedules, subscribers, users, account. */
  section?: string | undefined;
  siteTitle: string;
  /** A one-line notice at the top (after a redirect: "Test sent to …"). */
  flash?: { tone: 'ok' | 'error'; text: string } | undefined;
}

/** The console's templates (templates/console/*.hbs inside its layout) and its two assets. */
export interface ConsoleViews {
  render(page: string, frame: PageFrame, context: Record<string, unknown>): string;
  assets: ReadonlyMap<string, ConsoleAsset>;
}

const ASSETS: Record<string, string> = { 'console.css': 'text/css; charset=utf-8', 'console.js': 'text/javascript; charset=utf-8' };

/** Loads templates/console once: pages, partials (files named `_x.hbs`), console.css and console.js. */
export async function loadConsoleViews(templatesDir: string): Promise<ConsoleViews> {
  const dir = path.join(templatesDir, 'console');
  const hbs = Handlebars.create();
  registerHelpers(hbs);
  const { pages, layout } = await compileTemplateDir(hbs, dir, 'templates/console');
  const assets = new Map<string, ConsoleAsset>();
  for (const [name, type] of Object.entries(ASSETS)) {
    const file = cachedFile(await readFile(path.join(dir, name)), type);
    const version = file.etag.slice(1, 13);
    assets.set(name, { ...file, version, href: `/admin/assets/${name}?v=${version}` });
  }
  return {
    assets,
    render(page, frame, context) {
      const template = pages.get(page);
      if (!template) throw new RenderError(`templates/console/${page}.hbs`, 'template file not found');
      const full = { ...context, ...frame, stylesheet: assets.get('console.css')!.href, script: assets.get('console.js')!.href };
      return layout({ ...full, body: template(full) });
    },
  };
}

function registerHelpers(hbs: typeof Handlebars): void {
  const numbers = new Intl.NumberFormat('en');
  hbs.registerHelper('eq', (a: unknown, b: unknown) => a === b);
  hbs.registerHelper('or', (...args: unknown[]) => args.slice(0, -1).some(Boolean));
  hbs.registerHelper('number', (n: unknown) => (typeof n === 'number' ? numbers.format(n) : ''));
  hbs.registerHelper('percent', (done: unknown, total: unknown) => (typeof done === 'number' && typeof total === 'number' && total > 0 ? Math.floor((done / total) * 100) : 0));
  // An instant as "Mon 7 Dec 2026, 07:00" in the zone, with the zone named: times are never shown without one.
  hbs.registerHelper('when', (instant: unknown, zone: unknown) => {
    if (typeof instant !== 'string' && !(instant instanceof Date)) return '';
    const date = new Date(instant);
    if (Number.isNaN(date.getTime())) return '';
    const tz = typeof zone === 'string' && zone ? zone : 'UTC';
    return `${wallClock(date, tz)} ${tz}`;
  });
  hbs.registerHelper('isoInZone', (instant: unknown, zone: unknown) =>
    typeof instant === 'string' ? formatInZone(new Date(instant), typeof zone === 'string' && zone ? zone : 'UTC') : '',
  );
  hbs.registerHelper('duration', (seconds: unknown) => (typeof seconds === 'number' ? durationText(seconds) : ''));
}

const wallFormats = new Map<string, Intl.DateTimeFormat>();

/** "Mon 7 Dec 2026, 07:00" as the wall clock reads in the zone. */
export function wallClock(date: Date, zone: string): string {
  let format = wallFormats.get(zone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-GB', { timeZone: zone, weekday: 'short', day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    wallFormats.set(zone, format);
  }
  return format.format(date);
}

/** A span of seconds in words: "45 s", "6 min", "2 h 5 min". */
export function durationText(seconds: number): string {
  if (seconds < 60) return `${Math.max(0, Math.round(seconds))} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h${minutes % 60 ? ` ${minutes % 60} min` : ''}`;
}
