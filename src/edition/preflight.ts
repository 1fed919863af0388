import type { CompiledEdition } from '../render/compile-edition.ts';
import { unresolvedSlots } from '../render/slots.ts';

/** Gmail clips messages whose HTML is larger than this. */
export const HTML_LIMIT_BYTES = 102 * 1024;

/** Reasons an edition must not be sent; empty when it may. */
export function preflight(edition: CompiledEdition, storyCount: number, kind: 'story' | 'digest'): string[] {
  const problems: string[] = [];
  const staticHtml = edition.html.parts.join('');
  // A recipient's values are short; the shared parts are what decides the size.
  const htmlBytes = Buffer.byteLength(staticHtml) + 400;
  if (htmlBytes > HTML_LIMIT_BYTES) {
    problems.push(`HTML is ${(htmlBytes / 1024).toFixed(1)} KB, over the ${HTML_LIMIT_BYTES / 1024} KB at which Gmail clips messages: use fewer stories`);
  }
  if (edition.text.parts.join('').trim().length === 0) problems.push('the plain-text part is empty');
  const leftovers = [...unresolvedSlots(staticHtml), ...unresolvedSlots(edition.text.parts.join(''))];
  if (leftovers.length > 0) problems.push(`unresolved template fields: ${[...new Set(leftovers)].slice(0, 5).join(', ')}`);
  if (!edition.html.fields.includes('unsubscribe_url')) problems.push('the HTML part has no unsubscribe link ({{recipient "unsubscribe_url"}})');
  if (!edition.text.fields.includes('unsubscribe_url')) problems.push('the text part has no unsubscribe link ({{recipient "unsubscribe_url"}})');
  if (storyCount === 0) problems.push(kind === 'digest' ? 'the digest is empty: no stories' : 'the edition has no story');
  if (!edition.subject.trim()) problems.push('the subject is empty');
  return problems;
}
