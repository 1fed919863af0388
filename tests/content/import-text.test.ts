import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseStory } from '../../src/content/load-content.ts';
import { importPlainText, slugify } from '../../src/content/import-text.ts';
import { importStoryFile } from '../../src/content/import-story-file.ts';
import { InputError, type ContentIssue } from '../../src/errors.ts';

// Relative to this file: in CI the clone lives elsewhere, with shared/ beside it.
const seedUrl = new URL('../../../shared/seeds/000_2d55d13b5729b6b3.txt', import.meta.url);
const seed = await readFile(seedUrl, 'utf8');
const seedLines = seed.split('\n').map((line) => line.trim()).filter(Boolean);
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

describe('importPlainText on the seed article', () => {
  const imported = importPlainText(seed, { now });

  it('takes the first heading-like line as the title and does not repeat it', () => {
    expect(imported.frontMatter.title).toBe('Trump-Putin Call Yields No Breakthrough on Ukraine');
    expect(body(imported.markdown)).not.toContain('Trump-Putin Call Yields No Breakthrough on Ukraine');
  });

  it('turns the short unpunctuated lines into ## sections, FAQ excluded', () => {
    expect(headings(imported.markdown)).toEqual([
      'Understanding Putin’s Stance and the Stalemate',
      'The Complex Backdrop: US-Ukraine Relationship Strain',
      'The Pause in US Military Aid to Ukraine',
      'Broader Geopolitical Discussions',
      'Implications of the Diplomatic Deadlock',
      'Conclusion',
    ]);
  });

  it('moves the Frequently Asked Questions into the faq list', () => {
    const faq = imported.frontMatter.faq;
    expect(faq.map((entry) => entry.q)).toEqual([
      'What was the main outcome of the Trump-Putin call regarding the Ukraine war?',
      'How does the recent pause in U.S. weapons shipments factor into discussions about Ukraine aid?',
      'Does the lack of progress in the call mean peace talks for the Ukraine war are impossible soon?',
    ]);
    expect(faq[0]!.a).toMatch(/^President Trump reported making “no progress at all” with Russian President Vladimir Putin/);
    expect(faq[1]!.a).toMatch(/^The U\.S\. recently paused certain military aid shipments to Ukraine/);
    expect(faq[2]!.a).toMatch(/^The failure of President Trump and President Putin to make progress on a ceasefire/);
    for (const entry of faq) {
      expect(seedLines).toContain(entry.a);
      expect(imported.markdown.split('---\n').slice(2).join('')).not.toContain(entry.q);
    }
    expect(body(imported.markdown)).not.toMatch(/Frequently Asked Questions/i);
  });

  it('uses the first paragraph as the summary and keeps it as the lead of the body', () => {
    expect(imported.frontMatter.summary).toBe(seedLines[0]);
    expect(body(imported.markdown).startsWith(`${seedLines[0]}\n\n`)).toBe(true);
  });

  it('keeps every body line of the text exactly, curly quotes and all', () => {
    const text = body(imported.markdown);
    const faqStart = seedLines.indexOf('Frequently Asked Questions');
    for (const line of [...seedLines.slice(2, faqStart), ...seedLines.slice(faqStart + 7)]) expect(text).toContain(line);
    expect(text).toContain('“frank and substantive.”');
  });

  it('guesses slug, date, author and tags, and lists every guess', () => {
    expect(imported.slug).toBe('trump-putin-call-yields-no-breakthrough-on-ukraine');
    expect(imported.frontMatter.date).toBe('2025-07-04T09:00:00Z');
    expect(imported.frontMatter.author).toBe('Gazette Staff');
    expect(imported.frontMatter.tags).toEqual(['Ukraine', 'Trump', 'Putin', 'Russia']);
    expect(imported.guesses).toEqual([
      { field: 'title', value: 'Trump-Putin Call Yields No Breakthrough on Ukraine' },
      { field: 'slug', value: 'trump-putin-call-yields-no-breakthrough-on-ukraine' },
      { field: 'date', value: '2025-07-04T09:00:00Z' },
      { field: 'author', value: 'Gazette Staff' },
      { field: 'tags', value: 'Ukraine, Trump, Putin, Russia' },
      { field: 'summary', value: seedLines[0] },
      { field: 'faq', value: '3 questions' },
    ]);
  });

  it('writes the date quoted and a story file that loads with no issues', () => {
    expect(imported.markdown).toContain('date: "2025-07-04T09:00:00Z"');
    const { story, issues } = parse(imported.markdown, 'content/stories/trump-putin-call-yields-no-breakthrough-on-ukraine.md');
    expect(issues).toEqual([]);
    expect(story?.title).toBe('Trump-Putin Call Yields No Breakthrough on Ukraine');
    expect(story?.faq).toEqual(imported.frontMatter.faq);
    expect(story?.sections.map((s) => s.heading)).toEqual(headings(imported.markdown));
    expect(story?.date.toISOString()).toBe('2025-07-04T09:00:00.000Z');
  });
});

