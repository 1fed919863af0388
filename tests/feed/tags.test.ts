import { describe, expect, it } from 'vitest';
import { groupByTag, tagSlug } from '../../src/feed/tags.ts';
import { makeStory } from '../fixtures/feed-stories/make-story.ts';

describe('tagSlug', () => {
  it('keeps Cyrillic letters, whole (ї stays ї)', () => {
    expect(tagSlug('Україна')).toBe('україна');
    expect(tagSlug('Київ і Львів')).toBe('київ-і-львів');
  });

  it('joins words with single hyphens and trims them', () => {
    expect(tagSlug('C++ & Rust')).toBe('c-rust');
    expect(tagSlug('  Foreign   Policy! ')).toBe('foreign-policy');
    expect(tagSlug('COVID-19')).toBe('covid-19');
  });

  it('drops accents from Latin letters', () => {
    expect(tagSlug('Café Société')).toBe('cafe-societe');
    expect(tagSlug('Ｆｕｌｌｗｉｄｔｈ')).toBe('fullwidth');
  });

  it('is never empty: a tag with no letters gets a stable hashed name', () => {
    const slug = tagSlug('  ');
    expect(slug).toMatch(/^tag-[0-9a-f]{8}$/);
    expect(tagSlug('  ')).toBe(slug);
    expect(tagSlug('+++')).toMatch(/^tag-[0-9a-f]{8}$/);
    expect(tagSlug('+++')).not.toBe(slug);
  });

  it('is a safe single path segment', () => {
    for (const tag of ['../etc/passwd', 'a/b\\c', '.hidden', 'x'.repeat(500)]) {
      const slug = tagSlug(tag);
      expect(slug).toMatch(/^[\p{L}\p{N}]+(-[\p{L}\p{N}]+)*$/u);
      expect(slug.length).toBeLessThanOrEqual(80);
    }
  });
});

describe('groupByTag', () => {
  it('groups stories by slug, in input order, under the tag as first written', () => {
    const a = makeStory({ slug: 'a', tags: ['Rust', 'Україна'] });
    const b = makeStory({ slug: 'b', tags: ['rust'] });
    const c = makeStory({ slug: 'c', tags: ['Україна', 'RUST', 'Rust!'] });
    const groups = groupByTag([a, b, c]);
    expect([...groups.keys()]).toEqual(['rust', 'україна']);
    expect(groups.get('rust')).toEqual({ tag: 'Rust', stories: [a, b, c] });
    expect(groups.get('україна')).toEqual({ tag: 'Україна', stories: [a, c] });
  });

  it('is empty when no story has tags', () => {
    expect(groupByTag([makeStory({ slug: 'a' })]).size).toBe(0);
  });
});
