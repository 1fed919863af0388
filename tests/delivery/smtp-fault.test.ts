import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { describe, expect, it } from 'vitest';
import { classifySmtpFailure, type SmtpFailure } from '../../src/delivery/smtp-fault.ts';
import { DeliveryFault, type FaultKind } from '../../src/errors.ts';

type FormatError = (message: string | Error, type: string, response: string | false, command: string) => Error & SmtpFailure;

/**
 * nodemailer's own error builder (SMTPConnection#_formatError, internal): every fixture below is
 * built the way a real session builds it, so `message`, `code`, `originalCode`, `response`,
 * `responseCode` and `command` have the shapes the adapter really receives.
 */
const formatError = (SMTPConnection.prototype as unknown as { _formatError: FormatError })._formatError;

/** A nodemailer error and how the fault's message should name the step that failed. */
interface Fixture {
  error: Error & SmtpFailure;
  stage: string;
}

// One builder per place in SMTPConnection that makes the error (see smtp-connection/index.js).
/** `_actionMAIL`: the reply to MAIL FROM, reported through `_envelopeError`. */
const mailFrom = (reply: string): Fixture => ({ error: formatError('Mail command failed', 'EENVELOPE', reply, 'MAIL FROM'), stage: 'MAIL FROM' });
/** `_envelopeError`: our one recipient was rejected at RCPT TO. */
const rcpt = (reply: string): Fixture => ({
  error: formatError("Can't send mail - all recipients were rejected", 'EENVELOPE', reply, 'RCPT TO'),
  stage: 'RCPT TO',
});
/** `_actionDATA`: the DATA command itself was refused. */
const dataCommand = (reply: string): Fixture => ({ error: formatError('Data command failed', 'EENVELOPE', reply, 'DATA'), stage: 'DATA' });
/** `_actionSMTPStream`: the reply after the message's final dot. */
const afterMessage = (reply: string): Fixture => ({ error: formatError('Message failed', 'EMESSAGE', reply, 'DATA'), stage: 'DATA' });
/** `_actionGreeting`: anything but a 220 on connect. */
const greeting = (reply: string): Fixture => ({
  error: formatError(new Error(`Invalid greeting. response=${reply}`), 'EPROTOCOL', reply, 'CONN'),
  stage: 'connection',
});
/** `_actionEHLO`: a 421 to EHLO. */
const ehlo = (reply: string): Fixture => ({
  error: formatError(new Error(`Server terminates connection. response=${reply}`), 'ECONNECTION', reply, 'EHLO'),
  stage: 'EHLO',
});
/** `_actionAUTHComplete`: the final reply to AUTH. */
const auth = (reply: string, method = 'PLAIN'): Fixture => ({
  error: formatError('Invalid login', 'EAUTH', reply, `AUTH ${method}`),
  stage: `AUTH ${method}`,
});
/** `_onServerClosing`: a 421 arrived mid-session, with nothing of ours to blame. */
const serverClosing = (reply: string): Fixture => ({ error: formatError('Server closed the connection', 'ECONNECTION', reply, 'CONN'), stage: 'connection' });
/** A Node system error (the socket's), as `_onError` wraps it: its code survives as `originalCode`. */
function systemError(type: string, message: string, code: string, command = 'CONN'): Fixture {
  const error = Object.assign(new Error(message), { code, syscall: 'connect' });
  return { error: formatError(error, type, false, command), stage: command === 'CONN' ? 'connection' : command };
}
/** nodemailer's own refusal, before a byte was sent. */
const local = (message: string, type: string, command: string): Fixture => ({
  error: formatError(message, type, false, command),
  stage: command === 'API' ? 'SMTP' : command,
});

interface Row extends Fixture {
  server: string;
  kind: FaultKind;
  why: string;
}

// What each kind's message says happened (EAUTH says "SMTP authentication failed" instead).
const SAYS: Record<FaultKind, string> = {
  'recipient-temporary': 'recipient deferred',
  'recipient-permanent': 'recipient refused',
  'unclear-permanent': 'message refused',
  refused: 'the server refuses us',
  unreachable: 'no SMTP session',
};

const GMAIL_ID = 'x12-20020a05600c4b0c00b003fbd9e4d3c8si11052525wmp.178 - gsmtp';

