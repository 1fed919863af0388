import { Socket } from 'node:net';
import type SMTPConnection from 'nodemailer/lib/smtp-connection';
import { ReplyReader, ReplyTooLarge } from './smtp-reply-reader.ts';
import type { SmtpFailure } from './smtp-fault.ts';

/**
 * The fast data path: once nodemailer has set a session up (greeting, EHLO, STARTTLS, AUTH),
 * each transaction goes out on that session's socket as two writes, the pipelined envelope
 * (RFC 2920: MAIL FROM, RCPT TO and DATA at once) and then the whole dot-stuffed message,
 * instead of through nodemailer's DataStream, which re-encodes every message byte by byte in
 * JavaScript (half the worker's CPU per message in a profile).
 *
 * What goes on the wire, and every error a reply or a dropped connection gives, is what
 * nodemailer's SMTPConnection.send gives for the same envelope and message (tests pin both),
 * so smtp-fault.ts classifies the two paths alike.
 */

/** An SMTP failure shaped as nodemailer's `_formatError` shapes it: the fields smtp-fault.ts reads. */
export type SmtpError = Error & SmtpFailure;

/**
 * Builds an error as nodemailer's SMTPConnection#_formatError does: `code` is the type (a system
 * error's own code kept as `originalCode`), the reply is appended to the message and kept as
 * `response`, with its number as `responseCode`, and `command` names the step.
 */
export function smtpError(message: string | Error, type: string, response: string | false, command: string): SmtpError {
  const error: SmtpError = message instanceof Error ? message : new Error(message);
  if (error.code && error.code !== type && !error.originalCode) error.originalCode = error.code;
  error.code = type;
  if (response) {
    error.response = response;
    error.message += `: ${response}`;
    const code = Number(/^\d+/.exec(response)?.[0]);
    if (code) error.responseCode = code;
  }
  error.command = command;
  return error;
}

// nodemailer's tests of an address (smtp-connection _setEnvelope), kept identical so the same
// envelopes are refused and the same ones ask for SMTPUTF8.
const UNSAFE_ADDRESS = /[\r\n<>]/;
const NON_ASCII = /[\x80-\uFFFF]/;
// nodemailer's reading of the EHLO reply (smtp-connection _parseEhloExtensions).
const PIPELINING = /[ -]PIPELINING\b/im;
const SMTPUTF8 = /[ -]SMTPUTF8\b/im;

/**
 * The DATA section for `raw` as nodemailer's DataStream writes it: bare CR and bare LF become
 * CRLF (a lone CR before a dot would otherwise end the data for a receiver that reads CR as a
 * line end: SMTP smuggling), a dot that starts a line is doubled (RFC 5321 4.5.2), and the
 * terminating `.` line follows, after a CRLF unless the message already ends with one.
 * Native string scans over the whole message, never a loop over its bytes.
 */
export function dataSection(raw: string, canonical = false): string {
  // A canonical message (Gazette's own builder) has CRLF line ends only: nothing to normalize.
  let text = canonical || crlfOnly(raw) ? raw : raw.replace(/\r\n|\r|\n/g, '\r\n');
  if (text.includes('\r\n.')) text = text.replaceAll('\r\n.', '\r\n..');
  if (text.charCodeAt(0) === 0x2e) text = `.${text}`;
  return text.endsWith('\n') ? `${text}.\r\n` : `${text}\r\n.\r\n`;
}

/** Whether every line break is CRLF: native scans from break to break, far cheaper than a lookbehind regex over 40 KB. */
export function crlfOnly(text: string): boolean {
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) if (i === 0 || text.charCodeAt(i - 1) !== 13) return false;
  for (let i = text.indexOf('\r'); i !== -1; i = text.indexOf('\r', i + 1)) if (text.charCodeAt(i + 1) !== 10) return false;
  return true;
}

/**
 * Where a session stands between transactions:
 * - `ready`: in step with the server, no transaction open;
 * - `busy`: a transaction is on the wire;
 * - `needs-reset`: the last transaction failed cleanly (every reply read): RSET before reuse;
 * - `dead`: closed, or out of step with the server: never reused.
 */
export type SessionState = 'ready' | 'busy' | 'needs-reset' | 'dead';

interface Waiter {
  resolve: (reply: string) => void;
  reject: (error: SmtpError) => void;
}

/** One SMTP session taken over from nodemailer, sending pipelined transactions itself. */
export class PipelinedSession {
  state: SessionState = 'ready';
  private readonly reader: ReplyReader;
  // Replies that came before they were asked for (several in one packet).
  private readonly replies: string[] = [];
  private waiter: Waiter | undefined;
  // Why the connection ended, for whoever asks for a reply after that.
  private failure: SmtpError | undefined;