describe('importPlainText options', () => {
  it('lets flags override every guess', () => {
    const imported = importPlainText(seed, {
      now,
      title: 'Call ends without a deal',
      slug: 'no-deal',
      date: '2025-07-03T18:30:00+02:00',
      author: 'Mira Kovalenko',
      tags: ['Ukraine', ' Diplomacy ', 'Ukraine'],
    });
    expect(imported.frontMatter).toMatchObject({
      title: 'Call ends without a deal',
      slug: 'no-deal',
      date: '2025-07-03T18:30:00+02:00',
      author: 'Mira Kovalenko',
      tags: ['Ukraine', 'Diplomacy'],
    });
    expect(imported.guesses.map((g) => g.field)).toEqual(['summary', 'faq']);
    // The text's own title line is not the given title, so it stays as a section rather than being lost.
    expect(headings(imported.markdown)[0]).toBe('Trump-Putin Call Yields No Breakthrough on Ukraine');
    expect(parse(imported.markdown).issues).toEqual([]);
  });

  it('drops the title line when --title says the same', () => {
    const imported = importPlainText(seed, { now, title: 'Trump-Putin call yields no breakthrough on Ukraine' });
    expect(headings(imported.markdown)[0]).toBe('Understanding Putin’s Stance and the Stalemate');
  });

  it('rejects a --date without timezone, naming the flag and the value', () => {
    expect(() => importPlainText(seed, { now, date: '2025-07-04 09:00' })).toThrow(InputError);
    expect(() => importPlainText(seed, { now, date: '2025-07-04 09:00' })).toThrow(/--date "2025-07-04 09:00"/);
    expect(() => importPlainText(seed, { now, date: 'tomorrow' })).toThrow(/--date/);
  });

  it('rejects a bad --slug and an empty --title', () => {
    expect(() => importPlainText(seed, { now, slug: 'Not A Slug' })).toThrow(/--slug/);
    expect(() => importPlainText(seed, { now, title: '  ' })).toThrow(/--title/);
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
    await writeFile(input, seed);
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes content/stories/<slug>.md that parses, leaving no temp file', async () => {
    const result = await importStoryFile(input, contentDir, { now });
    const expected = path.join(contentDir, 'stories', 'trump-putin-call-yields-no-breakthrough-on-ukraine.md');
    expect(result.path).toBe(expected);
    const written = await readFile(expected, 'utf8');
    expect(written).toBe(result.imported.markdown);
    expect(parse(written).issues).toEqual([]);
    expect(await readdir(path.join(contentDir, 'stories'))).toEqual(['trump-putin-call-yields-no-breakthrough-on-ukraine.md']);
  });

  it('refuses to overwrite an existing story and suggests --slug', async () => {
    await importStoryFile(input, contentDir, { now });
    const first = await readFile(path.join(contentDir, 'stories', 'trump-putin-call-yields-no-breakthrough-on-ukraine.md'), 'utf8');
    const again = importStoryFile(input, contentDir, { now, author: 'Someone Else' });
    await expect(again).rejects.toThrow(InputError);
    await expect(importStoryFile(input, contentDir, { now })).rejects.toThrow(/trump-putin-call-yields-no-breakthrough-on-ukraine\.md.*--slug/);
    expect(await readFile(path.join(contentDir, 'stories', 'trump-putin-call-yields-no-breakthrough-on-ukraine.md'), 'utf8')).toBe(first);
    const other = await importStoryFile(input, contentDir, { now, slug: 'trump-putin-call-2' });
    expect(path.basename(other.path)).toBe('trump-putin-call-2.md');
    expect((await readdir(path.join(contentDir, 'stories'))).sort()).toEqual([
      'trump-putin-call-2.md',
      'trump-putin-call-yields-no-breakthrough-on-ukraine.md',
    ]);
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
