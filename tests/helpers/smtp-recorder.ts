import type { AddressInfo } from 'node:net';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer, type SMTPServerAuthentication, type SMTPServerSession } from 'smtp-server';

/**
 * What the recorder answers to one attempt at one recipient:
 * - `'accept'`: 250 to RCPT TO and to the message;
 * - `{ code, message, at: 'rcpt' }`: the RCPT TO is refused with that code (421 also closes the connection);
 * - `{ code, message, at: 'data' }`: the RCPT TO is taken, the message itself refused at the end of DATA;
 * - `'drop'`: the socket is destroyed at RCPT TO, with no reply at all.
 */
export type SmtpResponse = 'accept' | 'drop' | { code: number; message?: string; at: 'rcpt' | 'data' };

/** Decides the answer to the `attempt`-th RCPT TO (1-based) naming `rcpt` (lower-cased). */
export type SmtpBehaviour = (rcpt: string, attempt: number) => SmtpResponse;

/** A message the recorder accepted. */
export interface RecordedMessage {
  /** Envelope recipients (RCPT TO), lower-cased. */
  rcpt: string[];
  /** Envelope sender (MAIL FROM). */
  from: string;
  /** The message exactly as received (dot-unstuffed). */
  raw: string;
  /** mailparser's reading of it; undefined when the recorder was made with `parse: false`. */
  parsed: ParsedMail | undefined;
  /** Which attempt at this recipient it was (1-based). */
  attempt: number;
  receivedAt: number;
}

/** One RCPT TO seen, and how it ended. */
export interface RecordedAttempt {
  rcpt: string;
  attempt: number;
  outcome: 'accepted' | 'refused-rcpt' | 'refused-data' | 'dropped' | 'pending';
  code?: number;
}

export interface SmtpRecorderOptions {
  /** Per recipient and attempt; default: accept everything. */
  behaviour?: SmtpBehaviour;
  /**
   * Require AUTH: with `{ user, pass }` only those credentials pass; with `'reject'` every
   * attempt gets 535. Unset: no AUTH needed (authOptional).
   */
  auth?: { user: string; pass: string } | 'reject';
  /** Parse each accepted message with mailparser (default true; turn off for thousands of messages). */
  parse?: boolean;
  /** Called synchronously as each message is accepted, with the number accepted so far. */
  onMessage?: (message: RecordedMessage, count: number) => void;
  /** Refuses MAIL FROM with this reply when it returns one (a relay that refuses our sender). */
  mailFrom?: (address: string) => { code: number; message: string } | undefined;
  /** Answers the connection with this reply instead of the 220 greeting (554: go away; 421: busy), then closes. */
  greeting?: () => { code: number; message: string } | undefined;
  /** Port to listen on (0, the default: any free one); a restarted server takes its old port back. */
  port?: number;
  /** Milliseconds to wait before answering a RCPT TO (a slow or stuck server). */
  rcptDelayMs?: (rcpt: string, attempt: number) => number;
}

export interface SmtpRecorder {
  port: number;
  /** `smtp://127.0.0.1:PORT` (no credentials). */
  url: string;
  /** Accepted messages, in order of acceptance. */
  messages: RecordedMessage[];
  /** Every RCPT TO seen, accepted or not. */
  attempts: RecordedAttempt[];
  /** AUTH attempts seen (each refused one with 535 when auth is 'reject'). */
  authAttempts: number;
  /** Accepted messages grouped by (lower-cased) recipient. */
  byRecipient(): Map<string, RecordedMessage[]>;
  /** How many RCPT TO named this recipient. */
  attemptsFor(rcpt: string): number;
  /** Resolves once `count` messages were accepted; rejects after `timeoutMs`. */
  waitForMessages(count: number, timeoutMs?: number): Promise<void>;
  /** Stops listening and drops every open connection. */
  close(): Promise<void>;
}

interface Pending {
  rcpt: string;
  attempt: number;
  response: SmtpResponse;
  record: RecordedAttempt;
}