  constructor(
    private readonly socket: Socket,
    private readonly options: {
      /** The server advertised SMTPUTF8. */
      smtpUtf8: boolean;
      /** Ends the connection (nodemailer's close: the socket ended, destroyed after a grace period). */
      close: () => void;
      /** Told once, when the session dies. */
      onDead: () => void;
      maxReplyBytes?: number;
    },
  ) {
    this.reader = new ReplyReader(options.maxReplyBytes);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    // The errors nodemailer would report for the same socket events (smtp-connection _onError, _onTimeout, _onClose).
    socket.on('error', (error: Error) => this.closed(smtpError(error, 'ESOCKET', false, 'CONN')));
    socket.on('timeout', () => this.closed(smtpError(Object.assign(new Error('Timeout'), { timeoutType: 'SOCKET_TIMEOUT' }), 'ETIMEDOUT', false, 'CONN')));
    socket.on('close', () => {
      // A reply the close cut off still names the failure when it reads like one (a 421 without its line end).
      const cut = this.reader.unterminated();
      this.die(smtpError(new Error('Connection closed unexpectedly'), 'ECONNECTION', /^[45]\d{2}[ -]/.test(cut) ? cut : false, 'CONN'));
    });
  }

  /**
   * Sends one message: the envelope and DATA in one write, the message in another once the
   * server said 354. Rejects with a nodemailer-shaped SmtpError; `state` then says whether the
   * session can be reset and reused (`needs-reset`) or is gone (`dead`).
   */
  async send(from: string, to: string, raw: string, canonical = false): Promise<void> {
    if (this.state !== 'ready') throw smtpError(`Cannot send message - the session is ${this.state}`, 'ECONNECTION', false, 'API');
    // Ended on our side or the server's (its FIN seen, the close not yet): nodemailer's words for it.
    if (!this.isOpen()) throw this.closed(smtpError('Cannot send message - smtp connection socket is already half-closed.', 'ECONNECTION', false, 'API'));
    // Refused before a byte is sent, with nodemailer's words: the session stays ready.
    if (!raw) throw smtpError('Empty message', 'EMESSAGE', false, 'API');
    const sender = from.trim();
    const recipient = to.trim();
    if (sender && UNSAFE_ADDRESS.test(sender)) throw smtpError(`Invalid sender ${JSON.stringify(sender)}`, 'EENVELOPE', false, 'API');
    if (!recipient || UNSAFE_ADDRESS.test(recipient)) throw smtpError(`Invalid recipient ${JSON.stringify(recipient)}`, 'EENVELOPE', false, 'API');
    const smtpUtf8 = this.options.smtpUtf8 && (NON_ASCII.test(sender) || NON_ASCII.test(recipient));
    const data = dataSection(raw, canonical);

    this.state = 'busy';
    this.socket.write(`MAIL FROM:<${sender}>${smtpUtf8 ? ' SMTPUTF8' : ''}\r\nRCPT TO:<${recipient}>\r\nDATA\r\n`);

    const mail = await this.reply();
    const mailError = mail.startsWith('2')
      ? undefined
      : smtpError(smtpUtf8 && /^550 /.test(mail) && NON_ASCII.test(sender) ? 'Internationalized mailbox name not allowed' : 'Mail command failed', 'EENVELOPE', mail, 'MAIL FROM');
    // 421: the server is closing; the replies to the rest of the batch will not come.
    if (mailError && closing(mail)) throw this.closed(mailError);

    const rcpt = await this.reply();
    if (closing(rcpt)) throw this.closed(mailError ?? smtpError('Server closed the connection', 'ECONNECTION', rcpt, 'CONN'));
    // Our only recipient refused: nodemailer reports it with the RCPT reply, as "all recipients were rejected".
    const envelopeError =
      mailError ?? (rcpt.startsWith('2') ? undefined : smtpError("Can't send mail - all recipients were rejected", 'EENVELOPE', rcpt, 'RCPT TO'));

    const dataReply = await this.reply();
    if (envelopeError) {
      if (closing(dataReply)) throw this.closed(envelopeError);
      if (dataReply.startsWith('3')) {
        // A server that refused our sender yet takes DATA cannot be trusted with anything more.
        if (mailError) throw this.closed(mailError);
        // RFC 2920 3.1: DATA was taken with no recipient accepted; end the empty message, then RSET.
        this.socket.write('.\r\n');
        const ended = await this.reply();
        if (closing(ended)) throw this.closed(envelopeError);
      }
      this.settle('needs-reset');
      throw envelopeError;
    }
    // nodemailer takes a 2xx to DATA as well as the 354 (some servers answer 250).
    if (!/^[23]/.test(dataReply)) {
      const error = smtpError('Data command failed', 'EENVELOPE', dataReply, 'DATA');
      if (closing(dataReply)) throw this.closed(error);
      this.settle('needs-reset');
      throw error;
    }

    // 7-bit ASCII is its own Latin-1: written as one-byte characters, a copy rather than UTF-8 encoding.
    this.socket.write(data, canonical ? 'latin1' : 'utf8');
    const final = await this.reply();
    if (!final.startsWith('2')) {
      const error = smtpError('Message failed', 'EMESSAGE', final, 'DATA');
      if (closing(final)) throw this.closed(error);
      this.settle('needs-reset');
      throw error;
    }
    this.settle('ready');
  }