const MAIL_FROM: Row[] = [
  {
    server: 'Postfix',
    ...mailFrom('550 5.7.1 <news@gazette.example.org>: Sender address rejected: not owned by user news-relay'),
    kind: 'refused',
    why: 'a 5xx to MAIL FROM refuses our sender',
  },
  { server: 'Exim', ...mailFrom('553 5.7.1 sender rejected'), kind: 'refused', why: 'a 5xx to MAIL FROM refuses our sender' },
  {
    server: 'Exchange',
    ...mailFrom('550 5.1.0 sender rejected'),
    kind: 'refused',
    why: 'the sender is ours, so a 5xx to MAIL FROM is the server refusing us even with an addressing (5.1.x) subject code',
  },
  {
    server: 'SendGrid',
    ...mailFrom('550 Unauthenticated senders not allowed'),
    kind: 'refused',
    why: 'a 5xx to MAIL FROM without an enhanced code still refuses us',
  },
  {
    server: 'Postfix',
    ...mailFrom('451 4.3.0 <news@gazette.example.org>: Temporary lookup failure'),
    kind: 'unreachable',
    why: 'a 4xx to MAIL FROM is no recipient\u2019s: the session is unusable for now',
  },
  {
    server: 'Postfix',
    ...mailFrom('452 4.3.1 Insufficient system storage'),
    kind: 'unreachable',
    why: 'a full disk at MAIL FROM: no usable session',
  },
  {
    server: 'Gmail',
    ...mailFrom(
      '421-4.7.28 Our system has detected an unusual rate of unsolicited mail originating\n421-4.7.28 from your IP address. To protect our users from spam, mail sent from your IP\n421 4.7.28 address has been temporarily rate limited. ' +
        GMAIL_ID,
    ),
    kind: 'unreachable',
    why: 'a 421 closes the session whatever the command',
  },
];

