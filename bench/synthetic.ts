import type { Site, Story } from '../src/model/content.ts';

/** A site like content/site.yaml, for benchmarks that must not depend on the sample content. */
export const BENCH_SITE: Site = {
  title: 'Bench Gazette',
  description: 'Synthetic newsletter for benchmarks',
  baseUrl: 'https://bench.example.org',
  language: 'en',
  timezone: 'UTC',
  sender: { name: 'Bench Gazette', address: 'news@bench.example.org', replyTo: undefined },
  postalAddress: '1 Bench Street, Testville',
  editors: ['news@bench.example.org'],
  lists: [{ slug: 'main', name: 'Main list', description: '' }],
  feed: { limit: 50, ttlMinutes: 60 },
  theme: { accent: '#9c2f1f', logoUrl: undefined },
};

/** `count` synthetic stories of realistic size, newest first. */
export function syntheticStories(count: number): Story[] {
  const paragraph = '<p>' + 'Diplomats met again on Thursday without a breakthrough, officials said. '.repeat(8) + '</p>';
  return Array.from({ length: count }, (_, i) => {
    const slug = `story-${i}`;
    const sections = [1, 2, 3].map((n) => ({ heading: `Section ${n} of story ${i}`, html: paragraph }));
    const bodyHtml = paragraph + sections.map((s) => `<h2>${s.heading}</h2>${s.html}`).join('');
    return {
      slug,
      title: `Story ${i}: talks & “tensions” continue`,
      date: new Date(Date.UTC(2025, 0, 1) + (count - i) * 3_600_000),
      author: 'Bench Writer',
      summary: 'A summary of the story, one or two sentences long, as editors write them for cards and feeds.',
      tags: [`tag-${i % 20}`, 'all'],
      image: { url: `https://img.bench.example.org/${i}.jpg`, alt: `Picture ${i}`, width: 1200, height: 630 },
      faq: [],
      draft: false,
      url: `https://bench.example.org/stories/${slug}`,
      bodyHtml,
      introHtml: paragraph,
      sections,
      contentHtml: bodyHtml,
      sourceFile: `content/stories/${slug}.md`,
    };
  });
}

/** Milliseconds `fn` takes, best of `runs`. */
export async function bestOf(runs: number, fn: () => unknown): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await fn();
    best = Math.min(best, performance.now() - start);
  }
  return best;
}
