import { randomBytes } from 'node:crypto';
import { encodeWords } from 'nodemailer/lib/mime-funcs';
import { encode as qpEncode, wrap as qpWrap } from 'nodemailer/lib/qp';
import type { MailingList, Site } from '../content/model.ts';
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
export function prepareMessageTemplate(site: Site, list: MailingList | undefined, edition: CompiledEdition): MessageTemplate {
  const senderDomain = site.sender.address.split('@')[1] ?? 'localhost';
  const boundary = `----gazette-${randomBytes(12).toString('hex')}`;
  const headers = [
    foldHeader(`From: ${formatAddress(site.sender.address, site.sender.name)}`),
    site.sender.replyTo ? `Reply-To: ${site.sender.replyTo}` : '',
    foldHeader(`Subject: ${encodeHeaderText(edition.subject)}`),
    // Only list messages carry list headers; a confirmation email is transactional.
    list ? foldHeader(`List-Id: ${encodeHeaderText(list.name)} <${list.slug}.${senderDomain}>`) : '',
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
    ...Object.entries(recipient.extraHeaders ?? {}).map(([key, value]) => `${key}: ${encodeHeaderText(value)}`),
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

function encodeQp(text: string): string {
  return qpWrap(qpEncode(text.replace(/\r?\n/g, '\r\n')), 76);
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

/** Encodes header text as RFC 2047 words when it is not plain ASCII. */
export function encodeHeaderText(text: string): string {
  const clean = text.replace(/[\r\n]+/g, ' ');
  return /^[\x20-\x7e]*$/.test(clean) ? clean : encodeWords(clean, 'Q', 52);
}

/** `"Name" <address>`, with the name quoted or encoded as needed. */
export function formatAddress(address: string, name?: string): string {
  if (!name) return address;
  const clean = name.replace(/[\r\n]+/g, ' ').trim();
  if (!/^[\x20-\x7e]*$/.test(clean)) return `${encodeWords(clean, 'Q', 52)} <${address}>`;
  return `"${clean.replace(/(["\\])/g, '\\$1')}" <${address}>`;
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
