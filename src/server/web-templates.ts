import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import Handlebars from 'handlebars';
import type { Site } from '../model/content.ts';
import { RenderError } from '../errors.ts';
import { tagSlug } from '../feed/tags.ts';
import { dateFormatter } from '../render/compile-edition.ts';
import { cachedFile, type CachedFile } from './feed-cache.ts';
import { themeCss } from './theme.ts';

/** The site stylesheet for one theme, with the address that names this very version. */
export interface Stylesheet extends CachedFile {
  /** `/assets/site.css?v=…`: changes whenever the CSS or the theme does, so it may be cached for good. */
  href: string;
  /** The `v` of href. */
  version: string;
}

/** Renders a page of templates/web/ inside the layout. */
export interface WebTemplates {
  render(page: string, site: Site, context: Record<string, unknown>): string;
  /** templates/web/site.css with the theme's accent on top: what /assets/site.css serves. */
  stylesheet(theme: Site['theme']): Stylesheet;
}

/**
 * Compiles every `*.hbs` of `dir` with `hbs`: `_x.hbs` becomes the partial `x`, the rest pages by name;
 * a syntax error names its file (as `label/file`). The pages must include a `layout`.
 */
export async function compileTemplateDir(hbs: typeof Handlebars, dir: string, label: string): Promise<{ pages: Map<string, Handlebars.TemplateDelegate>; layout: Handlebars.TemplateDelegate }> {
  const pages = new Map<string, Handlebars.TemplateDelegate>();
  for (const name of (await readdir(dir)).sort()) {
    if (!name.endsWith('.hbs')) continue;
    const source = await readFile(path.join(dir, name), 'utf8');
    try {
      hbs.parse(source);
    } catch (cause) {
      throw new RenderError(`${label}/${name}`, (cause as Error).message.split('\n')[0] ?? 'syntax error', { cause });
    }
    const base = name.replace(/\.hbs$/, '');
    if (base.startsWith('_')) hbs.registerPartial(base.slice(1), source);
    else pages.set(base, hbs.compile(source, { strict: false }));
  }
  const layout = pages.get('layout');
  if (!layout) throw new RenderError(`${label}/layout.hbs`, 'template file not found');
  return { pages, layout };
}

/** Loads templates/web/*.hbs (files named `_x.hbs` become the partial `x`) and site.css once. */
export async function loadWebTemplates(templatesDir: string): Promise<WebTemplates> {
  const dir = path.join(templatesDir, 'web');
  const hbs = Handlebars.create();
  hbs.registerHelper('iso', (date: unknown) => (date instanceof Date ? date.toISOString() : ''));
  hbs.registerHelper('tagSlug', (tag: unknown) => encodeURIComponent(tagSlug(String(tag))));
  hbs.registerHelper('formatDate', (date: unknown, options: Handlebars.HelperOptions) => {
    const site = (options.data as { root?: { site?: Site } }).root?.site;
    return date instanceof Date && site ? dateFormatter(site)(date) : '';
  });
  const { pages, layout } = await compileTemplateDir(hbs, dir, 'templates/web');
  const css = await readFile(path.join(dir, 'site.css'), 'utf8').catch(() => '');
  // One stylesheet per accent: a theme changes rarely, and every page of it links the same file.
  const stylesheets = new Map<string, Stylesheet>();
  const stylesheet = (theme: Site['theme']): Stylesheet => {
    let sheet = stylesheets.get(theme.accent);
    if (!sheet) {
      const file = cachedFile(Buffer.from(themeCss(theme) + css, 'utf8'), 'text/css; charset=utf-8');
      const version = file.etag.slice(1, 13);
      stylesheets.set(theme.accent, (sheet = { ...file, version, href: `/assets/site.css?v=${version}` }));
    }
    return sheet;
  };
  return {
    stylesheet,
    render(page, site, context) {
      const template = pages.get(page);
      if (!template) throw new RenderError(`templates/web/${page}.hbs`, 'template file not found');
      const full = { ...context, site, stylesheet: stylesheet(site.theme).href };
      return layout({ ...full, body: template(full) });
    },
  };
}