const RCPT: Row[] = [
  {
    server: 'Postfix (check_recipient_access)',
    ...rcpt('554 5.7.1 <poison@example.org>: Recipient address rejected: Access denied'),
    kind: 'unclear-permanent',
    why: 'a policy refusal of this recipient alone: its message fails, nobody is paused or suppressed',
  },
  {
    server: 'Postfix (delayed reject of our sender at RCPT)',
    ...rcpt('553 5.1.8 <newsletter@gazette.example.org>: Sender address rejected: Domain not found'),
    kind: 'refused',
    why: 'X.1.8 is the sender\'s system address: ours, at whatever command it comes',
  },
  {
    server: 'Postfix (delayed reject of our sender at RCPT)',
    ...rcpt('553 5.1.7 <news@>: Sender address rejected: malformed address'),
    kind: 'refused',
    why: 'X.1.7 is the sender\'s mailbox syntax',
  },
  {
    server: 'Postfix',
    ...rcpt('550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown in local recipient table'),
    kind: 'recipient-permanent',
    why: '5.1.1: the mailbox does not exist',
  },
  {
    server: 'Gmail',
    ...rcpt(
      "550-5.1.1 The email account that you tried to reach does not exist. Please try\n550-5.1.1 double-checking the recipient's email address for typos or\n550-5.1.1 unnecessary spaces. For more information, go to\n550 5.1.1  https://support.google.com/mail/?p=NoSuchUser " +
        GMAIL_ID,
    ),
    kind: 'recipient-permanent',
    why: 'a multi-line 5.1.1 (nodemailer joins the lines with \\n)',
  },
  {
    server: 'Microsoft 365',
    ...rcpt('550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup'),
    kind: 'recipient-permanent',
    why: 'a three-digit detail (5.1.10) is still an addressing subject',
  },
  {
    server: 'Yahoo',
    ...rcpt('550 No such user here'),
    kind: 'recipient-permanent',
    why: 'a 550 at RCPT without an enhanced code names the recipient',
  },
  { server: 'Exim', ...rcpt('550 Unrouteable address'), kind: 'recipient-permanent', why: 'a 550 at RCPT without an enhanced code names the recipient' },
  { server: 'Postfix', ...rcpt('552 5.2.2 <bob@example.org>: mailbox full'), kind: 'recipient-permanent', why: '5.2.x is the mailbox\u2019s status' },
  {
    server: 'Postfix',
    ...rcpt('553 5.1.3 <bob@example..org>: Recipient address rejected: bad address syntax'),
    kind: 'recipient-permanent',
    why: '5.1.3: the address itself is wrong',
  },
  {
    server: 'Postfix',
    ...rcpt('554 5.7.1 <bob@example.org>: Relay access denied'),
    kind: 'refused',
    why: '5.7.x is policy: the server will not relay for us',
  },
  { server: 'old Postfix', ...rcpt('554 Relay access denied'), kind: 'refused', why: 'no enhanced code, but the relay wording blames our session' },
  {
    server: 'Postfix',
    ...rcpt('550 5.7.1 Service unavailable; client [1.2.3.4] blocked using zen.spamhaus.org'),
    kind: 'refused',
    why: 'a block list refuses our IP, not this recipient',
  },
  {
    server: 'Exim',
    ...rcpt('550 Rejected because 203.0.113.7 is in a black list at zen.spamhaus.org'),
    kind: 'refused',
    why: 'no enhanced code, but the black-list wording blames our IP',
  },
  {
    server: 'Exim',
    ...rcpt('550-Verification failed for <news@gazette.example.org>\n550-Unrouteable address\n550 Sender verify failed'),
    kind: 'refused',
    why: 'Exim verifies our sender at RCPT time: the failure is ours',
  },
  {
    server: 'Microsoft 365',
    ...rcpt(
      '550 5.4.1 Recipient address rejected: Access denied. [CY4PEPF0000EE3C.namprd03.prod.outlook.com 2023-09-18T12:48:32.808Z 08DBB45899852BA7]',
    ),
    kind: 'recipient-permanent',
    why: 'Directory-Based Edge Blocking: the recipient does not exist in the tenant',
  },
  {
    server: 'Postfix (postgrey)',
    ...rcpt('450 4.2.0 <bob@example.org>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/example.org.html'),
    kind: 'recipient-temporary',
    why: 'greylisting: retry this one later',
  },
  {
    server: 'Gmail',
    ...rcpt(
      '450-4.2.1 The user you are trying to contact is receiving mail at a rate that\n450-4.2.1 prevents additional messages from being delivered. Please resend your\n450 4.2.1 message at a later time. ' +
        GMAIL_ID,
    ),
    kind: 'recipient-temporary',
    why: 'one busy mailbox',
  },
  { server: 'Exim', ...rcpt('451 4.7.1 Please try again later'), kind: 'recipient-temporary', why: 'a 4xx for this recipient' },
  { server: 'Gmail', ...rcpt('452 4.5.3 Your message has too many recipients.'), kind: 'recipient-temporary', why: 'a 4xx at RCPT is retried' },
  {
    server: 'Microsoft 365',
    ...rcpt('451 4.7.500 Server busy. Please try again later from [52.4.1.9]. (S77714)'),
    kind: 'recipient-temporary',
    why: 'a 4xx at RCPT is retried (a streak of the same reply makes it an outage)',
  },
  { server: 'Postfix', ...rcpt('421 4.7.0 mx.example.org Error: too many errors, closing connection'), kind: 'unreachable', why: 'a 421 ends the session' },
  { server: 'generic', ...rcpt('554 5.0.0 error'), kind: 'unclear-permanent', why: '5.0.0 says nothing of whose fault it is' },
  { server: 'generic', ...rcpt('554 Transaction failed'), kind: 'unclear-permanent', why: 'a bare 554 at RCPT may be the server\u2019s' },
  { server: 'Exchange', ...rcpt('550 5.4.4 Unable to route'), kind: 'recipient-permanent', why: '5.4.x at RCPT: the recipient\u2019s domain cannot be reached' },
];

