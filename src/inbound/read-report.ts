import { MailParser, parseAddressHeader } from 'mailparser';
import type { AttachmentStream, HeaderValue, Headers, MessageText } from 'mailparser';
import { type Fields, actionOf, address, decodeWords, diagnostic, enhanced, field, fieldGroups, smtpClass, stripComments, typed } from './report-fields.ts';

/** The headers of the message a report is about, as far as the report returned them. */
export interface OriginalHeaders {
  messageId: string | null;
  /** The value of X-Gazette-Delivery. */
  gazetteDelivery: string | null;
  /** The first address of To, without display name. */
  to: string | null;
  /** The first address of From, without display name. */
  from: string | null;
  subject: string | null;
}

/** What a delivery status notification says about one recipient. */
export interface DsnRecipient {
  finalRecipient: string | null;
  originalRecipient: string | null;
  /** Lower-cased: failed, delayed, delivered, relayed, expanded. */
  action: string;
  /** Enhanced status code like 5.1.1. */
  status: string | null;
  /** The text after "smtp;". */
  diagnosticCode: string | null;
  remoteMta: string | null;
}

/** A mail that came back, read for its structure: a DSN, an ARF complaint, an auto-reply or anything else. */
export type ReadMail =
  | { kind: 'delivery-status'; messageId: string | null; reportingMta: string | null; recipients: DsnRecipient[]; original: OriginalHeaders | null }
  | { kind: 'feedback'; messageId: string | null; feedbackType: string; userAgent: string | null; originalRcptTo: string[]; originalMailFrom: string | null; arrivalDate: Date | null; original: OriginalHeaders | null }
  | { kind: 'auto-reply'; messageId: string | null; why: string }
  | { kind: 'other'; messageId: string | null; subject: string; from: string | null; text: string; bounceGuess: { status: string; diagnostic: string } | null; original: OriginalHeaders | null; headers: { deliveredTo: string[]; to: string[] } };

type Role = 'dsn' | 'feedback' | 'headers' | 'message';
interface Part { role: Role; body: string }
interface Parsed { headers: Headers; text: string; parts: Part[] }

// Reports are small and only the head of a returned original matters, so a soak of big bounces
// holds no more than this per part; everything else is drained unread.
const REPORT_CAP = 256 * 1024;
const HEAD_CAP = 64 * 1024;
const TEXT_CAP = 64 * 1024;

// The global (RFC 6533) types carry the same fields in UTF-8, so they are read like the ASCII ones.
const ROLES: Record<string, Role> = {
  'message/delivery-status': 'dsn',
  'message/global-delivery-status': 'dsn',
  'message/feedback-report': 'feedback',
  'text/rfc822-headers': 'headers',
  'message/global-headers': 'headers',
  'message/rfc822': 'message',
  'message/global': 'message',
};

// The class digit is 2, 4 or 5 and the subject 0-7 (RFC 3463); the guards keep IP addresses and version numbers out.
const ENHANCED = /(?<![\d.])([245])\.([0-7])\.(\d{1,3})(?!\.?\d)/;
const FAILURE_ENHANCED = /(?<![\d.])([45])\.([0-7])\.(\d{1,3})(?!\.?\d)/;
const SMTP_CODE = /(?<![\w.])([45])[0-5]\d(?=[ -]|$)/m;
const FAILURE_NOTICE =
  /undeliverable|undelivered mail|delivery status notification \(failure\)|mail delivery failed|delivery (?:has )?failed|returned mail|could not be delivered|couldn't be delivered|wasn't delivered|failure notice|delivery failure|permanent error|unzustellbar|non remis/i;
// A subject that alone says "automatic"; the looser one only counts beside Outlook's X-Auto-Response-Suppress.
const AUTO_SUBJECT =
  /^\s*(?:\[[^\]]*\]\s*)?(?:auto(?:matic)?[ -]?(?:reply|response)|auto:|autosvar|abwesenheit|automatische antwort|r[ée]ponse automatique|respuesta autom[áa]tica|risposta automatica|resposta autom[áa]tica|automatisch antwoord|automaattinen vastaus|fuera de la oficina|absence du bureau|on vacation|vacation reply)|\bout of (?:the )?office\b/i;
