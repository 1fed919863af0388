import { LineCounter, parseDocument, isMap, isScalar, visit, type Document } from 'yaml';
import type { ContentIssue } from '../errors.ts';

/**
 * Most alias expansions a YAML document may make (the yaml package's own default, pinned here): front
 * matter has no use for more, and a "billion laughs" bomb needs millions.
 */
export const MAX_YAML_ALIASES = 100;

/** A YAML document with a way to find the line of any field, for error messages. */
export interface ParsedYaml {
  data: unknown;
  lineOf(path: readonly PropertyKey[]): number | undefined;
}

/**
 * Parses YAML keeping timestamps as strings (so a date's timezone can be checked)
 * and remembering where each node stands; `lineOffset` shifts lines for front matter.
 */
export function parseYaml(source: string, file: string, lineOffset = 0): ParsedYaml | ContentIssue {
  const lineCounter = new LineCounter();
  const issue = (offset: number, message: string): ContentIssue => ({
    file,
    field: '',
    line: lineCounter.linePos(offset).line + lineOffset,
    message,
  });
  let doc: Document;
  try {
    doc = parseDocument(source, { lineCounter, schema: 'core', uniqueKeys: true, prettyErrors: false });
  } catch (error) {
    // Problems land in doc.errors; only a stack overflow deep in the parser escapes as an exception.
    return issue(0, `invalid YAML: ${error instanceof RangeError ? TOO_DEEP : String(error)}`);
  }
  const first = doc.errors[0];
  if (first) {
    // The yaml package reports its own stack overflow as RESOURCE_EXHAUSTION, with V8's message.
    return issue(first.pos[0], `invalid YAML: ${first.code === 'RESOURCE_EXHAUSTION' ? TOO_DEEP : first.message.split('\n')[0]}`);
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: MAX_YAML_ALIASES }) as unknown;
  } catch (error) {
    const alias = firstAlias(doc);
    // The yaml package throws a ReferenceError ("Excessive alias count…") past maxAliasCount.
    const bomb = error instanceof ReferenceError && /alias count/i.test(error.message);
    const why = bomb
      ? `its aliases (from *${alias.name} on) expand to too many copies (at most ${MAX_YAML_ALIASES}): is it a "billion laughs" alias bomb?`
      : error instanceof RangeError ? TOO_DEEP : String(error);
    return issue(alias.offset, `invalid YAML: ${why}`);
  }
  return {
    data,
    lineOf: (path) => lineOfPath(doc, path, lineCounter, lineOffset),
  };
}

const TOO_DEEP = 'nested too deeply to read';

function firstAlias(doc: Document): { name: string; offset: number } {
  const found = { name: '', offset: 0 };
  visit(doc, {
    Alias(_, node) {
      found.name = node.source;
      found.offset = node.range?.[0] ?? 0;
      return visit.BREAK;
    },
  });
  return found;
}

function lineOfPath(
  doc: Document,
  path: readonly PropertyKey[],
  lineCounter: LineCounter,
  lineOffset: number,
): number | undefined {
  // Walk down as far as the path exists, so a missing field points at its parent.
  for (let depth = path.length; depth >= 0; depth--) {
    const node = doc.getIn(path.slice(0, depth) as unknown[], true);
    const range = (node as { range?: [number, number, number] } | undefined)?.range;
    if (range && (isScalar(node) || isMap(node) || node !== undefined)) {
      return lineCounter.linePos(range[0]).line + lineOffset;
    }
  }
  return undefined;
}

/** A Markdown file split into its front matter and body. */
export interface FrontMatterSplit {
  yaml: string;
  body: string;
  /** Line number (1-based) of the first YAML line, to report errors against the file. */
  yamlFirstLine: number;
  /** Line number (1-based) of the first body line. */
  bodyFirstLine: number;
}

/** Splits `---\nyaml\n---\nbody`; returns undefined when the file has no front matter. */
export function splitFrontMatter(source: string): FrontMatterSplit | undefined {
  const text = source.replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n');
  if (!text.startsWith('---\n')) return undefined;
  const end = text.indexOf('\n---', 3);
  if (end === -1) return undefined;
  const afterFence = text.indexOf('\n', end + 4);
  const yaml = text.slice(4, end + 1);
  return {
    yaml,
    body: afterFence === -1 ? '' : text.slice(afterFence + 1),
    yamlFirstLine: 2,
    // The opening fence, the YAML's lines, then the closing fence.
    bodyFirstLine: 3 + countLines(yaml),
  };
}

function countLines(text: string): number {
  let lines = 0;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) lines++;
  return lines;
}
