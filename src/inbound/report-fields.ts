// The field syntax of delivery-status and feedback-report parts (RFC 3464, RFC 5965): groups of
// RFC 822 style fields, typed values, comments, diagnostics and status codes.

/** One group of fields, by lower-cased name; a name may repeat. */
export type Fields = Map<string, string[]>;

/** Splits RFC 822 style fields into groups at blank lines, unfolding continuations; lines that are no field are skipped. */
export function fieldGroups(text: string): Fields[] {
  const groups: Fields[] = [];
  let group: Fields | null = null;
  let last: string[] | null = null;
  for (const line of text.split(/\r?\n/)) {
    if (line.trim() === '') {
      group = last = null;
    } else if (/^[ \t]/.test(line)) {
      if (last) last[last.length - 1] += ' ' + line.trim();
    } else {
      const match = /^([!-9;-~]+)[ \t]*:(.*)$/.exec(line);
      last = null;
      if (!match) continue;
      group ??= groups[groups.push(new Map()) - 1]!;
      const name = match[1]!.toLowerCase();
      last = group.get(name) ?? [];
      last.push(match[2]!.trim());
      group.set(name, last);
    }
  }
  return groups;
}

/** The first value of a field, or null. */
export function field(fields: Fields | undefined, name: string): string | null {
  return fields?.get(name)?.[0] ?? null;
}

/** Drops RFC 822 comments outside quoted strings, and collapses whitespace. */
export function stripComments(value: string): string {
  let out = '';
  let depth = 0;
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c === '\\') {
      if (depth === 0) out += c + (value[i + 1] ?? '');
      i++;
    } else if (quoted) {
      out += c;
      quoted = c !== '"';
    } else if (c === '(') depth++;
    else if (c === ')' && depth > 0) depth--;
    else if (depth === 0) {
      quoted = c === '"';
      out += c;
    }
  }
  return out.replace(/\s+/g, ' ').trim();
}

/** A typed value without comments and its "rfc822;" / "dns;" / "utf-8;" type. */
export function typed(value: string | null): string | null {
  if (value === null) return null;
  // RFC 6533 writes non-ASCII as \x{HEX} in utf-8 typed addresses.
  const plain = stripComments(value.replace(/\\x\{([0-9A-Fa-f]{1,6})\}/g, (whole, hex: string) => codePoint(hex) ?? whole));
  return plain.replace(/^[A-Za-z][\w.+-]*\s*;\s*/, '') || null;
}

function codePoint(hex: string): string | null {
  const code = parseInt(hex, 16);
  return code <= 0x10ffff ? String.fromCodePoint(code) : null;
}

/** An address without its angle brackets. */
export function address(value: string | null): string | null {
  return value?.replace(/^<(.*)>$/, '$1').trim() || null;
}

/** The diagnostic text after its type: free text, so parentheses in it are kept. */
export function diagnostic(value: string | null): string | null {
  const text = value?.replace(/\s+/g, ' ').replace(/^\s*[A-Za-z][\w.+-]*\s*;\s*/, '').trim();
  if (!text) return null;
  // A multi-line reply ("550-5.1.1 … 550-5.1.1 … 550 5.1.1 …") reads better with its code said once.
  const lead = /^([245]\d\d)[ -]((?:[245]\.\d{1,3}\.\d{1,3} )?)/.exec(text);
  if (!lead?.[2]) return text;
  const rest = text.slice(lead[0].length).split(` ${lead[1]}-${lead[2]}`).join(' ').split(` ${lead[1]} ${lead[2]}`).join(' ');
  return `${lead[1]} ${lead[2]}${rest}`.replace(/\s+/g, ' ');
}

/** The enhanced status code `pattern` finds in `text`, as x.y.z. */
export function enhanced(text: string | null, pattern: RegExp): string | null {
  const match = text ? pattern.exec(text) : null;
  return match ? `${match[1]}.${match[2]}.${match[3]}` : null;
}

/** 5.0.0 or 4.0.0 from a diagnostic that starts with a bare SMTP reply code. */
export function smtpClass(text: string | null): string | null {
  const match = text ? /^([245])\d\d\b/.exec(text) : null;
  return match ? `${match[1]}.0.0` : null;
}

/** The DSN Action a status class implies, for reports that leave it out. */
export function actionOf(status: string | null): string {
  return { '2': 'delivered', '4': 'delayed', '5': 'failed' }[status?.[0] ?? ''] ?? '';
}

/** Decodes RFC 2047 encoded words; an unknown charset leaves the word as it was. */
export function decodeWords(value: string | null): string | null {
  if (!value) return value || null;
  return value.replace(/\?=\s+=\?/g, '?==?').replace(/=\?([^?\s]+)\?([BbQq])\?([^?\s]*)\?=/g, (whole, charset: string, kind: string, data: string) => {
    try {
      const bytes =
        kind.toUpperCase() === 'B'
          ? Buffer.from(data, 'base64')
          : Buffer.from(data.replace(/_/g, ' ').replace(/=([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))), 'latin1');
      return new TextDecoder(charset.replace(/\*.*$/, '')).decode(bytes);
    } catch {
      return whole;
    }
  });
}
