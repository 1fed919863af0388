/**
 * Deepest nesting a story body may have: real stories nest a few levels, while marked recurses once
 * per level (and slows quadratically), overflowing the stack a few thousand levels down.
 */
export const MAX_MARKDOWN_NESTING = 100;

/** How deep a Markdown text nests, and on which line (1-based) it is deepest. */
export interface MarkdownNesting {
  depth: number;
  line: number;
}

/**
 * Estimates, in one cheap pass, how deeply a Markdown text nests: block quotes, lists (by marker and
 * indentation) and unclosed emphasis within a paragraph. It aims to err high rather than low on what marked recurses on.
 */
export function markdownNesting(markdown: string): MarkdownNesting {
  const deepest: MarkdownNesting = { depth: 0, line: 1 };
  const lines = markdown.split('\n');
  // Emphasis left open in the current paragraph: it may close lines later.
  let open = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '') {
      open = 0;
      continue;
    }
    const inline = emphasisDepth(line, open);
    open = inline.open;
    const depth = containerDepth(line) + inline.deepest;
    if (depth > deepest.depth) {
      deepest.depth = depth;
      deepest.line = i + 1;
    }
  }
  return deepest;
}

// A block quote or list marker, after optional whitespace; one space after it belongs to the marker.
const CONTAINER_MARKER = /([ \t]*)(?:>|[-*+](?=[ \t]|$)|\d{1,9}[.)](?=[ \t]|$)) ?/y;

/** Block quotes and list items opened at the start of a line, nested lists counting their indentation. */
function containerDepth(line: string): number {
  let markers = 0;
  let columns = 0;
  CONTAINER_MARKER.lastIndex = 0;
  for (let match = CONTAINER_MARKER.exec(line); match; match = CONTAINER_MARKER.exec(line)) {
    markers++;
    for (const c of match[1]!) columns += c === '\t' ? 4 : 1;
  }
  // A nested list item is indented about two columns per level.
  return markers === 0 ? 0 : markers + Math.floor(columns / 2);
}

/** Emphasis delimiters (`*`, `_`) still open after `line`, given `open` before it, and the most open at once. */
function emphasisDepth(line: string, open: number): { open: number; deepest: number } {
  let deepest = open;
  for (const run of line.matchAll(/\*+|_+/g)) {
    const before = line[run.index - 1];
    const after = line[run.index + run[0].length];
    const opens = !isSpace(after) && (isSpace(before) || isPunctuation(before));
    const closes = !isSpace(before) && (isSpace(after) || isPunctuation(after));
    if (opens && !closes) deepest = Math.max(deepest, (open += run[0].length));
    else if (closes && !opens) open = Math.max(0, open - run[0].length);
  }
  return { open, deepest };
}

function isSpace(c: string | undefined): boolean {
  return c === undefined || /\s/.test(c);
}

function isPunctuation(c: string | undefined): boolean {
  return c !== undefined && /[\p{P}\p{S}]/u.test(c);
}
