import { randomBytes } from 'node:crypto';
import { encodeWords } from 'nodemailer/lib/mime-funcs';
import { encode as qpEncode, wrap as qpWrap } from 'nodemailer/lib/qp';
import type { MailingList, Site } from '../model/content.ts';
import type { CompiledEdition } from '../render/compile-edition.ts';
import { escapeValuesForHtml, mapValues, type RecipientValues, type SlotTemplate } from '../render/slots.ts';

/**
 * Everything of a message that all recipients of an edition share, encoded once:
 * header lines and the quoted-printable bodies, cut where recipient values go.
 */
export interface MessageTemplate {
  /** Header lines that precede the per-recipient ones (From, Subject, List-Id, …). */
  sharedHeaders: string;
  /** MIME-Version, Content-Type and the body with its slots. */
  textBody: SlotTemplate;
  htmlBody: SlotTemplate;
  boundary: string;
  senderDomain: string;
  envelopeFrom: string;
}

/** The per-recipient facts of one message. */
export interface MessageRecipient {
  email: string;
  name?: string | undefined;
  /** Values for the edition's recipient slots (raw, not escaped). */
  values: RecipientValues;
  /** List-Unsubscribe targets; undefined for transactional mail (confirmations). */
  unsubscribeUrl: string | undefined;
  unsubscribeMailto: string | undefined;
  /** Left part of the Message-ID: stable per delivery, so a retried send keeps its id. */
  messageKey: string;
  date: Date;
  /** Extra header lines, such as X-Gazette-Test on test sends. */
  extraHeaders?: Record<string, string> | undefined;
}

/** Encodes the parts every recipient of an edition shares; call once per edition. */
export function prepareMessageTemplate(site: Pick<Site, 'sender'>, list: MailingList | undefined, edition: CompiledEdition): MessageTemplate {
  const senderDomain = site.sender.address.split('@')[1] ?? 'localhost';
  const boundary = `----gazette-${randomBytes(12).toString('hex')}`;
  const headers = [
    foldHeader(`From: ${formatAddress(site.sender.address, site.sender.name)}`),
    site.sender.replyTo ? `Reply-To: ${site.sender.replyTo}` : '',
    foldHeader(`Subject: ${encodeHeaderText(edition.subject)}`),
    // Only list messages carry list headers; a confirmation email is transactional.
    // List-Id's label is a phrase (RFC 2919), so it follows the display-name rules.
    list ? foldHeader(`List-Id: ${formatPhrase(list.name)} <${list.slug}.${senderDomain}>`) : '',
    list ? `List-Unsubscribe-Post: List-Unsubscribe=One-Click` : '',
  ].filter(Boolean);
  const partHeader = (type: string) =>
    `--${boundary}\r\nContent-Type: ${type}; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n`;
  return {
    sharedHeaders: headers.join('\r\n') + '\r\n',
    textBody: encodeSlotTemplate(edition.text, partHeader('text/plain'), ''),
    htmlBody: encodeSlotTemplate(edition.html, partHeader('text/html'), `\r\n--${boundary}--\r\n`),
    boundary,
    senderDomain,
    envelopeFrom: site.sender.address,
  };
}

/** Builds one recipient's whole RFC 5322 message from the shared template: a few string joins. */
export function renderMessage(template: MessageTemplate, recipient: MessageRecipient): string {
  const perRecipient = [
    foldHeader(`To: ${formatAddress(recipient.email, recipient.name)}`),
    `Date: ${rfc5322Date(recipient.date)}`,
    `Message-ID: <${recipient.messageKey}@${template.senderDomain}>`,
    recipient.unsubscribeUrl ? `List-Unsubscribe: <${recipient.unsubscribeUrl}>,\r\n <${recipient.unsubscribeMailto}>` : '',
    ...Object.entries(recipient.extraHeaders ?? {}).map(([key, value]) => foldHeader(`${key}: ${encodeHeaderText(value)}`)),
    'MIME-Version: 1.0',
    `Content-Type: multipart/alternative; boundary="${template.boundary}"`,
  ]
    .filter(Boolean)
    .join('\r\n');
  const textValues = encodeValues(recipient.values);
  const htmlValues = encodeValues(escapeValuesForHtml(recipient.values));
  return (
    template.sharedHeaders +
    perRecipient +
    '\r\n\r\n' +
    fillEncoded(template.textBody, textValues) +
    '\r\n' +
    fillEncoded(template.htmlBody, htmlValues)
  );
}

// Each piece is encoded on its own and ends in a soft line break, so a recipient's
// value can be spliced in without re-encoding (or re-wrapping) the shared text.
function encodeSlotTemplate(template: SlotTemplate, prefix: string, suffix: string): SlotTemplate {
  const last = template.parts.length - 1;
  return {
    parts: template.parts.map((part, i) => {
      const encoded = encodeQp(part);
      return (i === 0 ? prefix : '') + (i === last ? encoded + suffix : encoded + '=\r\n');
    }),
    fields: template.fields,
  };
}

