import { LineCounter, parseDocument, isMap, isScalar, type Document } from 'yaml';
import type { ContentIssue } from '../errors.ts';

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
  const doc = parseDocument(source, { lineCounter, schema: 'core', uniqueKeys: true, prettyErrors: false });
  const error = doc.errors[0];
  if (error) {
    const line = lineCounter.linePos(error.pos[0]).line + lineOffset;
    return { file, field: '', line, message: `invalid YAML: ${error.message.split('\n')[0]}` };
  }
  return {
    data: doc.toJS() as unknown,
    lineOf: (path) => lineOfPath(doc, path, lineCounter, lineOffset),
  };
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
}

/** Splits `---\nyaml\n---\nbody`; returns undefined when the file has no front matter. */
export function splitFrontMatter(source: string): FrontMatterSplit | undefined {
  const text = source.replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n');
  if (!text.startsWith('---\n')) return undefined;
  const end = text.indexOf('\n---', 3);
  if (end === -1) return undefined;
  const afterFence = text.indexOf('\n', end + 4);
  return {
    yaml: text.slice(4, end + 1),
    body: afterFence === -1 ? '' : text.slice(afterFence + 1),
    yamlFirstLine: 2,
  };
}