const AFTER_DATA: Row[] = [
  {
    server: 'a server out of step with our pipelined commands',
    ...afterMessage('354 End data with <CR><LF>.<CR><LF>'),
    kind: 'unreachable',
    why: 'a 3xx read where the final reply belongs: the session lost its place and is dropped',
  },
  { server: 'rspamd', ...afterMessage('554 5.7.1 Message rejected as spam'), kind: 'refused', why: '5.7.x policy: our content is refused' },
  {
    server: 'Gmail',
    ...afterMessage(
      '550-5.7.26 This mail has been blocked because the sender is unauthenticated.\n550 5.7.26 Gmail requires all senders to authenticate with either SPF or DKIM. ' + GMAIL_ID,
    ),
    kind: 'refused',
    why: 'authentication policy: every recipient would get the same',
  },
  {
    server: 'Microsoft 365',
    ...afterMessage('550 5.7.60 SMTP; Client does not have permissions to send as this sender'),
    kind: 'refused',
    why: 'our account may not send as the From address',
  },
  {
    server: 'SendGrid',
    ...afterMessage('550 The from address does not match a verified Sender Identity. Mail cannot be sent until this error is resolved.'),
    kind: 'refused',
    why: 'no enhanced code, but the reply is about our sender',
  },
  { server: 'generic', ...afterMessage('554 Transaction failed'), kind: 'unclear-permanent', why: 'a bare 554 after DATA may be the message\u2019s or the server\u2019s' },
  {
    server: 'Amazon SES',
    ...afterMessage(
      '554 Message rejected: Email address is not verified. The following identities failed the check in region EU-WEST-1: news@gazette.example.org',
    ),
    kind: 'unclear-permanent',
    why: 'a 554 without an enhanced code or known wording: left to the streak of alike replies',
  },
  {
    server: 'Postfix',
    ...afterMessage('552 5.3.4 Message size exceeds fixed limit'),
    kind: 'unclear-permanent',
    why: '5.3.x is the mail system\u2019s, not the recipient\u2019s',
  },
  { server: 'Exim', ...afterMessage('550 5.2.2 mailbox full'), kind: 'recipient-permanent', why: '5.2.x is the mailbox\u2019s status' },
  { server: 'Postfix', ...afterMessage('451 4.3.0 Error: queue file write error'), kind: 'unreachable', why: '4.3.x is the mail system\'s own trouble, the same for every message: it counts toward an outage' },
  {
    server: 'Amazon SES',
    ...afterMessage('454 Throttling failure: Maximum sending rate exceeded.'),
    kind: 'recipient-temporary',
    why: 'a 4xx after DATA is retried (a streak of the same reply makes it an outage)',
  },
  {
    server: 'Postfix',
    ...dataCommand('554 5.7.1 <DATA>: Data command rejected: Improper use of SMTP command pipelining'),
    kind: 'refused',
    why: 'smtpd_data_restrictions refuse our session, not the recipient',
  },
];