function encodeValues(values: RecipientValues): RecipientValues {
  return mapValues(values, (value) => encodeQp(value) + '=\r\n');
}

function fillEncoded(template: SlotTemplate, values: RecipientValues): string {
  const { parts, fields } = template;
  let out = parts[0]!;
  for (let i = 0; i < fields.length; i++) out += values[fields[i]!] + parts[i + 1]!;
  return out;
}

// Every line break becomes CRLF, a lone CR too: a bare CR reaching the wire is what SMTP
// smuggling is made of, and some receivers end the data at CR "." CR.
function encodeQp(text: string): string {
  return qpWrap(qpEncode(text.replace(/\r\n|\r|\n/g, '\r\n')), 76);
}

/** Folds a header line at spaces so lines stay near 78 characters (RFC 5322 2.2.3). */
export function foldHeader(line: string): string {
  if (line.length <= 78) return line;
  const words = line.split(' ');
  let out = words[0]!;
  let current = out.length;
  for (const word of words.slice(1)) {
    if (current + 1 + word.length > 78) {
      out += `\r\n ${word}`;
      current = 1 + word.length;
    } else {
      out += ` ${word}`;
      current += 1 + word.length;
    }
  }
  return out;
}

/** Encodes unstructured header text (Subject, X-…) as RFC 2047 words when it is not plain ASCII. */
export function encodeHeaderText(text: string): string {
  const clean = stripControls(text);
  // Unstructured text may hold specials, so encoding only the non-ASCII words is safe here.
  return /^[\x20-\x7e]*$/.test(clean) ? clean : encodeWords(clean, 'Q', 52);
}

/** `Name <address>`: always exactly one mailbox, the name bare, quoted or encoded as needed. */
export function formatAddress(address: string, name?: string): string {
  // An address is never rewritten into words: its controls simply go, like a name's.
  const mailbox = address.replace(CONTROLS, '');
  const phrase = name ? formatPhrase(name) : '';
  return phrase ? `${phrase} <${mailbox}>` : mailbox;
}

// Characters that must never reach a header line: C0, DEL, C1 and the Unicode line and
// paragraph separators (the same set src/subscribers/display-name.ts refuses at input).
const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
// Those that separate words become a space, so stripping them never glues two words together.
const WORD_BREAKS = /[\t\r\n\u2028\u2029]/g;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** Line breaks and tabs become spaces, other controls go, unpaired surrogates become U+FFFD. */
function stripControls(text: string): string {
  return text.replace(WORD_BREAKS, ' ').replace(CONTROLS, '').replace(LONE_SURROGATE, '\ufffd');
}

/**
 * A display name as an RFC 5322 phrase, after stripping controls, collapsing runs of spaces
 * and trimming: bare atoms when it is only atext words, a quoted-string when it is other
 * printable ASCII, and RFC 2047 encoded-words for the whole name otherwise.
 */
function formatPhrase(name: string): string {
  const clean = stripControls(name).replace(/ {2,}/g, ' ').trim();
  if (!clean) return '';
  // Parsers decode "=?…?=" even inside quotes, and a word too long to fold would overflow the
  // line, so both go encoded too; then the name always reads back exactly as given.
  if (!/^[\x20-\x7e]*$/.test(clean) || clean.includes('=?') || /[^ ]{72}/.test(clean)) return encodePhraseWords(clean);
  if (ATOMS.test(clean)) return clean;
  return `"${clean.replace(/["\\]/g, '\\$&')}"`;
}

// One or more RFC 5322 atoms (atext only) separated by single spaces.
const ATOMS = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+( [A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*$/;

// 12 chars of `=?UTF-8?Q?` + `?=` around at most 60 of text: each word stays within RFC 2047's
// 75, and `From: ` plus one word within 78, so the first word never has to go to its own line.
const MAX_ENCODED_TEXT = 60;

/**
 * Q-encodes the whole name using only the RFC 2047 §5(3) phrase characters, so no special can
 * appear bare; split into words at character boundaries, never inside a UTF-8 sequence.
 */
function encodePhraseWords(text: string): string {
  const words: string[] = [];
  let current = '';
  for (const char of text) {
    const encoded = /^[A-Za-z0-9!*+\-/]$/.test(char)
      ? char
      : char === ' '
        ? '_'
        : [...Buffer.from(char, 'utf8')].map((byte) => `=${byte.toString(16).toUpperCase().padStart(2, '0')}`).join('');
    if (current.length + encoded.length > MAX_ENCODED_TEXT) {
      words.push(current);
      current = '';
    }
    current += encoded;
  }
  if (current) words.push(current);
  return words.map((word) => `=?UTF-8?Q?${word}?=`).join(' ');
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** RFC 5322 date with a numeric zone, e.g. `Fri, 27 Nov 2026 09:00:00 +0000`. */
export function rfc5322Date(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${DAYS[date.getUTCDay()]}, ${pad(date.getUTCDate())} ${MONTHS[date.getUTCMonth()]} ${date.getUTCFullYear()} ${pad(
    date.getUTCHours(),
  )}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} +0000`;
}