const AWAY_SUBJECT = /vacation|holiday|away|abwesen|urlaub|vacances|vacaciones|ferie|office|automati/i;

/** Reads a returned mail into a DSN, a feedback report, an auto-reply or 'other'; never rejects. */
export async function readReport(raw: Buffer): Promise<ReadMail> {
  try {
    return classify(await parseMime(raw));
  } catch {
    return classify({ headers: new Map(), text: '', parts: [] });
  }
}

function classify(mail: Parsed): ReadMail {
  const messageId = headerText(mail.headers, 'message-id');
  const contentType = mail.headers.get('content-type');
  const reportType = isStructured(contentType) ? (contentType.params['report-type'] ?? '').toLowerCase() : '';
  const dsn = mail.parts.filter((part) => part.role === 'dsn').map((part) => readDsn(part.body));
  const recipients = dsn.flatMap((read) => read.recipients);
  const feedback = mail.parts.find((part) => part.role === 'feedback');
  // A report is a report first: Postfix marks its DSNs Auto-Submitted too.
  if (recipients.length > 0 && (reportType === 'delivery-status' || !feedback)) {
    const reportingMta = dsn.find((read) => read.reportingMta)?.reportingMta ?? null;
    return { kind: 'delivery-status', messageId, reportingMta, recipients, original: findOriginal(mail) };
  }
  if (feedback) return { kind: 'feedback', messageId, ...readFeedback(feedback.body), original: findOriginal(mail) };

  const subject = headerText(mail.headers, 'subject') ?? '';
  const failure = FAILURE_NOTICE.test(subject) || FAILURE_NOTICE.test(mail.text);
  const bounceGuess = failure ? guessBounce(mail.text) : null;
  // MTAs that send no DSN part still mark their bounces Auto-Submitted, so a failure notice wins over the header.
  const why = failure && !AUTO_SUBJECT.test(subject) ? null : autoReplyReason(mail.headers, subject);
  if (why) return { kind: 'auto-reply', messageId, why };
  return {
    kind: 'other',
    messageId,
    subject,
    from: addresses(mail.headers.get('from'))[0] ?? null,
    text: mail.text,
    bounceGuess,
    original: findOriginal(mail),
    headers: {
      deliveredTo: [...addresses(mail.headers.get('delivered-to')), ...addresses(mail.headers.get('x-original-to'))],
      to: addresses(mail.headers.get('to')),
    },
  };
}

/** Runs mailparser over the mail, keeping the headers, the text and the capped bodies of the report parts. */
function parseMime(raw: Buffer): Promise<Parsed> {
  return new Promise((resolve) => {
    const mail: Parsed = { headers: new Map(), text: '', parts: [] };
    const parser = new MailParser({
      keepDeliveryStatus: true,
      ignoreEmbedded: true, // an attached original stays one part, whose head we read ourselves
      checksumAlgo: false,
      skipTextToHtml: true,
      skipTextLinks: true,
      skipImageLinks: true,
      maxHtmlLengthToParse: 512 * 1024,
    });
    let settled = false;
    // An error midway still leaves what was read so far, which is all a garbled mail can offer.
    const settle = (): void => {
      if (settled) return;
      settled = true;
      resolve(mail);
      parser.destroy();
    };
    parser.on('headers', (headers) => (mail.headers = headers));
    parser.on('data', (data: AttachmentStream | MessageText) => {
      if (data.type === 'text') mail.text = (data.text ?? '').slice(0, TEXT_CAP);
      else collect(data, mail.parts);
    });
    parser.on('error', settle);
    parser.on('end', settle);
    parser.end(raw);
  });
}

