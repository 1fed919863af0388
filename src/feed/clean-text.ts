// XML 1.0 forbids C0 controls other than tab, LF and CR, the non-characters U+FFFE/U+FFFF and
// unpaired surrogates; one stray byte pasted from a word processor would make the whole feed unreadable.
const XML_INVALID = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Removes the characters XML 1.0 cannot carry, so any text can go into a feed. */
export function cleanText(text: string): string {
  return text.replace(XML_INVALID, '');
}

const MARKUP = /[&<>]/g;
const MARKUP_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;' };

/**
 * Escapes &, < and > once, so plain text reads as itself where a feed reader takes the text for HTML
 * (an RSS title or description): `<script>` shows as `<script>`, neither run nor dropped.
 */
export function escapeMarkup(text: string): string {
  return text.replace(MARKUP, (ch) => MARKUP_ESCAPES[ch]!);
}