const SESSION: Row[] = [
  { server: 'Postfix', ...greeting('554 5.3.2 mx.example.org ESMTP not accepting messages'), kind: 'refused', why: 'a 554 greeting refuses us outright' },
  { server: 'generic', ...greeting('554 no SMTP service here'), kind: 'refused', why: 'a 554 greeting refuses us outright' },
  {
    server: 'Yahoo',
    ...greeting(
      "553 5.7.1 [BL21] Connections will not be accepted from 203.0.113.7, because the ip is in Spamhaus's list; see https://postmaster.yahooinc.com/error-codes",
    ),
    kind: 'refused',
    why: 'a 5xx greeting refuses our IP',
  },
  { server: 'Postfix', ...greeting('421 4.7.0 mx.example.org Error: too many connections from 203.0.113.7'), kind: 'unreachable', why: 'a 421 greeting: come back later' },
  {
    server: 'Yahoo',
    ...greeting(
      '421 4.7.0 [TSS04] Messages from 203.0.113.7 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes',
    ),
    kind: 'unreachable',
    why: 'a 421 greeting: come back later',
  },
  { server: 'Microsoft 365', ...ehlo('421 4.3.2 Service not available, closing transmission channel'), kind: 'unreachable', why: 'a 421 to EHLO ends the session' },
  { server: 'Postfix', ...serverClosing('421 4.4.2 mx.example.org Error: timeout exceeded'), kind: 'unreachable', why: 'the server hung up mid-session' },
  { server: 'Postfix', ...auth('535 5.7.8 Error: authentication failed: authentication failure'), kind: 'refused', why: 'bad credentials refuse us' },
  {
    server: 'Gmail',
    ...auth('535-5.7.8 Username and Password not accepted. For more information, go to\n535 5.7.8  https://support.google.com/mail/?p=BadCredentials ' + GMAIL_ID, 'LOGIN'),
    kind: 'refused',
    why: 'bad credentials refuse us',
  },
  {
    server: 'Microsoft 365',
    ...auth('535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.', 'LOGIN'),
    kind: 'refused',
    why: 'a 5xx to AUTH refuses us',
  },
  { server: 'Amazon SES', ...auth('535 Authentication Credentials Invalid'), kind: 'refused', why: 'a 5xx to AUTH refuses us' },
  { server: 'Postfix', ...auth('454 4.7.0 Temporary authentication failure'), kind: 'unreachable', why: 'a 4xx to AUTH: the session is unusable for now' },
  { server: 'local', ...systemError('ESOCKET', 'connect ECONNREFUSED 203.0.113.7:587', 'ECONNREFUSED'), kind: 'unreachable', why: 'nothing listens' },
  { server: 'local', ...systemError('ECONNECTION', 'connect EHOSTUNREACH 203.0.113.7:587', 'EHOSTUNREACH'), kind: 'unreachable', why: 'no route to the server' },
  { server: 'local', ...systemError('ESOCKET', 'read ECONNRESET', 'ECONNRESET'), kind: 'unreachable', why: 'the connection was reset' },
  { server: 'local', ...systemError('EDNS', 'getaddrinfo ENOTFOUND smtp.example.net', 'ENOTFOUND'), kind: 'unreachable', why: 'the server\u2019s name does not resolve' },
  {
    server: 'local',
    error: formatError(Object.assign(new Error('Connection timeout'), { timeoutType: 'CONNECT_TIMEOUT' }), 'ETIMEDOUT', false, 'CONN'),
    stage: 'connection',
    kind: 'unreachable',
    why: 'the connection timed out',
  },
  {
    server: 'local',
    error: formatError(Object.assign(new Error('Timeout'), { timeoutType: 'SOCKET_TIMEOUT' }), 'ETIMEDOUT', false, 'CONN'),
    stage: 'connection',
    kind: 'unreachable',
    why: 'the server went silent',
  },
  {
    server: 'local',
    error: formatError(new Error('Error initiating TLS - self-signed certificate'), 'ETLS', false, 'CONN'),
    stage: 'connection',
    kind: 'unreachable',
    why: 'no TLS session',
  },
  {
    server: 'Postfix',
    error: formatError(new Error('Error upgrading connection with STARTTLS'), 'ETLS', '454 4.7.0 TLS not available due to local problem', 'STARTTLS'),
    stage: 'STARTTLS',
    kind: 'unreachable',
    why: 'a 4xx to STARTTLS: no usable session for now',
  },
  {
    server: 'local',
    error: formatError(new Error('Connection closed unexpectedly'), 'ECONNECTION', false, 'CONN'),
    stage: 'connection',
    kind: 'unreachable',
    why: 'the server dropped the connection',
  },
  {
    server: 'local',
    error: formatError(new Error('Connection closed unexpectedly'), 'ETLS', false, 'CONN'),
    stage: 'connection',
    kind: 'unreachable',
    why: 'the connection dropped during the TLS upgrade',
  },
  {
    server: 'nodemailer',
    ...local('Invalid recipient "bob@example.org\\r\\nRCPT TO:<mallory@example.org>"', 'EENVELOPE', 'API'),
    kind: 'recipient-permanent',
    why: 'an address nodemailer cannot put in an envelope is the recipient\u2019s',
  },
  {
    server: 'nodemailer',
    ...local('Invalid sender "News <news@gazette.example.org>"', 'EENVELOPE', 'API'),
    kind: 'refused',
    why: 'our own sender is unusable: every message would fail alike',
  },
  {
    // nodemailer reports its SIZE check with command MAIL FROM (smtp-connection send()), not API.
    server: 'nodemailer',
    ...local('Message size larger than allowed 1000', 'EMESSAGE', 'MAIL FROM'),
    kind: 'refused',
    why: 'our message is over the SIZE the server announced',
  },
  {
    server: 'nodemailer',
    ...local('Message size larger than allowed 1000', 'EMESSAGE', 'API'),
    kind: 'refused',
    why: 'the same refusal, reported without a command',
  },
];

