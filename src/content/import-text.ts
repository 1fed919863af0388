import { stringify } from 'yaml';
import { InputError } from '../errors.ts';
import type { FaqEntry } from '../model/content.ts';
import { describe, storyFrontMatterSchema } from './schemas.ts';

/** What the editor gave on the command line; anything missing is guessed. */
export interface ImportTextOptions {
  title?: string | undefined;
  slug?: string | undefined;
  /** ISO 8601 with timezone; defaults to `now` in UTC. */
  date?: string | undefined;
  author?: string | undefined;
  tags?: string[] | undefined;
  /** Writes `draft: true`, so the story is not published until the editor says so. Default false. */
  draft?: boolean | undefined;
  /** The clock, injected: the default date. */
  now: Date;
}

/** Front matter written for an imported story, in the order it is written. */
export interface ImportedFrontMatter {
  title: string;
  date: string;
  author: string;
  summary: string;
  tags: string[];
  faq: FaqEntry[];
  slug: string;
  draft?: true;
}

/** A field the importer guessed rather than was given, shown so the editor can fix it. */
export interface ImportGuess {
  field: 'title' | 'slug' | 'date' | 'author' | 'tags' | 'summary' | 'faq';
  value: string;
}

/** A plain-text article turned into a story file. */
export interface ImportedStory {
  slug: string;
  /** The whole .md file: front matter and Markdown body. */
  markdown: string;
  /** Guessed fields, in front-matter order. */
  guesses: ImportGuess[];
  frontMatter: ImportedFrontMatter;
}

/** Author written when the text has no byline and no --author was given. */
export const DEFAULT_AUTHOR = 'Gazette Staff';

const MAX_HEADING_CHARS = 100;
const MAX_HEADING_WORDS = 14;
const MAX_TITLE_CHARS = 80;
const MAX_QUESTION_CHARS = 200;
const MAX_SLUG_CHARS = 60;
const MAX_TAGS = 4;
const MIN_TAG_MENTIONS = 3;
// Closing quotes and brackets hide the real last character of a line ("… said “no.”").
const CLOSERS = /["”’'»)\]]+$/u;
const TERMINAL = /[.!?:;,…\-–—]$/u;
const FAQ_HEADING = /^(?:frequently asked questions|faqs?)(?:\s*\(faqs?\))?\s*:?$/i;
const BYLINE = /^[Bb]y\s+(\p{Lu}[\p{L}\p{M}’'.-]*(?:\s+\p{Lu}[\p{L}\p{M}’'.-]*){0,3})$/u;
// Capitalised words that are not names: they never make good tags.
const NOT_TAGS = new Set(
  ('The A An This That These Those It Its He She They We I You His Her Their Our In On At As By For Of To From With ' +
    'But And Or If When While Despite Although After Before Since Yet So Mr Mrs Ms Dr President Prime Minister ' +
    'Secretary Senator Governor General Chancellor King Queen Monday Tuesday Wednesday Thursday Friday Saturday Sunday ' +
    'January February March April May June July August September October November December').split(' '),
);

type Block = { kind: 'heading' | 'paragraph'; text: string };

