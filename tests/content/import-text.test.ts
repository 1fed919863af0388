import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseStory } from '../../src/content/load-content.ts';
import { importPlainText, slugify } from '../../src/content/import-text.ts';
import { importStoryFile } from '../../src/content/import-story-file.ts';
import { InputError, type ContentIssue } from '../../src/errors.ts';

// The project's own plain-text article (one paragraph a line, no blank lines): a lead paragraph, the title
// line, short unpunctuated headings, and a Frequently Asked Questions part of three questions and answers.
const articleUrl = new URL('../fixtures/import/night-trains-alpine-corridor.txt', import.meta.url);
const article = await readFile(articleUrl, 'utf8');
const articleLines = article.split('\n').map((line) => line.trim()).filter(Boolean);
const TITLE = 'Night Trains Return to the Alpine Corridor';
const SLUG = 'night-trains-return-to-the-alpine-corridor';
const now = new Date('2025-07-04T09:00:00.456Z');

function headings(markdown: string): string[] {
  return markdown.split('\n').filter((line) => line.startsWith('## ')).map((line) => line.slice(3));
}

function body(markdown: string): string {
  return markdown.slice(markdown.indexOf('\n---\n') + 5);
}

function parse(markdown: string, file = 'content/stories/imported.md') {
  const issues: ContentIssue[] = [];
  const story = parseStory(markdown, file, 'https://example.org', issues);
  return { story, issues };
}

describe('importPlainText on the sample article', () => {
  const imported = importPlainText(article, { now });

  it('takes the first heading-like line as the title and does not repeat it', () => {
    expect(imported.frontMatter.title).toBe(TITLE);
    expect(body(imported.markdown)).not.toContain(TITLE);
  });

  it('turns the short unpunctuated lines into ## sections, FAQ excluded', () => {
    expect(headings(imported.markdown)).toEqual([
      'Why the Operators’ Bet Paid Off',
      'The Bottleneck: Track Capacity Through the Brenner Pass',
      'Crews, Carriages and the Cost of Growth',
      'What Passengers Are Saying',
      'Looking Beyond the Alps',
      'Conclusion',
    ]);
  });

  it('moves the Frequently Asked Questions into the faq list', () => {
    const faq = imported.frontMatter.faq;
    expect(faq.map((entry) => entry.q)).toEqual([
      'How often do the night trains between Vienna and Zurich run?',
      'Why are sleeper cabins so hard to book this season?',
      'Will the new carriages make overnight journeys any faster?',
    ]);
    expect(faq[0]!.a).toMatch(/^The Nightjet service between Vienna and Zurich runs every night of the year/);
    expect(faq[1]!.a).toMatch(/^The number of cabins is limited by the carriages the operators own/);
    expect(faq[2]!.a).toMatch(/^The new carriages improve comfort rather than speed\./);
    for (const entry of faq) {
      expect(articleLines).toContain(entry.a);
      expect(imported.markdown.split('---\n').slice(2).join('')).not.toContain(entry.q);
    }
    expect(body(imported.markdown)).not.toMatch(/Frequently Asked Questions/i);
  });

  it('uses the first paragraph as the summary and keeps it as the lead of the body', () => {
    expect(imported.frontMatter.summary).toBe(articleLines[0]);
    expect(body(imported.markdown).startsWith(`${articleLines[0]}\n\n`)).toBe(true);
  });

  it('keeps every body line of the text exactly, curly quotes and all', () => {
    const text = body(imported.markdown);
    const faqStart = articleLines.indexOf('Frequently Asked Questions');
    for (const line of [...articleLines.slice(2, faqStart), ...articleLines.slice(faqStart + 7)]) expect(text).toContain(line);
    expect(text).toContain('“steady and unglamorous, which is exactly what a railway should be,”');
    expect(text).toContain('the same scarce resources – track paths at night, trained crews and modern carriages – and');
  });

  it('guesses slug, date, author and tags, and lists every guess', () => {
    expect(imported.slug).toBe(SLUG);
    expect(imported.frontMatter.date).toBe('2025-07-04T09:00:00Z');
    expect(imported.frontMatter.author).toBe('Gazette Staff');
    // Names mentioned inside sentences at least three times, most mentioned first; headings and the FAQ do not count.
    expect(imported.frontMatter.tags).toEqual(['Vienna', 'Zurich', 'Nightjet', 'Brenner']);
    expect(imported.guesses).toEqual([
      { field: 'title', value: TITLE },
      { field: 'slug', value: SLUG },
      { field: 'date', value: '2025-07-04T09:00:00Z' },
      { field: 'author', value: 'Gazette Staff' },
      { field: 'tags', value: 'Vienna, Zurich, Nightjet, Brenner' },
      { field: 'summary', value: articleLines[0] },
      { field: 'faq', value: '3 questions' },
    ]);
  });

  it('writes the date quoted and a story file that loads with no issues', () => {
    expect(imported.markdown).toContain('date: "2025-07-04T09:00:00Z"');
    const { story, issues } = parse(imported.markdown, `content/stories/${SLUG}.md`);
    expect(issues).toEqual([]);
    expect(story?.title).toBe(TITLE);
    expect(story?.faq).toEqual(imported.frontMatter.faq);
    expect(story?.sections.map((s) => s.heading)).toEqual(headings(imported.markdown));
    expect(story?.date.toISOString()).toBe('2025-07-04T09:00:00.000Z');
  });
});

