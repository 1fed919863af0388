import { fileURLToPath } from 'node:url';
import { composeEdition } from '../src/edition/compose-edition.ts';
import { buildFeeds } from '../src/feed/build-feeds.ts';
import { recipientLinks } from '../src/links/recipient-links.ts';
import { TokenSigner } from '../src/links/tokens.ts';
import { compileEdition } from '../src/render/compile-edition.ts';
import { loadEmailTemplates } from '../src/render/email-templates.ts';
import { escapeValuesForHtml, fillSlots, recipientValues, type RecipientValues } from '../src/render/slots.ts';
import { BENCH_SITE, bestOf, syntheticStories } from './synthetic.ts';

/** Render and feed benchmarks (issue: the build pipeline). Returns printable result lines. */
export async function benchRender(): Promise<string[]> {
  const templates = await loadEmailTemplates(fileURLToPath(new URL('../templates', import.meta.url)));
  const list = BENCH_SITE.lists[0]!;
  const input = composeEdition(BENCH_SITE, list, 'digest', syntheticStories(6), new Date());
  await compileEdition(templates, input); // warm-up: MJML's first compile loads its components
  const compileMs = await bestOf(20, () => compileEdition(templates, input));
  const edition = await compileEdition(templates, input);
  const signer = new TokenSigner('bench-secret-0123456789abcdef');

  const personalize = (id: number) => {
    const links = recipientLinks(BENCH_SITE, signer, id);
    const values: RecipientValues = recipientValues({
      greeting: `Hello Reader ${id},`,
      email: `reader${id}@example.com`,
      unsubscribe_url: links.unsubscribeUrl,
      preferences_url: links.preferencesUrl,
    });
    return fillSlots(edition.html, escapeValuesForHtml(values)).length + fillSlots(edition.text, values).length;
  };
  const recipients = 10_000;
  for (let i = 0; i < 2_000; i++) personalize(i); // warm-up for the JIT
  const onceMs = await bestOf(3, () => {
    for (let i = 0; i < recipients; i++) personalize(i);
  });
  const oncePerSecond = recipients / (onceMs / 1000);
  // The naive way compiles MJML per recipient; 50 recipients are enough to measure its rate.
  const naiveCount = 50;
  const naiveMs = await bestOf(1, async () => {
    for (let i = 0; i < naiveCount; i++) {
      const compiled = await compileEdition(templates, input);
      fillSlots(compiled.html, escapeValuesForHtml(recipientValues({ greeting: 'Hi', email: 'x@example.com', unsubscribe_url: 'u', preferences_url: 'p' })));
    }
  });
  const naivePerSecond = naiveCount / (naiveMs / 1000);

  const feed1k = syntheticStories(1_000);
  const feed10k = syntheticStories(10_000);
  const feed1kMs = await bestOf(3, () => buildFeeds(BENCH_SITE, feed1k, new Date()));
  const feed10kMs = await bestOf(3, () => buildFeeds(BENCH_SITE, feed10k, new Date()));
  const htmlKb = Buffer.byteLength(fillSlots(edition.html, escapeValuesForHtml(recipientValues({ greeting: 'Hi', email: 'x@example.com', unsubscribe_url: 'u', preferences_url: 'p' })))) / 1024;

  return [
    `render: MJML compile of a 6-story digest (warm, best of 20): ${compileMs.toFixed(1)} ms (${htmlKb.toFixed(1)} KB HTML)`,
    `render: personalized emails/s, compile once (HTML + text + 2 signed links, 10,000 recipients, one core): ${Math.round(oncePerSecond).toLocaleString('en')} /s   [target >= 100,000]`,
    `render: personalized emails/s, MJML per recipient (naive): ${naivePerSecond.toFixed(0)} /s; ratio ${Math.round(oncePerSecond / naivePerSecond).toLocaleString('en')}x   [target >= 500x]`,
    `feed: build of 1,000 stories: ${feed1kMs.toFixed(0)} ms; 10,000 stories: ${feed10kMs.toFixed(0)} ms   [target <= 1000 ms]`,
  ];
}