describe('classifySmtpFailure', () => {
  describe.each([
    ['MAIL FROM refused', MAIL_FROM],
    ['RCPT TO refused', RCPT],
    ['DATA and the reply after the message', AFTER_DATA],
    ['the session (connect, greeting, TLS, AUTH) and nodemailer itself', SESSION],
  ])('%s', (_title, rows) => {
    it.each(rows.map((row) => [`${row.server} at ${row.stage}: ${row.kind}, since ${row.why}`, row] as const))('%s', (_title, row) => {
      const fault = classifySmtpFailure(row.error);
      expect(fault).toBeInstanceOf(DeliveryFault);
      expect(fault.kind, `${row.error.response ?? row.error.message}`).toBe(row.kind);
      expect(fault.code).toBe(`DELIVERY_${row.kind.toUpperCase().replace(/-/g, '_')}`);
      expect(fault.cause).toBe(row.error);

      const says = row.error.code === 'EAUTH' ? 'SMTP authentication failed' : SAYS[row.kind];
      expect(fault.message.startsWith(`${says} (${row.stage}): `), fault.message).toBe(true);
      if (row.error.response) {
        // The server's own words, as it said them: in the message and kept as the reply.
        expect(fault.reply).toBe(row.error.response.trim());
        expect(fault.message).toContain(row.error.response.trim());
      } else {
        // No reply: what went wrong locally (the system code where there is one) stands in for it.
        const what = row.error.originalCode ?? row.error.code ?? '';
        expect(fault.message).toContain(what);
        expect(fault.message).toContain(row.error.message);
        expect(fault.reply).toContain(what);
        expect(fault.reply).toContain(row.error.message);
      }
    });
  });

  it('reads a plain object with only the fields it declares', () => {
    const fault = classifySmtpFailure({ responseCode: 550, command: 'RCPT TO', response: '550 5.1.1 <bob@example.org>: User unknown' });
    expect(fault.kind).toBe('recipient-permanent');
    expect(fault.message).toBe('recipient refused (RCPT TO): 550 5.1.1 <bob@example.org>: User unknown');
  });

  it('says something useful about an error with no fields at all', () => {
    const fault = classifySmtpFailure({});
    expect(fault.kind).toBe('unreachable');
    expect(fault.message).toBe('no SMTP session (SMTP): error: unknown SMTP error');
  });

  it('names the system error of a refused connection, not only the wrapper code', () => {
    const { error } = systemError('ESOCKET', 'connect ECONNREFUSED 203.0.113.7:587', 'ECONNREFUSED');
    const fault = classifySmtpFailure(error);
    expect(fault.message).toBe('no SMTP session (connection): ECONNREFUSED: connect ECONNREFUSED 203.0.113.7:587');
    expect(fault.reply).toBe('ECONNREFUSED: connect ECONNREFUSED 203.0.113.7:587');
  });

  describe('replies that were once misread', () => {
    it('a 550 at RCPT with a 5.5.0 protocol code (Outlook.com\u2019s "mailbox unavailable") is the recipient\u2019s', () => {
      const fault = classifySmtpFailure(rcpt(
          '550 5.5.0 Requested action not taken: mailbox unavailable (S2017062302). [HE1EUR01FT020.eop-EUR01.prod.protection.outlook.com 2023-09-19T15:05:34.324Z 08DBB71928CA8F8E]',
        ).error);
      expect(fault.kind).toBe('recipient-permanent');
    });

    it('an IP address quoted in a reply is not read as an enhanced status code', () => {
      const kindFor = (ip: string) => classifySmtpFailure(rcpt(`554 Blocked - see https://ipcheck.proofpoint.com/?ip=${ip}`).error).kind;
      expect(kindFor('52.4.1.9')).toBe(kindFor('203.0.113.9'));
    });

    it('Microsoft 365\u2019s SendAsDenied after DATA is the server refusing our sender, not the recipient', () => {
      const reply =
        '554 5.2.252 SendAsDenied; news@gazette.example.org not allowed to send as editor@gazette.example.org; STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; Failed to process message due to a permanent exception with message Cannot submit message.';
      expect(classifySmtpFailure(afterMessage(reply).error).kind).toBe('refused');
    });
  });
});
