import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import type { ZodError } from 'zod';
import { ContentError, type ContentIssue } from '../errors.ts';
import { parseYaml, splitFrontMatter, type ParsedYaml } from './front-matter.ts';
import { renderBody, sanitize } from './markdown.ts';
import type { Content, FaqEntry, Site, Story } from './model.ts';
import { siteSchema, storyFrontMatterSchema } from './schemas.ts';
import { escapeHtml } from '../render/escape.ts';

/** Options of loadContent. */
export interface LoadContentOptions {
  /** Overrides site.yaml's base_url (BASE_URL), so links point at the server actually running. */
  baseUrl?: string | undefined;
}

/** Loads site.yaml and every story; throws one ContentError listing every problem found. */
export async function loadContent(contentDir: string, options: LoadContentOptions = {}): Promise<Content> {
  const issues: ContentIssue[] = [];
  const site = await loadSite(contentDir, issues, options.baseUrl);
  const storiesDir = path.join(contentDir, 'stories');
  let files: string[] = [];
  try {
    files = (await readdir(storiesDir)).filter((name) => name.endsWith('.md')).sort();
  } catch {
    issues.push({ file: relative(contentDir, storiesDir), field: '', message: 'expected a folder of .md stories' });
  }
  const stories: Story[] = [];
  const bySlug = new Map<string, string>();
  for (const name of files) {
    const file = path.join(storiesDir, name);
    const story = parseStory(await readFile(file, 'utf8'), relative(contentDir, file), site?.baseUrl ?? '', issues);
    if (!story) continue;
    const previous = bySlug.get(story.slug);
    if (previous) {
      issues.push({ file: story.sourceFile, field: 'slug', message: `"${story.slug}" is already used by ${previous}` });
      continue;
    }
    bySlug.set(story.slug, story.sourceFile);
    stories.push(story);
  }
  if (issues.length > 0 || !site) throw new ContentError(issues);
  stories.sort((a, b) => b.date.getTime() - a.date.getTime() || a.slug.localeCompare(b.slug));
  return { site, stories };
}

/** Stories a reader may see at `now`: not drafts, not dated in the future; newest first. */
export function publishedStories(content: Content, now: Date): Story[] {
  return content.stories.filter((story) => !story.draft && story.date.getTime() <= now.getTime());
}

async function loadSite(contentDir: string, issues: ContentIssue[], baseUrl: string | undefined): Promise<Site | undefined> {
  const file = path.join(contentDir, 'site.yaml');
  const shown = relative(contentDir, file);
  let source: string;
  try {
    source = await readFile(file, 'utf8');
  } catch {
    issues.push({ file: shown, field: '', message: `not found (expected the site configuration in ${file})` });
    return undefined;
  }
  const yaml = parseYaml(source, shown);
  if (!('data' in yaml)) {
    issues.push(yaml);
    return undefined;
  }
  const parsed = siteSchema.safeParse(yaml.data ?? {});
  if (!parsed.success) {
    issues.push(...zodIssues(parsed.error, shown, yaml));
    return undefined;
  }
  const s = parsed.data;
  return {
    title: s.title,
    description: s.description,
    baseUrl: (baseUrl ?? s.base_url).replace(/\/+$/, ''),
    language: s.language,
    timezone: s.timezone,
    sender: { name: s.sender.name, address: s.sender.address, replyTo: s.sender.reply_to },
    postalAddress: s.postal_address,
    lists: s.lists,
    feed: { limit: s.feed.limit, ttlMinutes: s.feed.ttl_minutes },
  };
}

/** Parses one story file; pushes its problems to `issues` and returns undefined when invalid. */
export function parseStory(source: string, file: string, baseUrl: string, issues: ContentIssue[]): Story | undefined {
  const split = splitFrontMatter(source);
  if (!split) {
    issues.push({ file, field: '', line: 1, message: 'expected YAML front matter between --- lines at the top' });
    return undefined;
  }
  const yaml = parseYaml(split.yaml, file, split.yamlFirstLine - 1);
  if (!('data' in yaml)) {
    issues.push(yaml);
    return undefined;
  }
  const parsed = storyFrontMatterSchema.safeParse(yaml.data ?? {});
  if (!parsed.success) {
    issues.push(...zodIssues(parsed.error, file, yaml));
    return undefined;
  }
  const fm = parsed.data;
  const body = renderBody(split.body, baseUrl);
  for (const src of body.imagesWithoutAlt) {
    issues.push({ file, field: 'body', message: `image ${src} has no alt text (write ![what it shows](${src}))` });
  }
  if (!split.body.trim()) issues.push({ file, field: 'body', message: 'expected a Markdown body after the front matter' });
  if (body.imagesWithoutAlt.length > 0 || !split.body.trim()) return undefined;
  const slug = fm.slug ?? path.basename(file, '.md').replace(/^\d{4}-\d{2}-\d{2}-/, '');
  const faq: FaqEntry[] = fm.faq;
  const bodyHtml = [body.introHtml, ...body.sections.map((s) => `<h2>${escapeHtml(s.heading)}</h2>\n${s.html}`)]
    .filter(Boolean)
    .join('\n');
  return {
    slug,
    title: fm.title,
    date: new Date(fm.date),
    author: fm.author,
    summary: fm.summary,
    tags: [...new Set(fm.tags)],
    image: fm.image ? { url: fm.image.url, alt: fm.image.alt, width: fm.image.width, height: fm.image.height } : undefined,
    faq,
    draft: fm.draft,
    url: `${baseUrl}/stories/${slug}`,
    bodyHtml,
    introHtml: body.introHtml,
    sections: body.sections,
    contentHtml: bodyHtml + faqHtml(faq, baseUrl),
    sourceFile: file,
  };
}

function faqHtml(faq: FaqEntry[], baseUrl: string): string {
  if (faq.length === 0) return '';
  const items = faq.map((e) => `<h3>${escapeHtml(e.q)}</h3>\n${sanitize(`<p>${escapeHtml(e.a)}</p>`, baseUrl)}`);
  return `\n<h2>Frequently Asked Questions</h2>\n${items.join('\n')}`;
}

function zodIssues(error: ZodError, file: string, yaml: ParsedYaml): ContentIssue[] {
  return error.issues.flatMap((issue) => {
    const keys = issue.code === 'unrecognized_keys' ? issue.keys : [undefined];
    return keys.map((key) => {
      const fieldPath = key === undefined ? issue.path : [...issue.path, key];
      return {
        file,
        field: fieldPath.map(String).join('.') || '(front matter)',
        line: yaml.lineOf(fieldPath),
        message: issue.message.endsWith(', got nothing') ? `required: ${issue.message.slice(0, -', got nothing'.length)}` : issue.message,
      };
    });
  });
}

function relative(contentDir: string, file: string): string {
  return path.join(path.basename(contentDir), path.relative(contentDir, file));
}
