import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { ZodError } from 'zod';
import { ContentError, formatContentIssue, type ContentIssue } from '../errors.ts';
import { parseYaml, splitFrontMatter, type FrontMatterSplit, type ParsedYaml } from './front-matter.ts';
import { renderBody, sanitize, type RenderedBody } from './markdown.ts';
import { MAX_MARKDOWN_NESTING, markdownNesting } from './markdown-nesting.ts';
import { describeFsError, readTextFile, type UnreadableFile } from './read-text-file.ts';
import type { Content, FaqEntry, Site, Story } from '../model/content.ts';
import { siteSchema, storyFrontMatterSchema } from './schemas.ts';
import { escapeHtml } from '../render/escape.ts';

/** Options of loadContent. */
export interface LoadContentOptions {
  /** Overrides site.yaml's base_url (BASE_URL), so links point at the server actually running. */
  baseUrl?: string | undefined;
  /** GAZETTE_BOUNCE_DOMAIN, kept on the site so every message made from it uses it. */
  bounceDomain?: string | undefined;
}

/**
 * Loads site.yaml and every story. A broken site.yaml (or stories/ folder) throws one ContentError
 * listing every problem; an invalid story is left out and listed in `problems`, so one bad file
 * never holds back the others. What must not publish with a story missing calls requireValid.
 */
export async function loadContent(contentDir: string, options: LoadContentOptions = {}): Promise<Content> {
  const issues: ContentIssue[] = [];
  const site = await loadSite(contentDir, issues, options.baseUrl, options.bounceDomain);
  const storiesDir = path.join(contentDir, 'stories');
  const stories: Story[] = [];
  const bySlug = new Map<string, string>();
  const names = await storyNames(contentDir, storiesDir, issues);
  if (!site || issues.length > 0) {
    // Without a site (or a readable stories/), nothing can be made: report the stories' problems too.
    for (const name of names) {
      const file = path.join(storiesDir, name);
      await loadStory(file, relative(contentDir, file), site?.baseUrl ?? '', issues);
    }
    throw new ContentError(issues);
  }
  for (const name of names) {
    const file = path.join(storiesDir, name);
    const story = await loadStory(file, relative(contentDir, file), site?.baseUrl ?? '', issues);
    if (!story) continue;
    const previous = bySlug.get(story.slug);
    if (previous) {
      issues.push({ file: story.sourceFile, field: 'slug', message: `"${story.slug}" is already used by ${previous}` });
      continue;
    }
    bySlug.set(story.slug, story.sourceFile);
    stories.push(story);
  }
  stories.sort((a, b) => b.date.getTime() - a.date.getTime() || a.slug.localeCompare(b.slug));
  return { site, stories, problems: issues };
}

/** The content, or a ContentError listing its problems: for what must not publish with a story left out (`gazette build`). */
export function requireValid(content: Content): Content {
  if (content.problems.length > 0) throw new ContentError(content.problems);
  return content;
}

/** "left out 2 invalid story files:" and one line per problem, for CLI output, fire records and alerts; '' when none. */
export function describeLeftOut(content: Content): string {
  if (content.problems.length === 0) return '';
  const files = new Set(content.problems.map((p) => p.file)).size;
  return `left out ${files} invalid story ${files === 1 ? 'file' : 'files'}:\n${content.problems.map((p) => `  ${formatContentIssue(p)}`).join('\n')}`;
}

async function storyNames(contentDir: string, storiesDir: string, issues: ContentIssue[]): Promise<string[]> {
  try {
    return (await readdir(storiesDir)).filter((name) => name.endsWith('.md')).sort();
  } catch (error) {
    const shown = relative(contentDir, storiesDir);
    const notFolder = (error as NodeJS.ErrnoException).code === 'ENOTDIR';
    const why = notFolder ? { problem: 'is not a folder', missing: false } : await describeFsError(storiesDir, error);
    issues.push({ file: shown, field: '', message: `${why.missing ? '' : `${why.problem}, `}expected a folder of .md stories` });
    return [];
  }
}

/** Reads and parses one story file; whatever is wrong with it becomes an issue, never an exception. */
async function loadStory(file: string, shown: string, baseUrl: string, issues: ContentIssue[]): Promise<Story | undefined> {
  const source = await readTextFile(file, { expected: 'a Markdown file' });
  if (typeof source !== 'string') {
    issues.push(unreadableIssue(shown, source));
    return undefined;
  }
  try {
    return parseStory(source, shown, baseUrl, issues);
  } catch (error) {
    // A hostile file must not take the whole build (or the server's reload) down with a stack trace.
    issues.push({ file: shown, field: '', message: `could not be read as a story: ${error instanceof Error ? error.message : String(error)}` });
    return undefined;
  }
}

function unreadableIssue(file: string, why: UnreadableFile): ContentIssue {
  return why.line === undefined ? { file, field: '', message: why.problem } : { file, field: '', line: why.line, message: why.problem };
}

async function loadSite(contentDir: string, issues: ContentIssue[], baseUrl: string | undefined, bounceDomain: string | undefined): Promise<Site | undefined> {
  const file = path.join(contentDir, 'site.yaml');
  const shown = relative(contentDir, file);
  const source = await readTextFile(file, { expected: 'the site configuration (a YAML file)' });
  if (typeof source !== 'string') {
    issues.push(source.missing ? { file: shown, field: '', message: `not found (expected the site configuration in ${file})` } : unreadableIssue(shown, source));
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
    editors: s.editors ?? [s.sender.reply_to ?? s.sender.address],
    lists: s.lists,
    feed: { limit: s.feed.limit, ttlMinutes: s.feed.ttl_minutes },
    theme: { accent: s.theme.accent.toLowerCase(), logoUrl: s.theme.logo_url },
    bounceDomain,
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
  const body = renderChecked(split, file, baseUrl, issues);
  if (!body) return undefined;
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

/** Renders the body unless it nests too deeply: checked first, so a hostile body fails fast, not after a stack overflow. */
function renderChecked(split: FrontMatterSplit, file: string, baseUrl: string, issues: ContentIssue[]): RenderedBody | undefined {
  const nesting = markdownNesting(split.body);
  const tooDeep = 'the Markdown is nested too deeply to render';
  const limit = `at most ${MAX_MARKDOWN_NESTING} levels are allowed`;
  if (nesting.depth > MAX_MARKDOWN_NESTING) {
    const line = split.bodyFirstLine + nesting.line - 1;
    issues.push({ file, field: 'body', line, message: `${tooDeep} (${nesting.depth} levels; ${limit})` });
    return undefined;
  }
  try {
    return renderBody(split.body, baseUrl);
  } catch (error) {
    // The estimate can miss a construct marked recurses on; its stack overflow is caught here instead.
    if (!(error instanceof RangeError && /call stack/i.test(error.message))) throw error;
    issues.push({ file, field: 'body', message: `${tooDeep} (${limit})` });
    return undefined;
  }
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