/** Turns a plain-text article into a story: headings, FAQ, summary, and guessed title, slug, date and tags. */
export function importPlainText(text: string, options: ImportTextOptions): ImportedStory {
  const paragraphs = splitParagraphs(text);
  if (paragraphs.length === 0) throw new InputError('the text to import is empty');
  const given = {
    title: options.title === undefined ? undefined : required(options.title, '--title'),
    author: options.author === undefined ? undefined : required(options.author, '--author'),
    slug: options.slug === undefined ? undefined : checkSlug(options.slug),
    date: options.date === undefined ? undefined : checkDate(options.date),
    tags: options.tags === undefined ? undefined : cleanTags(options.tags),
  };
  const article = readArticle(paragraphs, given.title);

  const guesses: ImportGuess[] = [];
  const guess = <T extends string | string[] | FaqEntry[]>(field: ImportGuess['field'], value: T): T => {
    guesses.push({ field, value: showGuess(value) });
    return value;
  };
  const title = given.title ?? guess('title', article.titleLine ?? titleFromSentence(article.lead));
  const date = given.date ?? guess('date', now(options.now));
  const slug = given.slug ?? guess('slug', slugify(title) || `story-${date.slice(0, 10)}`);
  const author = given.author ?? guess('author', article.byline ?? DEFAULT_AUTHOR);
  const tags = given.tags ?? guess('tags', guessTags(article.body));
  const summary = guess('summary', article.lead);
  const faq = guess('faq', article.faq);
  const frontMatter: ImportedFrontMatter = { title, date, author, summary, tags, faq, slug };
  if (options.draft) frontMatter.draft = true;
  return { slug, markdown: renderStoryFile(frontMatter, article.body), guesses: guesses.sort(byField), frontMatter };
}

/** The structure found in the text: title line, byline, body blocks, lead paragraph and FAQ. */
interface Article {
  titleLine: string | undefined;
  byline: string | undefined;
  body: Block[];
  lead: string;
  faq: FaqEntry[];
}

function readArticle(paragraphs: string[], givenTitle: string | undefined): Article {
  let blocks = classify(paragraphs);
  const bylineIndex = blocks.slice(0, 3).findIndex((b) => BYLINE.test(b.text));
  const byline = bylineIndex === -1 ? undefined : BYLINE.exec(blocks[bylineIndex]!.text)?.[1];
  if (bylineIndex !== -1) blocks = blocks.filter((_, i) => i !== bylineIndex);
  const faqIndex = blocks.findIndex((b) => b.kind === 'heading' && FAQ_HEADING.test(b.text));
  // A heading after the FAQ closes the article; it is never its title.
  const titleIndex = blocks.slice(0, faqIndex === -1 ? undefined : faqIndex).findIndex((b) => b.kind === 'heading');
  const titleLine = titleIndex === -1 ? undefined : blocks[titleIndex]!.text;
  // With --title, the first heading is dropped only when it says the same; otherwise it may be a real section.
  if (titleLine !== undefined && (givenTitle === undefined || sameText(givenTitle, titleLine))) {
    blocks = blocks.filter((_, i) => i !== titleIndex);
  }
  const { body, faq } = extractFaq(blocks);
  const lead = body.find((b) => b.kind === 'paragraph');
  if (!lead) throw new InputError('the text to import has no paragraphs, only headings');
  return { titleLine, byline, body, lead: lead.text, faq };
}

const GUESS_ORDER: ImportGuess['field'][] = ['title', 'slug', 'date', 'author', 'tags', 'summary', 'faq'];

function byField(a: ImportGuess, b: ImportGuess): number {
  return GUESS_ORDER.indexOf(a.field) - GUESS_ORDER.indexOf(b.field);
}

/** Shows a guessed value on one line: text as is, tags joined, the FAQ as a count. */
function showGuess(value: string | string[] | FaqEntry[]): string {
  if (typeof value === 'string') return value;
  if (value.length === 0) return '(none)';
  if (value.every((item) => typeof item === 'string')) return value.join(', ');
  return value.length === 1 ? '1 question' : `${value.length} questions`;
}

