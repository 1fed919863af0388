import { DeliveryFault, type FaultKind } from '../errors.ts';

/** The fields of a nodemailer SMTP error this reads. */
export interface SmtpFailure {
  code?: string;
  originalCode?: string;
  responseCode?: number;
  command?: string;
  response?: string;
  message?: string;
}

// Replies that blame our session, whatever their code says: relaying, sender and policy checks.
// Read only where the enhanced code does not already name the recipient ("User unknown in relay
// recipient table" is Postfix's everyday bounce for a relayed domain).
const REFUSES_US = /\brelay(ing)? (access )?denied\b|\bnot permitted to relay\b|\brelaying\b|\bsender\b|\bsend ?as\b|\bspf\b|\bdmarc\b|\bdkim\b|\bauthenticat|\bblock ?list|\bblack ?list|\bblocked\b|\bspamhaus\b|\breputation\b|\bnot permitted\b/i;

// Wording by which a reply says it is about the recipient, not about us.
const NAMES_RECIPIENT = /\brecipient\b|\bmailbox\b|\buser\b/i;

/** RFC 3463 enhanced code of a reply: only right after the reply code, and of the same class. */
function enhancedCode(reply: string, code: number): { subject: number; detail: number } | undefined {
  const match = /^\d{3}[ -]([245])\.(\d{1,3})\.(\d{1,3})\b/.exec(reply);
  if (!match || Number(match[1]) !== Math.floor(code / 100)) return undefined;
  return { subject: Number(match[2]), detail: Number(match[3]) };
}

/**
 * Reads a nodemailer SMTP error and says who is at fault (see FaultKind): the recipient, the
 * server refusing us, or no session at all. The command the reply answered decides most of it;
 * an RFC 3463 enhanced code (5.1.1, 5.7.1) decides the rest.
 */
export function classifySmtpFailure(error: SmtpFailure): DeliveryFault {
  const reply = (error.response ?? '').trim();
  const code = error.responseCode;
  const command = (error.command ?? '').toUpperCase();
  const kind = faultKind(error, reply, code, command);
  const what = command && command !== 'API' ? `${command === 'CONN' ? 'connection' : command}` : 'SMTP';
  const said = reply || `${error.originalCode ?? error.code ?? 'error'}: ${error.message ?? 'unknown SMTP error'}`;
  const described = error.code === 'EAUTH' ? 'SMTP authentication failed' : DESCRIBED[kind];
  return new DeliveryFault(kind, `${described} (${what}): ${said}`, { reply: reply || said, cause: error });
}

function faultKind(error: SmtpFailure, reply: string, code: number | undefined, command: string): FaultKind {
  if (error.code === 'EAUTH') return code !== undefined && code < 500 ? 'unreachable' : 'refused';
  if (code === undefined) {
    // Refused before a byte was sent: an address nodemailer cannot put in an envelope is the
    // recipient's; a message over the server's SIZE or a TLS requirement it cannot meet is ours.
    if (error.code === 'EENVELOPE' && command === 'API') return /^invalid sender/i.test(error.message ?? '') ? 'refused' : 'recipient-permanent';
    if (error.code === 'EMESSAGE' || error.code === 'EREQUIRETLS') return 'refused';
    return 'unreachable';
  }
  // A 2xx or 3xx where a failure was read: the session lost its place (a pipelining desync), so it is dropped.
  if (code < 400) return 'unreachable';
  if (code === 421) return 'unreachable';
  // Before any envelope: the greeting, EHLO, STARTTLS. A 5xx there refuses us outright.
  if (command === 'CONN' || command === '' || /^(EHLO|HELO|LHLO|STARTTLS)/.test(command)) return code >= 500 ? 'refused' : 'unreachable';
  if (command.startsWith('MAIL')) return code >= 500 ? 'refused' : 'unreachable';
  const enhanced = enhancedCode(reply, code);
  const atRcpt = command.startsWith('RCPT');
  if (code < 500) {
    // 4.3.x (the mail system: storage, not accepting) and 4.4.x (its network) are the server's; the rest this recipient's.
    if (enhanced && (enhanced.subject === 3 || enhanced.subject === 4)) return 'unreachable';
    return atRcpt || command === 'DATA' ? 'recipient-temporary' : 'unreachable';
  }
  // 5.7.x is policy: ours (relaying, our sender, our reputation), unless the reply is about this
  // recipient alone (Postfix's "Recipient address rejected: Access denied"): then only this message fails.
  if (enhanced?.subject === 7) return atRcpt && NAMES_RECIPIENT.test(reply) && !/\brelay/i.test(reply) ? 'unclear-permanent' : 'refused';
  // 5.5.1, 5.5.2, 5.5.4: our command was wrong. Other 5.5.x (Outlook's "550 5.5.0 mailbox unavailable") fall through.
  if (enhanced?.subject === 5 && [1, 2, 4].includes(enhanced.detail)) return 'refused';
  // X.1.7 and X.1.8 are the sender's address (Postfix's delayed "Sender address rejected" at RCPT).
  if (enhanced?.subject === 1) return enhanced.detail === 7 || enhanced.detail === 8 ? 'refused' : 'recipient-permanent';
  if (enhanced?.subject === 2) {
    // 5.2.3 is the message's size; vendor details (Microsoft's 5.2.252 SendAsDenied) say who by their words.
    if (enhanced.detail === 3) return 'unclear-permanent';
    if (enhanced.detail >= 100) return REFUSES_US.test(reply) ? 'refused' : 'unclear-permanent';
    return 'recipient-permanent';
  }
  if (REFUSES_US.test(reply)) return 'refused';
  if (atRcpt) {
    if (code === 550 || code === 551 || code === 553 || code === 552) return 'recipient-permanent';
    return enhanced?.subject === 4 ? 'recipient-permanent' : 'unclear-permanent';
  }
  return 'unclear-permanent';
}

const DESCRIBED: Record<FaultKind, string> = {
  'recipient-temporary': 'recipient deferred',
  'recipient-permanent': 'recipient refused',
  'unclear-permanent': 'message refused',
  refused: 'the server refuses us',
  unreachable: 'no SMTP session',
};
