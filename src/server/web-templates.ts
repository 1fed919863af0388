import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import Handlebars from 'handlebars';
import type { Site } from '../model/content.ts';
import { RenderError } from '../errors.ts';
import { tagSlug } from '../feed/tags.ts';
import { dateFormatter } from '../render/compile-edition.ts';

/** Renders a page of templates/web/ inside the layout. */
export interface WebTemplates {
  render(page: string, site: Site, context: Record<string, unknown>): string;
  /** The site stylesheet, served at /assets/site.css. */
  css: string;
}

/** Loads templates/web/*.hbs and site.css once. */
export async function loadWebTemplates(templatesDir: string): Promise<WebTemplates> {
  const dir = path.join(templatesDir, 'web');
  const hbs = Handlebars.create();
  hbs.registerHelper('iso', (date: unknown) => (date instanceof Date ? date.toISOString() : ''));
  hbs.registerHelper('tagSlug', (tag: unknown) => encodeURIComponent(tagSlug(String(tag))));
  hbs.registerHelper('formatDate', (date: unknown, options: Handlebars.HelperOptions) => {
    const site = (options.data as { root?: { site?: Site } }).root?.site;
    return date instanceof Date && site ? dateFormatter(site)(date) : '';
  });
  const pages = new Map<string, Handlebars.TemplateDelegate>();
  for (const name of await readdir(dir)) {
    if (!name.endsWith('.hbs')) continue;
    const source = await readFile(path.join(dir, name), 'utf8');
    try {
      hbs.parse(source);
    } catch (cause) {
      throw new RenderError(`templates/web/${name}`, (cause as Error).message.split('\n')[0] ?? 'syntax error', { cause });
    }
    pages.set(name.replace(/\.hbs$/, ''), hbs.compile(source, { strict: false }));
  }
  const layout = pages.get('layout');
  if (!layout) throw new RenderError('templates/web/layout.hbs', 'template file not found');
  const css = await readFile(path.join(dir, 'site.css'), 'utf8').catch(() => '');
  return {
    css,
    render(page, site, context) {
      const template = pages.get(page);
      if (!template) throw new RenderError(`templates/web/${page}.hbs`, 'template file not found');
      const full = { ...context, site };
      return layout({ ...full, body: template(full) });
    },
  };
}