describe('importPlainText options', () => {
  it('lets flags override every guess', () => {
    const imported = importPlainText(article, {
      now,
      title: 'Sleepers sell out over the Alps',
      slug: 'sleepers-sell-out',
      date: '2025-07-03T18:30:00+02:00',
      author: 'Mira Kovalenko',
      tags: ['Rail', ' Travel ', 'Rail'],
    });
    expect(imported.frontMatter).toMatchObject({
      title: 'Sleepers sell out over the Alps',
      slug: 'sleepers-sell-out',
      date: '2025-07-03T18:30:00+02:00',
      author: 'Mira Kovalenko',
      tags: ['Rail', 'Travel'],
    });
    expect(imported.guesses.map((g) => g.field)).toEqual(['summary', 'faq']);
    // The text's own title line is not the given title, so it stays as a section rather than being lost.
    expect(headings(imported.markdown)[0]).toBe(TITLE);
    expect(parse(imported.markdown).issues).toEqual([]);
  });

  it('drops the title line when --title says the same', () => {
    const imported = importPlainText(article, { now, title: 'Night trains return to the Alpine corridor' });
    expect(headings(imported.markdown)[0]).toBe('Why the Operators’ Bet Paid Off');
  });

  it('rejects a --date without timezone, naming the flag and the value', () => {
    expect(() => importPlainText(article, { now, date: '2025-07-04 09:00' })).toThrow(InputError);
    expect(() => importPlainText(article, { now, date: '2025-07-04 09:00' })).toThrow(/--date "2025-07-04 09:00"/);
    expect(() => importPlainText(article, { now, date: 'tomorrow' })).toThrow(/--date/);
  });

  it('rejects a bad --slug and an empty --title', () => {
    expect(() => importPlainText(article, { now, slug: 'Not A Slug' })).toThrow(/--slug/);
    expect(() => importPlainText(article, { now, title: '  ' })).toThrow(/--title/);
  });

  it('rejects empty input', () => {
    expect(() => importPlainText('', { now })).toThrow(InputError);
    expect(() => importPlainText(' \n\n \n', { now })).toThrow(/empty/);
  });
});

describe('importPlainText on other shapes of text', () => {
  const wrapped = [
    'Grid Links Hold Through the Cold Snap',
    '',
    'By Mira Kovalenko',
    '',
    'Europe’s electricity interconnectors carried record flows in January,',
    'when a week of freezing weather pushed demand to its highest level.',
    '',
    'What Held',
    '',
    'Grid operators shared reserves across borders hour by hour, and',
    'the market coupling worked as designed.',
    '',
    '# of links rose to 400 this year, operators said.',
    '',
    '- not a list, just a dash',
    '',
    '1. Not a list either.',
    '',
    'FAQ',
    '',
    'Will prices fall?',
    '',
    'Not yet',
    '',
    'Who pays for new links?',
    '',
    'Grid users, through tariffs.',
    '',
    'Consumers too.',
    '',
    'What Comes Next',
    '',
    'Planners say three links are now the tightest points.',
  ].join('\r\n');

  const imported = importPlainText(wrapped, { now });

  it('reads blank-line paragraphs, joining wrapped lines', () => {
    expect(imported.frontMatter.title).toBe('Grid Links Hold Through the Cold Snap');
    expect(imported.frontMatter.summary).toBe(
      'Europe’s electricity interconnectors carried record flows in January, when a week of freezing weather pushed demand to its highest level.',
    );
    expect(headings(imported.markdown)).toEqual(['What Held', 'What Comes Next']);
    expect(imported.frontMatter.author).toBe('Mira Kovalenko');
  });

  it('takes a short line right after a question as its answer, and joins answer paragraphs', () => {
    expect(imported.frontMatter.faq).toEqual([
      { q: 'Will prices fall?', a: 'Not yet' },
      { q: 'Who pays for new links?', a: 'Grid users, through tariffs.\n\nConsumers too.' },
    ]);
  });

  it('escapes paragraphs that would otherwise become headings, lists or quotes', () => {
    const text = body(imported.markdown);
    expect(text).toContain('\n\\# of links rose to 400 this year, operators said.\n');
    expect(text).toContain('\n\\- not a list, just a dash\n');
    expect(text).toContain('\n1\\. Not a list either.\n');
    const { story, issues } = parse(imported.markdown);
    expect(issues).toEqual([]);
    expect(story?.sections.map((s) => s.heading)).toEqual(['What Held', 'What Comes Next']);
    expect(story?.sections[0]!.html).toContain('<p># of links rose to 400 this year, operators said.</p>');
    expect(story?.sections[0]!.html).toContain('<p>- not a list, just a dash</p>');
    expect(story?.sections[0]!.html).toContain('<p>1. Not a list either.</p>');
  });

  it('guesses the title from the first sentence when there is no heading', () => {
    const plain = importPlainText(
      'Officials in the capital said on Monday that the long-delayed bridge over the river would finally open next spring. More details came later.\nThe cost has doubled since work began.',
      { now },
    );
    expect(plain.frontMatter.title).toBe('Officials in the capital said on Monday that the long-delayed bridge over the…');
    expect(plain.frontMatter.tags).toEqual([]);
    expect(plain.guesses.find((g) => g.field === 'tags')).toEqual({ field: 'tags', value: '(none)' });
    expect(plain.frontMatter.faq).toEqual([]);
    expect(parse(plain.markdown).issues).toEqual([]);
  });

  it('never takes a heading after the FAQ as the title', () => {
    const closing = importPlainText('Lead paragraph here.\nFAQ:\nWhy?\nBecause.\nThe End\nDone.', { now });
    expect(closing.frontMatter.title).toBe('Lead paragraph here');
    expect(closing.frontMatter.faq).toEqual([{ q: 'Why?', a: 'Because.' }]);
    expect(headings(closing.markdown)).toEqual(['The End']);
  });

  it('keeps a FAQ that has no answers in the body rather than losing text', () => {
    const odd = importPlainText('Lead paragraph here.\nFAQ\nIs this a question?\nIs this another?', { now });
    expect(odd.frontMatter.faq).toEqual([]);
    expect(body(odd.markdown)).toContain('Is this a question?');
    expect(body(odd.markdown)).toContain('Is this another?');
  });
});

