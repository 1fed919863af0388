import { InputError } from '../errors.ts';
import type { MailingList } from '../model/content.ts';
import { FREQUENCIES, type Frequency, type ListChoice } from '../model/subscriber.ts';

/** Field names start with this, then the list's slug: `frequency_weekly=weekly`. */
const FIELD_PREFIX = 'frequency_';

/** What a form (or JSON body) asks for, as it arrived. */
export interface ListChoiceInput {
  /** List slugs: an array, one slug, or slugs separated by commas. */
  lists?: unknown;
  /** The one frequency of old forms (and the home page), used for every list without its own. */
  frequency?: unknown;
  /** Each list's own frequency by slug, from the `frequency_<slug>` fields. */
  frequencies?: ReadonlyMap<string, unknown>;
}

/** The name of the field that carries one list's frequency. */
export function frequencyField(slug: string): string {
  return `${FIELD_PREFIX}${slug}`;
}

/** The `frequency_<slug>` fields of a form or JSON body, by slug. */
export function perListFrequencies(body: Record<string, unknown>): Map<string, unknown> {
  const found = new Map<string, unknown>();
  for (const [key, value] of Object.entries(body)) {
    if (key.startsWith(FIELD_PREFIX)) found.set(key.slice(FIELD_PREFIX.length), value);
  }
  return found;
}

/** How parseListChoices fills in what a request leaves out. */
export interface ListChoiceDefaults {
  /** The lists as they stand: a chosen list without a frequency of its own, or a shared one, keeps its own. Default: none. */
  current?: readonly ListChoice[];
  /** True when no list chosen means none (a preferences form with every box cleared); default: the first list. */
  emptyIsNone?: boolean;
}

/**
 * Checks the requested lists and frequencies against site.yaml. Each chosen list takes its own
 * field, else the single `frequency`, else its current one, else instant. Every frequency field
 * sent is checked, chosen or not, and a refusal (InputError) names the field.
 */
export function parseListChoices(known: readonly MailingList[], input: ListChoiceInput, defaults: ListChoiceDefaults = {}): ListChoice[] {
  const shared = frequencyOrError('frequency', input.frequency);
  const own = new Map<string, Frequency>();
  for (const [slug, value] of input.frequencies ?? []) {
    const field = frequencyField(slug);
    if (!known.some((l) => l.slug === slug)) throw new InputError(`${field.slice(0, 80)}: ${unknownList(known, slug)}`);
    const frequency = frequencyOrError(field, value);
    if (frequency) own.set(slug, frequency);
  }
  const empty = input.lists === undefined || input.lists === '' || (Array.isArray(input.lists) && input.lists.length === 0);
  if (empty && defaults.emptyIsNone) return [];
  const raw = input.lists === undefined || input.lists === '' ? [known[0]!.slug] : Array.isArray(input.lists) ? input.lists : String(input.lists).split(',');
  const slugs = [...new Set(raw.map((l) => String(l).trim()).filter(Boolean))];
  if (slugs.length === 0) throw new InputError('lists: choose at least one list');
  for (const slug of slugs) {
    if (!known.some((l) => l.slug === slug)) throw new InputError(`lists: ${unknownList(known, slug)}`);
  }
  return slugs.map((slug) => ({
    slug,
    frequency: own.get(slug) ?? shared ?? defaults.current?.find((c) => c.slug === slug)?.frequency ?? 'instant',
  }));
}

/** A valid frequency, undefined when the field is absent or empty; InputError naming the field otherwise. */
function frequencyOrError(field: string, value: unknown): Frequency | undefined {
  if (value === undefined || value === '') return undefined;
  if (typeof value === 'string' && FREQUENCIES.includes(value as Frequency)) return value as Frequency;
  const got = JSON.stringify(value) ?? String(value);
  throw new InputError(`${field}: expected one of ${FREQUENCIES.join(', ')}, got ${got.length > 40 ? `${got.slice(0, 40)}…` : got}`);
}

function unknownList(known: readonly MailingList[], slug: string): string {
  return `unknown list "${slug.slice(0, 60)}" (known: ${known.map((l) => l.slug).join(', ')})`;
}
