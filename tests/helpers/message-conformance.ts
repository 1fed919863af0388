// The DKIM verifier alone: mailauth's index also loads BIMI, whose undici needs a newer Node than 20.
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { simpleParser } from 'mailparser';

// The project's own judge of a raw newsletter message against the bulk-sender rules (Gmail/Yahoo
// 2024, RFC 8058, RFC 2369, RFC 5322): the rules ../shared/tools/check-eml.py applies, under the
// same names, so it needs nothing outside the repository. Structure is read with mailparser and a
// small MIME splitter (for the order of the parts), DKIM verified with mailauth against the test's
// own key record (no DNS is queried).

/** One rule's verdict; FAIL is a problem, WARN and INFO are not. */
export interface RuleResult {
  status: 'PASS' | 'WARN' | 'FAIL' | 'SKIP' | 'INFO';
  rule: string;
  detail: string;
}

/** What to check a message against. */
export interface ConformanceOptions {
  /** Verify the DKIM signature for real, with this TXT record served for `selector._domainkey.domain`; a signature is then required. */
  dkim?: { txtRecord: string; domain: string; selector: string } | undefined;
  /** 'list' (default) needs the list headers and an unsubscribe link; 'transactional' (a confirmation) does not. */
  kind?: 'list' | 'transactional' | undefined;
  /** Gmail clips HTML bodies above about 102 KiB; default 102 * 1024. */
  maxHtmlBytes?: number | undefined;
}

const GMAIL_CLIP_BYTES = 102 * 1024;
const ONE_CLICK = 'List-Unsubscribe=One-Click';
const SINGLE_INSTANCE = ['From', 'To', 'Cc', 'Date', 'Subject', 'Message-ID', 'Reply-To', 'Sender'];
// RFC 5322 3.3 date-time (obsolete zone names too); -0000 means "zone unknown" and does not count.
const DATE_TIME = /^(?:[A-Za-z]{3},\s*)?\d{1,2}\s+[A-Za-z]{3}\s+\d{2,4}\s+\d{1,2}:\d{2}(?::\d{2})?\s+([+-]\d{4}|UT|GMT|[ECMP][SD]T|Z)\s*(?:\(.*\))?$/;

/** The problems of a raw message: one `rule: detail` line per rule it fails (empty when it conforms). */
export async function checkMessage(raw: string, options: ConformanceOptions = {}): Promise<string[]> {
  return (await checkMessageRules(raw, options)).filter((r) => r.status === 'FAIL').map((r) => (r.detail ? `${r.rule}: ${r.detail}` : r.rule));
}

/** Every rule's verdict on a raw message, in check-eml.py's order and wording. */
export async function checkMessageRules(raw: string, options: ConformanceOptions = {}): Promise<RuleResult[]> {
  const results: RuleResult[] = [];
  const add: Add = (status, rule, detail = '') => results.push({ status, rule, detail });
  const list = (options.kind ?? 'list') === 'list';
  const parsed = await simpleParser(raw);
  const fromAddress = parsed.from?.value[0]?.address ?? '';
  const fromDomain = fromAddress.includes('@') ? fromAddress.slice(fromAddress.lastIndexOf('@') + 1).toLowerCase() : '';
  const tree = mimeTree(raw);
  checkHeaders(raw, fromDomain, tree, add);
  if (list) checkListHeaders(raw, add);
  else add('SKIP', 'list-unsubscribe present', 'transactional message: no list headers needed');
  await checkDkim(raw, options, { add, fromDomain, list });
  const { textParts, htmlParts } = checkStructure(tree, add);
  // mailparser hands back LF line ends; the message (and check-eml.py's count) has CRLF.
  const plain = textParts.length ? crlf(parsed.text ?? '') : '';
  add(plain.trim().length >= 20 ? 'PASS' : 'FAIL', 'text/plain part non-empty', `${plain.trim().length} chars`);
  const noCharset = [...textParts, ...htmlParts].filter((p) => !p.params.charset).map((p) => p.type);
  add(noCharset.length ? 'WARN' : 'PASS', 'charset declared on text parts', noCharset.join(', '));
  if (htmlParts.length === 0 || typeof parsed.html !== 'string') add('FAIL', 'html part present', 'no text/html part');
  else checkHtml(crlf(parsed.html), plain, options.maxHtmlBytes ?? GMAIL_CLIP_BYTES, list, add);
  return results;
}

