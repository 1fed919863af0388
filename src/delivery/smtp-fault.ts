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
const REFUSES_US = /\brelay(ing)?\b|\bsender\b|\bspf\b|\bdmarc\b|\bdkim\b|\bauthenticat|\bblock ?list|\bblack ?list|\bspamhaus\b|\breputation\b|\bnot permitted\b/i;

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
  const enhanced = /\b([245])\.(\d{1,3})\.\d{1,3}\b/.exec(reply);
  const subject = enhanced ? Number(enhanced[2]) : undefined;
  if (error.code === 'EAUTH') return code !== undefined && code < 500 ? 'unreachable' : 'refused';
  if (code === undefined || code < 400) {
    // Refused before a byte was sent: an address nodemailer cannot put in an envelope is the
    // recipient's; a message over the server's SIZE or a TLS requirement it cannot meet is ours.
    if (error.code === 'EENVELOPE' && command === 'API') return /sender/i.test(error.message ?? '') ? 'refused' : 'recipient-permanent';
    if (error.code === 'EMESSAGE' || error.code === 'EREQUIRETLS') return 'refused';
    return 'unreachable';
  }
  if (code === 421) return 'unreachable';
  // Before any envelope: the greeting, EHLO, STARTTLS. A 5xx there refuses us outright.
  if (command === 'CONN' || command === '' || /^(EHLO|HELO|LHLO|STARTTLS)/.test(command)) return code >= 500 ? 'refused' : 'unreachable';
  if (command.startsWith('MAIL')) return code >= 500 ? 'refused' : 'unreachable';
  if (code < 500) return command.startsWith('RCPT') || command === 'DATA' ? 'recipient-temporary' : 'unreachable';
  if (subject === 7 || subject === 5) return 'refused';
  if (subject === 1 || subject === 2) return 'recipient-permanent';
  if (REFUSES_US.test(reply)) return 'refused';
  if (command.startsWith('RCPT')) {
    if (subject === undefined) return code === 554 ? 'unclear-permanent' : 'recipient-permanent';
    return subject === 4 ? 'recipient-permanent' : 'unclear-permanent';
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