function collect(attachment: AttachmentStream, parts: Part[]): void {
  const role = ROLES[attachment.contentType];
  const cap = role === 'dsn' || role === 'feedback' ? REPORT_CAP : HEAD_CAP;
  const chunks: Buffer[] = [];
  let size = 0;
  const done = (): void => {
    if (role) parts.push({ role, body: Buffer.concat(chunks).subarray(0, cap).toString('utf8') });
    attachment.release?.();
  };
  attachment.content.on('data', (chunk: Buffer) => {
    if (role && size < cap) {
      chunks.push(chunk);
      size += chunk.length;
    }
  });
  attachment.content.once('end', done);
  attachment.content.once('error', () => attachment.release?.());
}

function readDsn(body: string): { reportingMta: string | null; recipients: DsnRecipient[] } {
  const groups = fieldGroups(body);
  // Recipient groups are told by their fields, not their place: some senders drop the per-message group.
  const isRecipient = (g: Fields): boolean => g.has('final-recipient') || g.has('original-recipient') || g.has('action');
  const perMessage = groups.find((g) => !isRecipient(g));
  return {
    reportingMta: typed(field(perMessage, 'reporting-mta')),
    recipients: groups.filter(isRecipient).map(readRecipient),
  };
}

function readRecipient(group: Fields): DsnRecipient {
  const diagnosticCode = diagnostic(field(group, 'diagnostic-code'));
  const given = enhanced(field(group, 'status'), ENHANCED);
  const said = enhanced(diagnosticCode, ENHANCED);
  // Exim writes a bare 5.0.0 beside the remote's 550 5.1.1: the remote's code of the same class says more.
  const refines = said !== null && (given === null || (given.endsWith('.0.0') && said[0] === given[0]));
  const status = refines ? said : (given ?? smtpClass(diagnosticCode));
  const action = stripComments(field(group, 'action') ?? '').toLowerCase() || actionOf(status);
  return {
    finalRecipient: address(typed(field(group, 'final-recipient'))),
    originalRecipient: address(typed(field(group, 'original-recipient'))),
    action,
    status,
    diagnosticCode,
    remoteMta: typed(field(group, 'remote-mta')),
  };
}

function readFeedback(body: string): Omit<Extract<ReadMail, { kind: 'feedback' }>, 'kind' | 'messageId' | 'original'> {
  // One group by the RFC, but the fields are merged in case a sender put blank lines between them.
  const fields: Fields = new Map();
  for (const group of fieldGroups(body)) for (const [name, values] of group) fields.set(name, [...(fields.get(name) ?? []), ...values]);
  const arrival = stripComments(field(fields, 'arrival-date') ?? field(fields, 'received-date') ?? '');
  const date = arrival ? new Date(arrival) : null;
  return {
    feedbackType: stripComments(field(fields, 'feedback-type') ?? '').toLowerCase() || 'other',
    userAgent: field(fields, 'user-agent') || null,
    originalRcptTo: (fields.get('original-rcpt-to') ?? []).map((v) => address(typed(v))).filter((v): v is string => v !== null),
    originalMailFrom: address(typed(field(fields, 'original-mail-from'))),
    arrivalDate: date && !Number.isNaN(date.getTime()) ? date : null,
  };
}


/** The status and the line it is on, from the text of a mail that reads as a failure notice. */
function guessBounce(text: string): { status: string; diagnostic: string } | null {
  const match = FAILURE_ENHANCED.exec(text) ?? SMTP_CODE.exec(text);
  if (!match) return null;
  const status = match[2] === undefined ? `${match[1]}.0.0` : `${match[1]}.${match[2]}.${match[3]}`;
  const start = text.lastIndexOf('\n', match.index) + 1;
  const end = text.indexOf('\n', match.index);
  const line = text.slice(start, end < 0 ? undefined : end).replace(/\s+/g, ' ').trim();
  return { status, diagnostic: line.slice(0, 500) };
}