describe('slugify', () => {
  it('makes lowercase ASCII slugs cut between words', () => {
    expect(slugify('Putin’s Stance: Ça Marche, Straße & Łódź!')).toBe('putins-stance-ca-marche-strasse-and-lodz');
    const long = slugify('A very long title that goes on and on well past the sixty character limit of slugs');
    expect(long.length).toBeLessThanOrEqual(60);
    expect(long).toBe('a-very-long-title-that-goes-on-and-on-well-past-the-sixty');
  });
});

describe('importStoryFile', () => {
  let dir: string;
  let contentDir: string;
  let input: string;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'gazette-import-'));
    contentDir = path.join(dir, 'content');
    await mkdir(path.join(contentDir, 'stories'), { recursive: true });
    input = path.join(dir, 'article.txt');
    await writeFile(input, article);
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes content/stories/<slug>.md that parses, leaving no temp file', async () => {
    const result = await importStoryFile(input, contentDir, { now });
    const expected = path.join(contentDir, 'stories', `${SLUG}.md`);
    expect(result.path).toBe(expected);
    const written = await readFile(expected, 'utf8');
    expect(written).toBe(result.imported.markdown);
    expect(parse(written).issues).toEqual([]);
    expect(await readdir(path.join(contentDir, 'stories'))).toEqual([`${SLUG}.md`]);
  });

  it('refuses to overwrite an existing story and suggests --slug', async () => {
    await importStoryFile(input, contentDir, { now });
    const first = await readFile(path.join(contentDir, 'stories', `${SLUG}.md`), 'utf8');
    const again = importStoryFile(input, contentDir, { now, author: 'Someone Else' });
    await expect(again).rejects.toThrow(InputError);
    await expect(importStoryFile(input, contentDir, { now })).rejects.toThrow(/night-trains-return-to-the-alpine-corridor\.md.*--slug/);
    expect(await readFile(path.join(contentDir, 'stories', `${SLUG}.md`), 'utf8')).toBe(first);
    const other = await importStoryFile(input, contentDir, { now, slug: 'night-trains-2' });
    expect(path.basename(other.path)).toBe('night-trains-2.md');
    expect((await readdir(path.join(contentDir, 'stories'))).sort()).toEqual(['night-trains-2.md', `${SLUG}.md`]);
  });

  it('refuses a slug already used by a date-prefixed file', async () => {
    await writeFile(path.join(contentDir, 'stories', '2025-07-01-no-deal.md'), '---\ntitle: x\n---\nbody\n');
    await expect(importStoryFile(input, contentDir, { now, slug: 'no-deal' })).rejects.toThrow(/2025-07-01-no-deal\.md/);
  });

  it('names the input path when it cannot be read', async () => {
    const missing = path.join(dir, 'nope.txt');
    await expect(importStoryFile(missing, contentDir, { now })).rejects.toThrow(InputError);
    await expect(importStoryFile(missing, contentDir, { now })).rejects.toThrow(missing);
  });
});
