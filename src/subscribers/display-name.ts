/** Longest name accepted, in characters (code points, so an emoji counts as one). */
export const MAX_DISPLAY_NAME_LENGTH = 100;

// C0 (tab, CR and LF included), DEL, C1 and the Unicode line and paragraph separators: none
// belongs in a name, and src/delivery/mime-message.ts strips the same set from stored rows.
// The bidi embedding, override and isolate controls too: a name must not turn the text around it.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/u;
// A lone surrogate is not text at all; it would reach mail and pages as U+FFFD.
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Checks a subscriber's name as given: the trimmed name, null for none, or the reason it is refused. */
export function parseDisplayName(input: unknown): string | null | { error: string } {
  if (input === undefined || input === null || input === '') return null;
  if (typeof input !== 'string') return { error: 'name: expected text' };
  const chars = [...input];
  const control = chars.findIndex((char) => CONTROL.test(char));
  if (control >= 0) {
    return { error: `name: must not contain control characters (found ${codePoint(chars[control]!)} at position ${control + 1})` };
  }
  const broken = chars.findIndex((char) => LONE_SURROGATE.test(char));
  if (broken >= 0) return { error: `name: must be valid text (found a lone surrogate at position ${broken + 1})` };
  const name = input.trim();
  if (name === '') return null;
  const length = [...name].length;
  if (length > MAX_DISPLAY_NAME_LENGTH) return { error: `name: at most ${MAX_DISPLAY_NAME_LENGTH} characters (got ${length})` };
  return name;
}

function codePoint(char: string): string {
  return `U+${char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
}