function autoReplyReason(headers: Headers, subject: string): string | null {
  const submitted = stripComments(headerText(headers, 'auto-submitted') ?? '').split(';')[0]!.trim().toLowerCase();
  if (submitted && submitted !== 'no') return `Auto-Submitted: ${submitted}`;
  if (headers.has('x-autoreply')) return 'X-Autoreply';
  if (headers.has('x-autorespond')) return 'X-Autorespond';
  if (headerText(headers, 'precedence')?.trim().toLowerCase() === 'auto_reply') return 'Precedence: auto_reply';
  if (headers.has('x-auto-response-suppress') && AWAY_SUBJECT.test(subject)) return `X-Auto-Response-Suppress, subject: ${subject}`;
  if (AUTO_SUBJECT.test(subject)) return `subject: ${subject}`;
  return null;
}

/** The original's headers: from a headers part, an attached message, or quoted in the text as plain bounces do. */
function findOriginal(mail: Parsed): OriginalHeaders | null {
  for (const role of ['headers', 'message'] as const) {
    for (const part of mail.parts) {
      const found = part.role === role ? readOriginal(headBlock(part.body)) : null;
      if (found) return found;
    }
  }
  return originalInText(mail.text);
}

function headBlock(body: string): string {
  const end = body.search(/\r?\n\r?\n/);
  return /^\r?\n/.test(body) ? '' : end < 0 ? body : body.slice(0, end);
}

function readOriginal(block: string): OriginalHeaders | null {
  const fields = fieldGroups(block)[0];
  if (!fields) return null;
  const id = field(fields, 'message-id')?.trim();
  const original: OriginalHeaders = {
    messageId: id ? (/<[^>]*>/.exec(id)?.[0] ?? `<${id}>`) : null,
    gazetteDelivery: field(fields, 'x-gazette-delivery') || null,
    to: addresses(field(fields, 'to') ?? undefined)[0] ?? null,
    from: addresses(field(fields, 'from') ?? undefined)[0] ?? null,
    subject: decodeWords(field(fields, 'subject')),
  };
  return Object.values(original).some((v) => v !== null) ? original : null;
}

/** Finds a quoted header block (indented or "> " quoted alike) around an X-Gazette-Delivery or Message-ID line. */
function originalInText(text: string): OriginalHeaders | null {
  const lines = text.split('\n');
  let hit = lines.findIndex((line) => /^[ \t>]*x-gazette-delivery:/i.test(line));
  if (hit < 0) hit = lines.findIndex((line) => /^[ \t>]*message-id:/i.test(line));
  if (hit < 0) return null;
  const prefix = /^[ \t>]*/.exec(lines[hit]!)![0];
  const inBlock = (line: string | undefined): boolean => line !== undefined && line.startsWith(prefix) && line.slice(prefix.length).trim() !== '';
  let start = hit;
  while (inBlock(lines[start - 1])) start--;
  let end = hit + 1;
  while (inBlock(lines[end])) end++;
  return readOriginal(lines.slice(start, end).map((line) => line.slice(prefix.length)).join('\n'));
}


function headerText(headers: Headers, name: string): string | null {
  const value = headers.get(name);
  const first = Array.isArray(value) ? value[0] : value;
  return typeof first === 'string' ? first : null;
}

function isStructured(value: HeaderValue | undefined): value is { value: string; params: Record<string, string> } {
  return typeof value === 'object' && value !== null && 'params' in value;
}

/** The addresses of a header mailparser parsed, or of a raw header value, groups flattened. */
function addresses(value: HeaderValue | string | undefined): string[] {
  const objects = typeof value === 'string' || (Array.isArray(value) && typeof value[0] === 'string') ? [safeParse(value as string | string[])] : [value].flat();
  const out: string[] = [];
  for (const object of objects) {
    if (typeof object !== 'object' || object === null || !('value' in object) || !Array.isArray(object.value)) continue;
    for (const entry of object.value.flatMap((e) => [e, ...(e.group ?? [])])) if (entry.address) out.push(entry.address);
  }
  return out;
}

function safeParse(value: string | string[]): ReturnType<typeof parseAddressHeader> | null {
  try {
    return parseAddressHeader(value, { flatten: true });
  } catch {
    return null;
  }
}
