import { randomBytes } from 'node:crypto';
import { escapeHtml } from './escape.ts';

/** Fields that differ per recipient; everything else in an email is rendered once per edition. */
export const RECIPIENT_FIELDS = ['greeting', 'email', 'unsubscribe_url', 'preferences_url', 'action_url'] as const;

/** One per-recipient field name. */
export type RecipientField = (typeof RECIPIENT_FIELDS)[number];

/** The values of every recipient field for one subscriber; `action_url` is the confirm link of a confirmation email. */
export type RecipientValues = Record<RecipientField, string>;

/** Recipient values with no action link, as list messages have. */
export function recipientValues(values: Omit<RecipientValues, 'action_url'> & { action_url?: string }): RecipientValues {
  return { action_url: '', ...values };
}

/** Applies `encode` to every recipient value. */
export function mapValues(values: RecipientValues, encode: (value: string) => string): RecipientValues {
  const out = {} as RecipientValues;
  for (const field of RECIPIENT_FIELDS) out[field] = encode(values[field]);
  return out;
}

/**
 * A rendered document cut at its recipient slots: parts[0] field[0] parts[1] … parts[n].
 * Filling it is one string join, which is what makes per-recipient rendering cheap.
 */
export interface SlotTemplate {
  parts: string[];
  fields: RecipientField[];
}

// Unguessable per process, so text in a story can never forge a slot.
const NONCE = randomBytes(6).toString('hex');
const MARKER = new RegExp(`%%gz${NONCE}:(${RECIPIENT_FIELDS.join('|')})%%`, 'g');

/** The marker a template writes where a recipient field goes. */
export function slotMarker(field: RecipientField): string {
  return `%%gz${NONCE}:${field}%%`;
}

/** Cuts rendered output at its slot markers. */
export function splitSlots(rendered: string): SlotTemplate {
  const parts: string[] = [];
  const fields: RecipientField[] = [];
  let last = 0;
  for (const match of rendered.matchAll(MARKER)) {
    parts.push(rendered.slice(last, match.index));
    fields.push(match[1] as RecipientField);
    last = match.index + match[0].length;
  }
  parts.push(rendered.slice(last));
  return { parts, fields };
}

/** Fills a slot template with one recipient's values, already escaped for the target. */
export function fillSlots(template: SlotTemplate, values: RecipientValues): string {
  const { parts, fields } = template;
  let out = parts[0]!;
  for (let i = 0; i < fields.length; i++) out += values[fields[i]!] + parts[i + 1]!;
  return out;
}

/** HTML-escapes every recipient value, once per recipient, for use in the HTML part. */
export function escapeValuesForHtml(values: RecipientValues): RecipientValues {
  return mapValues(values, escapeHtml);
}

/** Recipient fields that a template left unfilled: a preflight check reads this. */
export function unresolvedSlots(rendered: string): string[] {
  return [...rendered.matchAll(/%%gz[0-9a-f]+:[a-z_]+%%|\{\{[^}]*\}\}/g)].map((m) => m[0]);
}