  /** True while the session can take a transaction: alive, and the socket open both ways. */
  isOpen(): boolean {
    return this.state !== 'dead' && this.socket.writable && !this.socket.destroyed;
  }

  /** RSET after a failed transaction: the session is ready again, or dead with the reason. */
  async reset(): Promise<void> {
    if (this.state !== 'needs-reset') return;
    if (!this.isOpen()) throw this.closed(smtpError('Cannot reset - smtp connection socket is already half-closed.', 'ECONNECTION', false, 'API'));
    this.state = 'busy';
    this.socket.write('RSET\r\n');
    const reply = await this.reply();
    if (!reply.startsWith('2')) throw this.closed(smtpError(`Could not reset session state. response=${reply}`, 'EPROTOCOL', reply, 'RSET'));
    this.settle('ready');
  }

  /** QUIT, then our end of the connection: the server's 221 is not waited for. */
  quit(): void {
    if (this.state === 'dead') return;
    this.socket.write('QUIT\r\n');
    this.closed(smtpError('Connection closed', 'ECONNECTION', false, 'CONN'));
  }

  /**
   * Ends a transaction whose every reply was read. A reply left over (a server answering more
   * than it was asked) would be taken for the next command's: out of step, so the session dies.
   * The transaction's own outcome stands either way.
   */
  private settle(state: 'ready' | 'needs-reset'): void {
    if (this.state === 'dead') return;
    const extra = this.replies[0];
    if (extra !== undefined) this.closed(smtpError(new Error('Unexpected Response'), 'EPROTOCOL', extra, 'CONN'));
    else this.state = state;
  }

  private reply(): Promise<string> {
    const queued = this.replies.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<string>((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  private onData(chunk: Buffer): void {
    if (this.state === 'dead') return;
    let replies: string[];
    try {
      replies = this.reader.push(chunk);
    } catch (error) {
      if (!(error instanceof ReplyTooLarge)) throw error;
      this.closed(smtpError(error, 'EPROTOCOL', false, 'CONN'));
      return;
    }
    for (const reply of replies) {
      if (this.state !== 'busy') {
        // Nothing was asked: a 421 ending an idle session, or a server out of step. Either way not reusable.
        this.closed(smtpError(new Error('Unexpected Response'), 'EPROTOCOL', reply, 'CONN'));
        return;
      }
      const waiter = this.waiter;
      this.waiter = undefined;
      if (waiter) waiter.resolve(reply);
      else this.replies.push(reply);
    }
  }

  /** Marks the session dead, fails whoever waits for a reply with `error`, closes the connection; returns `error`. */
  private closed(error: SmtpError): SmtpError {
    this.die(error);
    this.options.close();
    return error;
  }

  private die(error: SmtpError): void {
    if (!this.failure) this.failure = error;
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.reject(this.failure);
    if (this.state === 'dead') return;
    this.state = 'dead';
    this.replies.length = 0;
    this.options.onDead();
  }
}

/**
 * Takes a session nodemailer has just made ready (connected, TLS, authenticated) for the fast
 * path, when the server advertised PIPELINING in `ehlo` (its reply to the last EHLO). Returns
 * undefined, leaving the session to nodemailer, when it did not, or when the connection is not
 * what the takeover expects (a nodemailer change, an odd socket): slower then, never wrong.
 *
 * From here nodemailer no longer reads the socket: its reply reader would take our replies for
 * unexpected ones. Its close, end, error and timeout handlers stay, and act as they do on an
 * idle session (close it, emit 'error' or 'end'), which is what the pool listens to.
 */
export function takeOverSession(smtp: SMTPConnection, ehlo: string | false, onDead: () => void): PipelinedSession | undefined {
  if (typeof ehlo !== 'string' || !/^2\d\d[ -]/.test(ehlo) || !PIPELINING.test(ehlo)) return undefined;
  const socket = smtp._socket;
  if (!(socket instanceof Socket) || smtp.destroyed || socket.destroyed || !socket.writable || socket.listenerCount('data') !== 1) return undefined;
  socket.removeAllListeners('data');
  return new PipelinedSession(socket, { smtpUtf8: SMTPUTF8.test(ehlo), close: () => smtp.close(), onDead });
}

const closing = (reply: string) => /^421[ -]/.test(reply);