/** Turns a title into a slug: lowercase ASCII words joined by hyphens, at most 60 characters, cut between words. */
export function slugify(title: string): string {
  const ascii = title
    .replace(/[ßæœøłđþðı]/giu, (c) => TRANSLITERATION[c.toLowerCase()] ?? c)
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/['’‘]/g, '')
    .replace(/&/g, ' and ')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  if (ascii.length <= MAX_SLUG_CHARS) return ascii;
  const cut = ascii.slice(0, MAX_SLUG_CHARS + 1);
  const boundary = cut.lastIndexOf('-');
  return (boundary > 0 ? cut.slice(0, boundary) : cut.slice(0, MAX_SLUG_CHARS)).replace(/-+$/, '');
}

const TRANSLITERATION: Record<string, string> = { ß: 'ss', æ: 'ae', œ: 'oe', ø: 'o', ł: 'l', đ: 'd', þ: 'th', ð: 'd', ı: 'i' };

function splitParagraphs(text: string): string[] {
  const lines = text.replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n').split('\n').map((line) => line.trim());
  // Blank lines mean paragraphs are separated by them and may be wrapped; otherwise each line is a paragraph.
  // Only blank lines between text count (found in one pass: a text may be mostly blank lines).
  const first = lines.findIndex(Boolean);
  const blank = first === -1 ? -1 : lines.indexOf('', first);
  if (blank === -1 || !lines.slice(blank).some(Boolean)) return lines.filter(Boolean);
  return lines
    .join('\n')
    .split(/\n{2,}/)
    .map((block) => block.split('\n').filter(Boolean).join(' '))
    .filter(Boolean);
}

function classify(paragraphs: string[]): Block[] {
  return paragraphs.map((text, i): Block => ({ kind: i < paragraphs.length - 1 && isHeadingLike(text) ? 'heading' : 'paragraph', text }));
}

function isHeadingLike(line: string): boolean {
  // Length first: CLOSERS backtracks quadratically on a long run of brackets, and no heading is long.
  if (line.length > MAX_HEADING_CHARS) return false;
  const words = line.split(/\s+/).length;
  const last = line.replace(CLOSERS, '');
  if (words > MAX_HEADING_WORDS || last === '') return false;
  // Headings start capitalised (or with a number or an opening quote) and have no sentence-ending mark.
  return /^[\p{Lu}\p{N}“"‘'(]/u.test(line) && (!TERMINAL.test(last) || FAQ_HEADING.test(line));
}

function isQuestion(text: string): boolean {
  // A long answer that ends with a rhetorical question is not a question line.
  return text.length <= MAX_QUESTION_CHARS && /\?["”’'»)]*$/u.test(text);
}

function extractFaq(blocks: Block[]): { body: Block[]; faq: FaqEntry[] } {
  const start = blocks.findIndex((b) => b.kind === 'heading' && FAQ_HEADING.test(b.text));
  if (start === -1) return { body: blocks, faq: [] };
  const faq: FaqEntry[] = [];
  let i = start + 1;
  for (; i < blocks.length; i++) {
    const block = blocks[i]!;
    const current = faq[faq.length - 1];
    if (isQuestion(block.text)) {
      faq.push({ q: block.text, a: '' });
      // The line right after a question is its answer even when short ("Not yet"), never a heading.
      if (blocks[i + 1]) faq[faq.length - 1]!.a = blocks[++i]!.text;
    } else if (block.kind === 'heading' || !current) {
      break;
    } else {
      current.a = `${current.a}\n\n${block.text}`;
    }
  }
  // A FAQ that does not read as questions and answers stays in the body, so no text is lost.
  if (faq.length === 0 || faq.some((e) => e.a === '' || isQuestion(e.a))) return { body: blocks, faq: [] };
  return { body: [...blocks.slice(0, start), ...blocks.slice(i)], faq };
}

function titleFromSentence(paragraph: string): string {
  const sentence = /^.+?[.!?]["”’')]*(?=\s|$)/u.exec(paragraph)?.[0] ?? paragraph;
  const title = sentence.replace(/[.!]$/u, '');
  if (title.length <= MAX_TITLE_CHARS) return title;
  const cut = title.slice(0, MAX_TITLE_CHARS + 1);
  const boundary = cut.lastIndexOf(' ');
  return `${(boundary > 0 ? cut.slice(0, boundary) : cut.slice(0, MAX_TITLE_CHARS)).replace(/[\s,;:–—-]+$/u, '')}…`;
}

function guessTags(blocks: Block[]): string[] {
  const counts = new Map<string, number>();
  // Headings are title case, so only running text counts.
  for (const { text: paragraph } of blocks.filter((b) => b.kind === 'paragraph')) {
    for (const match of paragraph.matchAll(/\p{Lu}[\p{L}\p{M}]+/gu)) {
      // Any word starts a sentence capitalised; only capitals inside a sentence suggest a name.
      if (startsSentence(paragraph, match.index) || NOT_TAGS.has(match[0])) continue;
      counts.set(match[0], (counts.get(match[0]) ?? 0) + 1);
    }
  }
  return [...counts]
    .filter(([, n]) => n >= MIN_TAG_MENTIONS)
    .sort((a, b) => b[1] - a[1])
    .slice(0, MAX_TAGS)
    .map(([word]) => word);
}

/**
 * Whether the word at `index` opens a sentence: only space before it, or a sentence mark maybe followed by
 * closing quotes. Read backwards from the word, not by slicing the text before it, which is quadratic.
 */
function startsSentence(text: string, index: number): boolean {
  let i = index - 1;
  while (i >= 0 && /\s/.test(text[i]!)) i--;
  if (i < 0) return true;
  for (; i >= 0; i--) {
    if ('.!?:“"‘('.includes(text[i]!)) return true;
    if (!'"”’\')'.includes(text[i]!)) return false;
  }
  return false;
}

function cleanTags(tags: string[]): string[] {
  return [...new Set(tags.map((tag) => tag.trim()).filter(Boolean))];
}

function renderStoryFile(frontMatter: ImportedFrontMatter, body: Block[]): string {
  // Quoting every string keeps dates strings for YAML 1.1 readers too; no folding keeps the text intact.
  const yaml = stringify(frontMatter, { defaultStringType: 'QUOTE_DOUBLE', defaultKeyType: 'PLAIN', lineWidth: 0 });
  const markdown = body.map((b) => (b.kind === 'heading' ? `## ${escapeHeading(b.text)}` : escapeParagraph(b.text)));
  return `---\n${yaml}---\n${markdown.join('\n\n')}\n`;
}

/** Escapes what would turn a plain paragraph into another Markdown block (heading, list, quote, code, HTML). */
function escapeParagraph(text: string): string {
  if (/^[#>]/.test(text) || /^[-+*](\s|$)/.test(text) || /^([-*_])(\s*\1){2,}\s*$/.test(text)) return `\\${text}`;
  if (/^(`{3,}|~{3,})/.test(text) || /^<[a-z/!?]/i.test(text)) return `\\${text}`;
  return text.replace(/^(\d{1,9})([.)])(?=\s|$)/, '$1\\$2');
}

function escapeHeading(text: string): string {
  // A trailing " #" would be read as the heading's closing sequence and dropped.
  return text.replace(/(\s)(#+)$/, '$1\\$2');
}

function checkDate(value: string): string {
  const date = value.trim();
  const parsed = storyFrontMatterSchema.shape.date.safeParse(date);
  if (!parsed.success) throw new InputError(`--date ${describe(value)}: expected an ISO 8601 date with timezone, like 2025-07-04T09:00:00Z`);
  return date;
}

function checkSlug(value: string): string {
  const slug = value.trim();
  if (!storyFrontMatterSchema.shape.slug.safeParse(slug).success || slug === '') {
    throw new InputError(`--slug ${describe(value)}: expected lowercase letters, digits and single hyphens (like "my-story")`);
  }
  return slug;
}

function required(value: string, flag: string): string {
  const trimmed = value.trim();
  if (trimmed === '') throw new InputError(`${flag} is empty: expected some text`);
  return trimmed;
}

function sameText(a: string, b: string): boolean {
  const norm = (s: string) => s.normalize('NFKC').toLowerCase().replace(/\s+/g, ' ').trim();
  return norm(a) === norm(b);
}

function now(clock: Date): string {
  return clock.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
