import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadContent } from '../../src/content/load-content.ts';
import { publishedStories } from '../../src/model/content.ts';
import { ContentError, type ContentIssue } from '../../src/errors.ts';
import { storyFile, tempContentDir } from '../helpers/content-dir.ts';

/** What is wrong with these stories: the files left out, each with its problem (site.yaml's problems throw instead). */
async function issuesFor(stories: Record<string, string>): Promise<ContentIssue[]> {
  const dir = await tempContentDir(stories);
  try {
    const content = await loadContent(dir);
    expect(content.problems.length, 'expected problems').toBeGreaterThan(0);
    return content.problems;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function oneIssue(fields: Record<string, string>, body?: string): Promise<ContentIssue> {
  const issues = await issuesFor({ 'x.md': storyFile(fields, body) });
  expect(issues).toHaveLength(1);
  return issues[0]!;
}

describe('story validation names file, field and what was expected', () => {
  it('rejects a date without timezone, quoting the value', async () => {
    const issue = await oneIssue({ date: 'yesterday' });
    expect(issue.file).toMatch(/stories\/x\.md$/);
    expect(issue.field).toBe('date');
    expect(issue.line).toBe(3);
    expect(issue.message).toBe('expected an ISO 8601 date with timezone, got "yesterday"');
    expect((await oneIssue({ date: '2025-07-01T08:00:00' })).field).toBe('date');
  });

  it('rejects a missing title', async () => {
    const issue = await oneIssue({ title: '' });
    expect(issue.field).toBe('title');
    expect(issue.message).toMatch(/required: expected a title/);
  });

  it('rejects an empty author and a non-string summary', async () => {
    expect((await oneIssue({ author: '""' })).message).toMatch(/author's name, got an empty string/);
    expect((await oneIssue({ summary: '[1, 2]' })).field).toBe('summary');
  });

  it('rejects tags that are not a list', async () => {
    const issue = await oneIssue({ tags: '{a: 1}' });
    expect(issue.field).toBe('tags');
    expect(issue.message).toMatch(/expected a list of tags/);
  });

  it('rejects a relative image URL and an image without alt text', async () => {
    const url = await oneIssue({ image: '{url: "/img.png", alt: "x"}' });
    expect(url.field).toBe('image.url');
    expect(url.message).toMatch(/absolute http\(s\) URL, got "\/img.png"/);
    const alt = await oneIssue({ image: '{url: "https://e.org/i.png"}' });
    expect(alt.field).toBe('image.alt');
  });

  it('rejects a body image without alt text', async () => {
    const issue = await oneIssue({}, 'Text\n\n![](https://e.org/i.png)\n');
    expect(issue.field).toBe('body');
    expect(issue.message).toMatch(/has no alt text/);
  });

  it('rejects a faq entry without an answer', async () => {
    const issue = await oneIssue({ faq: '[{q: "Why?"}]' });
    expect(issue.field).toBe('faq.0.a');
  });

  it('rejects a bad slug, a non-boolean draft and unknown fields', async () => {
    expect((await oneIssue({ slug: '"Not A Slug"' })).field).toBe('slug');
    expect((await oneIssue({ draft: '"yes"' })).message).toBe('expected true or false, got "yes"');
    const unknown = await oneIssue({ titel: '"typo"' });
    expect(unknown.field).toBe('titel');
    expect(unknown.message).toMatch(/unknown field/);
  });

  it('rejects invalid YAML with its line, and a file without front matter', async () => {
    const yaml = await issuesFor({ 'y.md': '---\ntitle: "x"\ndate: [unclosed\n---\nbody\n' });
    expect(yaml[0]?.message).toMatch(/invalid YAML/);
    expect(yaml[0]?.line).toBeGreaterThanOrEqual(3);
    const none = await issuesFor({ 'n.md': 'just text\n' });
    expect(none[0]?.message).toMatch(/front matter/);
  });

  it('rejects two stories with the same slug', async () => {
    const issues = await issuesFor({ 'a.md': storyFile({ slug: 'same' }), 'b.md': storyFile({ slug: 'same' }) });
    expect(issues).toHaveLength(1);
    expect(issues[0]!.field).toBe('slug');
    expect(issues[0]!.message).toMatch(/already used by .*a\.md/);
  });

  it('reports every error of every file together', async () => {
    const issues = await issuesFor({
      'a.md': storyFile({ date: 'yesterday', author: '' }),
      'b.md': storyFile({ title: '""' }),
      'c.md': storyFile(),
    });
    expect(issues.map((i) => `${path.basename(i.file)} ${i.field}`).sort()).toEqual(['a.md author', 'a.md date', 'b.md title']);
  });
});

describe('site.yaml validation', () => {
  it('names the field of site.yaml that is wrong', async () => {
    const dir = await tempContentDir({ 'a.md': storyFile() });
    const site = await readFile(path.join(dir, 'site.yaml'), 'utf8');
    await writeFile(path.join(dir, 'site.yaml'), site.replace(/address: ".*"/, 'address: "not-an-email"').replace('timezone: "Europe/Dublin"', 'timezone: "Mars/Olympus"'));
    const error = await loadContent(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ContentError);
    const fields = (error as ContentError).issues.map((i) => i.field).sort();
    expect(fields).toEqual(['sender.address', 'timezone']);
    expect((error as ContentError).message).toMatch(/site\.yaml:\d+: timezone: expected an IANA time zone/);
  });
});

describe('headings with entities', () => {
  it('keeps escaped entities literal and survives numeric ones out of range', async () => {
    const dir = await tempContentDir({ 'e.md': storyFile({}, 'Intro.\n\n## Escaping `&#169;` in HTML\n\nText.\n\n## Code `&#99999999;`\n\nMore.\n') });
    const [story] = (await loadContent(dir)).stories;
    expect(story!.sections.map((s) => s.heading)).toEqual(['Escaping &#169; in HTML', 'Code &#99999999;']);
  });
});

describe('published stories', () => {
  it('leaves out drafts and stories dated in the future, newest first', async () => {
    const dir = await tempContentDir({
      'old.md': storyFile({ date: '2025-01-01T00:00:00Z' }),
      'new.md': storyFile({ date: '2025-06-01T00:00:00+02:00' }),
      'draft.md': storyFile({ draft: 'true' }),
      'future.md': storyFile({ date: '2030-01-01T00:00:00Z' }),
    });
    const content = await loadContent(dir);
    expect(content.stories).toHaveLength(4);
    const slugs = publishedStories(content, new Date('2026-01-01T00:00:00Z')).map((s) => s.slug);
    expect(slugs).toEqual(['new', 'old']);
  });

  it('sanitizes the body: no script, no handlers, links made absolute', async () => {
    const dir = await tempContentDir({}, { withGolden: true });
    const [story] = (await loadContent(dir)).stories;
    expect(story!.contentHtml).not.toMatch(/<script|onclick|alert\(/);
    expect(story!.contentHtml).toContain('href="https://gazette.example.org/about"');
    expect(story!.sections.map((s) => s.heading)).toEqual(['First section: lists & quotes', 'Второй раздел — code']);
  });
});