/** Starts an SMTP server on 127.0.0.1 (random port) that records what it is sent and answers as told. */
export async function startSmtpRecorder(options: SmtpRecorderOptions = {}): Promise<SmtpRecorder> {
  const behaviour = options.behaviour ?? (() => 'accept');
  const parse = options.parse ?? true;
  const messages: RecordedMessage[] = [];
  const attempts: RecordedAttempt[] = [];
  const attemptCounts = new Map<string, number>();
  // The current transaction's recipients per connection (the worker sends one recipient per message).
  const pending = new Map<string, Pending[]>();
  const waiters: { count: number; resolve: () => void }[] = [];
  let authAttempts = 0;

  const smtpError = (code: number, message: string): Error & { responseCode: number } =>
    Object.assign(new Error(message), { responseCode: code });

  const dropConnection = (session: SMTPServerSession) => {
    for (const connection of server.connections) {
      if (connection.session?.id === session.id || connection.id === session.id) connection._socket.destroy();
    }
  };

  const server = new SMTPServer({
    logger: false,
    disabledCommands: ['STARTTLS'],
    authOptional: options.auth === undefined,
    allowInsecureAuth: true,
    authMethods: ['PLAIN', 'LOGIN'],
    size: 50 * 1024 * 1024,
    maxClients: 1000,
    onAuth(auth: SMTPServerAuthentication, _session, callback) {
      authAttempts++;
      const wanted = options.auth;
      if (wanted && wanted !== 'reject' && auth.username === wanted.user && auth.password === wanted.pass) {
        callback(null, { user: auth.username });
        return;
      }
      callback(smtpError(535, 'Authentication credentials invalid'));
    },
    onConnect(_session, callback) {
      const refusal = options.greeting?.();
      if (refusal) callback(smtpError(refusal.code, refusal.message));
      else callback();
    },
    onMailFrom(address, session, callback) {
      pending.set(session.id, []);
      const refusal = options.mailFrom?.(address.address);
      if (refusal) callback(smtpError(refusal.code, refusal.message));
      else callback();
    },
    onRcptTo(address, session, callback) {
      const rcpt = address.address.toLowerCase();
      const attempt = (attemptCounts.get(rcpt) ?? 0) + 1;
      attemptCounts.set(rcpt, attempt);
      const response = behaviour(rcpt, attempt);
      const record: RecordedAttempt = { rcpt, attempt, outcome: 'pending' };
      attempts.push(record);
      const delay = options.rcptDelayMs?.(rcpt, attempt) ?? 0;
      if (delay > 0) {
        setTimeout(() => answerRcpt(session, rcpt, attempt, response, record, callback), delay);
        return;
      }
      answerRcpt(session, rcpt, attempt, response, record, callback);
    },
    onData(stream, session, callback) {
      dataHandler(stream, session, callback);
    },
  });

  function answerRcpt(session: SMTPServerSession, rcpt: string, attempt: number, response: SmtpResponse, record: RecordedAttempt, callback: (error?: Error | null) => void): void {
      if (response === 'drop') {
        record.outcome = 'dropped';
        dropConnection(session);
        return; // no reply: the client sees the connection vanish
      }
      if (typeof response === 'object' && response.at === 'rcpt') {
        record.outcome = 'refused-rcpt';
        record.code = response.code;
        callback(smtpError(response.code, response.message ?? `refused by the test server (${response.code})`));
        return;
      }
      const list = pending.get(session.id) ?? [];
      list.push({ rcpt, attempt, response, record });
      pending.set(session.id, list);
      callback();
  }

  function dataHandler(stream: NodeJS.ReadableStream, session: SMTPServerSession, callback: (error?: Error | null, message?: string) => void): void {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('error', (error) => callback(error));
      stream.on('end', () => {
        void (async () => {
          const current = pending.get(session.id) ?? [];
          pending.delete(session.id);
          const refusal = current.find((p) => typeof p.response === 'object');
          if (refusal && typeof refusal.response === 'object') {
            for (const p of current) {
              p.record.outcome = 'refused-data';
              p.record.code = refusal.response.code;
            }
            callback(smtpError(refusal.response.code, refusal.response.message ?? `refused by the test server (${refusal.response.code})`));
            return;
          }
          const raw = Buffer.concat(chunks).toString('utf8');
          let parsed: ParsedMail | undefined;
          try {
            parsed = parse ? await simpleParser(raw) : undefined;
          } catch (error) {
            callback(smtpError(554, `unparseable message: ${(error as Error).message}`));
            return;
          }
          const envelopeFrom = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
          const message: RecordedMessage = {
            rcpt: current.map((p) => p.rcpt),
            from: envelopeFrom,
            raw,
            parsed,
            attempt: current[0]?.attempt ?? 0,
            receivedAt: Date.now(),
          };
          for (const p of current) p.record.outcome = 'accepted';
          messages.push(message);
          options.onMessage?.(message, messages.length);
          for (const waiter of waiters.splice(0)) {
            if (messages.length >= waiter.count) waiter.resolve();
            else waiters.push(waiter);
          }
          callback(null, 'OK: recorded');
        })();
      });
  }
  server.on('error', () => {
    // A client vanishing mid-command (a killed worker, a dropped socket) is expected here.
  });

  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;

  return {
    port,
    url: `smtp://127.0.0.1:${port}`,
    messages,
    attempts,
    get authAttempts() {
      return authAttempts;
    },
    byRecipient() {
      const map = new Map<string, RecordedMessage[]>();
      for (const message of messages) {
        for (const rcpt of message.rcpt) {
          const list = map.get(rcpt) ?? [];
          list.push(message);
          map.set(rcpt, list);
        }
      }
      return map;
    },
    attemptsFor(rcpt: string) {
      return attemptCounts.get(rcpt.toLowerCase()) ?? 0;
    },
    waitForMessages(count: number, timeoutMs = 30_000) {
      if (messages.length >= count) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`waited ${timeoutMs} ms for ${count} messages, got ${messages.length}`)), timeoutMs);
        waiters.push({
          count,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      });
    },
    close() {
      for (const connection of server.connections) connection._socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