/** A check-eml.py style report of one file: its rules, then RESULT: PASS or FAIL with the counts. */
export function formatReport(file: string, results: RuleResult[]): string {
  const count = (status: RuleResult['status']) => results.filter((r) => r.status === status).length;
  const lines = results.map((r) => `  ${r.status.padEnd(4)} ${r.rule}${r.detail ? ` -- ${r.detail}` : ''}`);
  const verdict = count('FAIL') ? 'FAIL' : 'PASS';
  return [`### ${file}`, ...lines, `RESULT: ${verdict} (${count('PASS')} pass, ${count('WARN')} warn, ${count('FAIL')} fail)`].join('\n');
}

type Add = (status: RuleResult['status'], rule: string, detail?: string) => void;

/** RFC 5322 basics: one From with a domain, Date with a zone, Message-ID, MIME-Version, single fields, line length. */
function checkHeaders(raw: string, fromDomain: string, tree: MimePart, add: Add): void {
  const header = (name: string) => headerValues(raw, name);
  const froms = header('From');
  add(froms.length === 1 && fromDomain ? 'PASS' : 'FAIL', 'from', `From: ${froms.join(', ') || '(missing)'}`);
  const dates = header('Date');
  const zone = dates.length === 1 ? DATE_TIME.exec(dates[0]!)?.[1] : undefined;
  const dateOk = zone !== undefined && zone !== '-0000' && !Number.isNaN(Date.parse(dates[0]!));
  add(dateOk ? 'PASS' : 'FAIL', 'date', `Date: ${dates.length === 1 ? dates[0] : '(missing or repeated)'}`);
  const ids = header('Message-ID');
  add(ids.length === 1 && /^<[^<>@\s]+@[^<>@\s]+>$/.test(ids[0]!) ? 'PASS' : 'FAIL', 'message-id', `Message-ID: ${ids[0] ?? '(missing)'}`);
  const mime = header('MIME-Version');
  add(mime.length === 1 && mime[0] === '1.0' ? 'PASS' : 'FAIL', 'mime-version', `MIME-Version: ${mime.join(', ') || '(missing)'}`);
  const subjects = header('Subject');
  add(subjects.length === 1 && subjects[0]!.trim() ? 'PASS' : 'WARN', 'subject', `Subject: ${subjects[0] ?? '(missing)'}`);
  const repeated = SINGLE_INSTANCE.filter((name) => header(name).length > 1);
  add(repeated.length ? 'FAIL' : 'PASS', 'single-instance-headers (RFC 5322 3.6)', repeated.length ? `repeated: ${repeated.join(', ')}` : '');
  const longLines = raw.split('\n').flatMap((line, i) => (Buffer.byteLength(line.replace(/\r$/, '')) > 998 ? [i + 1] : []));
  add(longLines.length ? 'FAIL' : 'PASS', 'line-length<=998 (RFC 5322 2.1.1)', longLines.length ? `lines ${longLines.slice(0, 5).join(', ')}` : '');
  const defects = [...new Set(walk(tree).flatMap((p) => p.defects))].sort();
  add(defects.length ? 'WARN' : 'PASS', 'mime-defects', defects.join(', '));
}

