import type { Site } from '../model/content.ts';
import { FREQUENCIES } from '../model/subscriber.ts';

const FREQUENCY_LABELS: Record<string, string> = { instant: 'Every story, as it is published', daily: 'A daily digest', weekly: 'A weekly digest' };
/** The subscribe form's fields, as the core names them at the start of its InputError messages. */
const FIELDS = ['email', 'name', 'lists', 'frequency'] as const;
type Field = (typeof FIELDS)[number];

/** A refused subscribe: what was typed, and the core's message with the field it names (if it names one). */
export interface FormState {
  typed: Record<string, unknown>;
  error: { field: Field | undefined; message: string };
}

/** The refusal of a subscribe, its field read from the message the core gives (`email: required`). */
export function formState(typed: Record<string, unknown>, message: string): FormState {
  return { typed, error: { field: FIELDS.find((f) => message.startsWith(`${f}: `)), message } };
}

/**
 * The subscribe box's template data: each field's value, its error, and the choices checked. The
 * choices sit behind a disclosure, open when one of them is what was refused.
 */
export function subscribeForm(site: Site, form?: FormState) {
  const text = (value: unknown): string => (typeof value === 'string' ? value : Array.isArray(value) && typeof value[0] === 'string' ? value[0] : '');
  const errorOf = (field: Field) => (form?.error.field === field ? form.error.message : undefined);
  const rawLists = form?.typed.lists;
  const lists = form ? (Array.isArray(rawLists) ? rawLists : [rawLists]).filter((l): l is string => typeof l === 'string').flatMap((l) => l.split(',')).map((l) => l.trim()) : [];
  const typedFrequency = text(form?.typed.frequency);
  const frequency = FREQUENCIES.includes(typedFrequency as (typeof FREQUENCIES)[number]) ? typedFrequency : 'instant';
  const field = form?.error.field;
  return {
    error: form && !field ? form.error.message : undefined,
    // A hidden field cannot show its error or take the focus: the disclosure opens for it.
    open: field !== undefined && field !== 'email',
    email: { value: text(form?.typed.email), error: errorOf('email') },
    name: { value: text(form?.typed.name), error: errorOf('name') },
    lists: {
      error: errorOf('lists'),
      // A fresh form ticks the first list; a refused one shows the boxes as they were sent.
      options: site.lists.map((l, i) => ({ ...l, checked: form ? lists.includes(l.slug) : i === 0 })),
    },
    frequency: { error: errorOf('frequency'), options: FREQUENCIES.map((value) => ({ value, label: FREQUENCY_LABELS[value], checked: value === frequency })) },
  };
}