/** List-Unsubscribe (RFC 2369) in one field with an https URI, and List-Unsubscribe-Post One-Click (RFC 8058). */
function checkListHeaders(raw: string, add: Add): void {
  const unsubscribe = headerValues(raw, 'List-Unsubscribe');
  const post = headerValues(raw, 'List-Unsubscribe-Post');
  const uris = unsubscribe.flatMap(urisIn);
  const https = uris.filter((u) => /^https:\/\//i.test(u));
  const mailto = uris.filter((u) => /^mailto:/i.test(u));
  const other = uris.filter((u) => !https.includes(u) && !mailto.includes(u));
  if (unsubscribe.length === 0) add('FAIL', 'list-unsubscribe present', 'missing');
  else {
    add('PASS', 'list-unsubscribe present', uris.join('; '));
    add(unsubscribe.length === 1 ? 'PASS' : 'FAIL', 'list-unsubscribe single field', `${unsubscribe.length} fields (put all URIs comma-separated in ONE field; a DKIM h= entry covers only one instance)`);
    const bare = unsubscribe.filter((v) => urisIn(v).length === 0);
    add(bare.length || other.length ? 'FAIL' : 'PASS', 'list-unsubscribe syntax <uri>, https/mailto only', [bare.length ? `not in <>: ${bare.join(', ')}` : '', other.length ? `other schemes: ${other.join(', ')}` : ''].join(' ').trim());
    add(https.length ? 'PASS' : 'FAIL', 'list-unsubscribe has https URI (RFC 8058 3.1)', https.join(', '));
    add(mailto.length ? 'PASS' : 'INFO', 'list-unsubscribe has mailto URI', mailto.join(', ') || 'none (optional)');
  }
  add(post.length === 1 && post[0] === ONE_CLICK ? 'PASS' : 'FAIL', `list-unsubscribe-post = ${ONE_CLICK} (RFC 8058 3.1)`, post.join('; ') || 'missing');
}

/** multipart/alternative holding text/plain before text/html; returns the text parts found. */
function checkStructure(tree: MimePart, add: Add): { textParts: MimePart[]; htmlParts: MimePart[] } {
  const parts = walk(tree);
  const alternative = parts.find((p) => p.type === 'multipart/alternative' && p.children.some((c) => c.type === 'text/plain') && p.children.some((c) => c.type === 'text/html'));
  add(alternative ? 'PASS' : 'FAIL', 'multipart/alternative with text/plain + text/html', `top-level ${tree.type}`);
  if (alternative) {
    const kinds = alternative.children.map((c) => c.type);
    // check-eml.py only warns; the last part is the preferred one (RFC 2046 5.1.4), so Gazette's must be the HTML.
    add(kinds.indexOf('text/plain') < kinds.indexOf('text/html') ? 'PASS' : 'FAIL', 'text/plain before text/html (RFC 2046 5.1.4: last = preferred)', kinds.join(', '));
  }
  return {
    textParts: parts.filter((p) => p.type === 'text/plain' && !p.attachment),
    htmlParts: parts.filter((p) => p.type === 'text/html' && !p.attachment),
  };
}

async function checkDkim(
  raw: string,
  options: ConformanceOptions,
  facts: { add: Add; fromDomain: string; list: boolean },
): Promise<void> {
  const { add } = facts;
  const unsubscribeFields = headerValues(raw, 'List-Unsubscribe').length;
  const postFields = headerValues(raw, 'List-Unsubscribe-Post').length;
  const signatures = headerValues(raw, 'DKIM-Signature').map(tagsOf);
  if (signatures.length === 0) {
    add(options.dkim ? 'FAIL' : 'SKIP', 'dkim-signature present', 'no DKIM-Signature header');
    return;
  }
  // RFC 8058 4: the signature covers From and both list headers, each instance of them.
  const need: [string, number][] = [['from', 1]];
  if (facts.list || unsubscribeFields) need.push(['list-unsubscribe', Math.max(1, unsubscribeFields)]);
  if (facts.list || postFields) need.push(['list-unsubscribe-post', 1]);
  const judged = signatures.map((tags) => {
    const signed = (tags.h ?? '').split(':').map((h) => h.trim().toLowerCase()).filter(Boolean);
    return { tags, signed, missing: need.filter(([name, n]) => signed.filter((h) => h === name).length < n).map(([name]) => name) };
  });
  const best = judged.reduce((a, b) => (b.missing.length < a.missing.length ? b : a));
  add('PASS', 'dkim-signature present', `d=${best.tags.d} s=${best.tags.s}`);
  add(best.missing.length ? 'FAIL' : 'PASS', 'dkim h= covers from, list-unsubscribe(-post) (RFC 8058 4)', `${best.missing.length ? `missing/under-counted: ${best.missing.join(', ')}; ` : ''}h=${best.signed.join(':')}`);
  const d = (best.tags.d ?? '').toLowerCase();
  const aligned = d !== '' && facts.fromDomain !== '' && orgDomain(d) === orgDomain(facts.fromDomain);
  add(aligned ? 'PASS' : 'FAIL', 'dkim d= aligned with From domain (DMARC relaxed)', `d=${d} From=${facts.fromDomain}`);
  if (!options.dkim) return;
  const { txtRecord, domain, selector } = options.dkim;
  const keyName = `${selector}._domainkey.${domain}`.toLowerCase();
  const verified = await dkimVerify(raw, {
    // The test's own key record answers the one lookup; anything else is "no such record", never DNS.
    resolver: async (name: string, type: string) => {
      if (type === 'TXT' && name.toLowerCase() === keyName) return [[txtRecord]];
      throw Object.assign(new Error(`no ${type} record for ${name} in this test`), { code: 'ENOTFOUND' });
    },
  });
  const mine = verified.results.filter((r) => r.signingDomain?.toLowerCase() === domain.toLowerCase() && r.selector === selector);
  const passed = mine.length > 0 && mine.every((r) => r.status.result === 'pass');
  const detail = mine.map((r) => `${r.status.result}${r.status.comment ? ` (${r.status.comment})` : ''}`).join(', ') || `no signature by ${keyName}`;
  add(passed ? 'PASS' : 'FAIL', 'dkim cryptographic verify (mailauth)', `${detail}; key record of ${keyName} given by the test`);
}

function checkHtml(html: string, plain: string, maxBytes: number, list: boolean, add: Add): void {
  const size = Buffer.byteLength(html);
  add(size >= maxBytes ? 'FAIL' : size >= 0.85 * maxBytes ? 'WARN' : 'PASS', 'html size < Gmail clip (~102KB)', `${size} bytes decoded (limit ${maxBytes})`);
  const { tags, links } = scanHtml(html);
  const scripts = tags.filter((t) => t.name === 'script').map((t) => t.attrs.src ?? '(inline)');
  const jsUrls = tags.map((t) => t.attrs.href ?? '').filter((href) => /^\s*javascript:/i.test(href));
  add(scripts.length || jsUrls.length ? 'FAIL' : 'PASS', 'no <script> / javascript: URLs', scripts.length || jsUrls.length ? `scripts: ${[...scripts, ...jsUrls].join(', ')}` : '');
  const handlers = [...new Set(tags.flatMap((t) => Object.keys(t.attrs).filter((k) => k.startsWith('on'))))].sort();
  add(handlers.length ? 'WARN' : 'PASS', 'no on* event-handler attributes', handlers.join(', '));
  const images = tags.filter((t) => t.name === 'img');
  const noAlt = images.filter((t) => !('alt' in t.attrs)).map((t) => t.attrs.src ?? '?');
  add(noAlt.length ? 'FAIL' : 'PASS', 'every <img> has alt', noAlt.length ? `missing alt: ${noAlt.slice(0, 5).join(', ')}` : `${images.length} img`);
  const relative = images.map((t) => t.attrs.src ?? '').filter((src) => !/^(https?:|cid:|data:)/i.test(src));
  const plainHttp = images.map((t) => t.attrs.src ?? '').filter((src) => /^http:/i.test(src));
  add(relative.length ? 'FAIL' : plainHttp.length ? 'WARN' : 'PASS', 'img src absolute (https/cid)', [relative.length ? `relative: ${relative.slice(0, 5).join(', ')}` : '', plainHttp.length ? `http: ${plainHttp.slice(0, 5).join(', ')}` : ''].join(' ').trim());
  const viewport = tags.find((t) => t.name === 'meta' && (t.attrs.name ?? '').toLowerCase() === 'viewport');
  add(viewport && (viewport.attrs.content ?? '').replace(/\s/g, '').includes('width=device-width') ? 'PASS' : 'FAIL', 'viewport meta (width=device-width)', viewport ? (viewport.attrs.content ?? '') : 'missing');
  if (list) {
    const unsubscribeLinks = links.filter((l) => /unsub|opt.?out/i.test(`${l.href} ${l.text}`)).map((l) => l.href);
    add(unsubscribeLinks.length ? 'PASS' : 'FAIL', 'visible unsubscribe link in HTML body', unsubscribeLinks.slice(0, 2).join(', '));
  }
  const badRelative = tags.filter((t) => t.name === 'a' && t.attrs.href && !/^(https?:|mailto:|tel:|#|\{\{|\*\|)/i.test(t.attrs.href)).map((t) => t.attrs.href);
  add(badRelative.length ? 'WARN' : 'PASS', 'links absolute', badRelative.length ? `relative: ${badRelative.slice(0, 5).join(', ')}` : '');
  const risky = [...new Set(tags.map((t) => t.name).filter((n) => ['form', 'iframe', 'object', 'embed', 'video', 'audio'].includes(n)))].sort();
  add(risky.length ? 'WARN' : 'PASS', 'no form/iframe/object/embed', risky.join(', '));
  if (list) add(/unsub|opt.?out/i.test(plain) ? 'PASS' : 'WARN', 'text/plain mentions unsubscribe');
}

/** Unfolded values of every occurrence of a top-level header field, as written. */
export function headerValues(raw: string, name: string): string[] {
  const head = raw.split(/\r?\n\r?\n/, 1)[0]!;
  return head
    .replace(/\r?\n([ \t])/g, '$1')
    .split(/\r?\n/)
    .filter((line) => line.slice(0, name.length + 1).toLowerCase() === `${name.toLowerCase()}:`)
    .map((line) => line.slice(name.length + 1).replace(/\s+/g, ' ').trim());
}

function crlf(text: string): string {
  return text.replace(/\r?\n/g, '\r\n');
}

function urisIn(value: string): string[] {
  return [...value.matchAll(/<\s*([^>]*?)\s*>/g)].map((m) => m[1]!);
}

function tagsOf(signature: string): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const part of signature.split(';')) {
    const at = part.indexOf('=');
    if (at > 0) tags[part.slice(0, at).trim().toLowerCase()] = part.slice(at + 1).replace(/\s+/g, '');
  }
  return tags;
}

function orgDomain(domain: string): string {
  // The last two labels: good enough for test domains (check-eml.py does the same).
  return domain.toLowerCase().replace(/\.$/, '').split('.').slice(-2).join('.');
}

/** One MIME entity: its type and parameters, and its children when it is multipart. */
interface MimePart {
  type: string;
  params: Record<string, string>;
  attachment: boolean;
  children: MimePart[];
  /** What is wrong with its framing, as Python's email package names it. */
  defects: string[];
}

/** The MIME tree of a raw message, in the order the parts are written. */
function mimeTree(raw: string): MimePart {
  const split = /\r?\n\r?\n/.exec(raw);
  const head = split ? raw.slice(0, split.index) : raw;
  const body = split ? raw.slice(split.index + split[0].length) : '';
  const field = (name: string) => headerValues(head, name)[0] ?? '';
  const [type = 'text/plain', ...rest] = field('Content-Type').split(';');
  const params: Record<string, string> = {};
  for (const m of rest.join(';').matchAll(/([^=;\s]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]+)/g)) params[m[1]!.toLowerCase()] = m[2]!.replace(/^"|"$/g, '');
  const part: MimePart = { type: type.trim().toLowerCase() || 'text/plain', params, attachment: /^\s*attachment/i.test(field('Content-Disposition')), children: [], defects: [] };
  if (!part.type.startsWith('multipart/')) return part;
  if (!params.boundary) {
    part.defects.push('NoBoundaryInMultipartDefect');
    return part;
  }
  const delimiter = new RegExp(`(?:^|\\r?\\n)--${params.boundary.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(--)?[ \\t]*(?=\\r?\\n|$)`, 'g');
  let start: number | undefined;
  let closed = false;
  for (const m of body.matchAll(delimiter)) {
    if (start !== undefined) part.children.push(mimeTree(body.slice(start, m.index).replace(/^\r?\n/, '')));
    if (m[1]) {
      closed = true;
      break;
    }
    start = m.index + m[0].length;
  }
  if (start === undefined) part.defects.push('StartBoundaryNotFoundDefect');
  else if (!closed) part.defects.push('CloseBoundaryNotFoundDefect');
  return part;
}

function walk(part: MimePart): MimePart[] {
  return [part, ...part.children.flatMap(walk)];
}

/** Start tags with their attributes, and each link's href and visible text; script and style bodies are skipped. */
function scanHtml(html: string): { tags: { name: string; attrs: Record<string, string> }[]; links: { href: string; text: string }[] } {
  const tags: { name: string; attrs: Record<string, string> }[] = [];
  const links: { href: string; text: string }[] = [];
  let link: { href: string; text: string } | undefined;
  const token = /<!--[\s\S]*?-->|<!\[CDATA\[[\s\S]*?\]\]>|<![^>]*>|<(\/?)([a-zA-Z][\w:-]*)((?:\s+[^\s"'>/=]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'=<>`]+))?)*)\s*\/?>|([^<]+|<)/g;
  for (let m = token.exec(html); m; m = token.exec(html)) {
    const [, closing, rawName, rawAttrs, text] = m;
    if (text !== undefined) {
      if (link) link.text += decodeEntities(text);
      continue;
    }
    if (!rawName) continue;
    const name = rawName.toLowerCase();
    if (closing) {
      if (name === 'a' && link) {
        links.push({ href: link.href, text: link.text.trim() });
        link = undefined;
      }
      continue;
    }
    const attrs: Record<string, string> = {};
    for (const a of (rawAttrs ?? '').matchAll(/([^\s"'>/=]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s"'=<>`]+))?/g)) {
      attrs[a[1]!.toLowerCase()] = decodeEntities((a[2] ?? '').replace(/^(["'])([\s\S]*)\1$/, '$2'));
    }
    tags.push({ name, attrs });
    if (name === 'a') link = { href: attrs.href ?? '', text: '' };
    if (name === 'script' || name === 'style') {
      const end = html.toLowerCase().indexOf(`</${name}`, token.lastIndex);
      token.lastIndex = end === -1 ? html.length : end;
    }
  }
  return { tags, links };
}

function decodeEntities(text: string): string {
  const named: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (entity, body: string) => {
    if (body[0] !== '#') return named[body.toLowerCase()] ?? entity;
    const code = body[1] === 'x' || body[1] === 'X' ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10);
    return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : entity;
  });
}
