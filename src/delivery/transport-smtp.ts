import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { parseConnectionUrl } from 'nodemailer/lib/shared';
import { PermanentDeliveryError, TemporaryDeliveryError, TransportRejectedError } from '../errors.ts';
import type { OutgoingMessage, Transport } from './transport.ts';

/** SMTP settings beyond the URL. */
export interface SmtpOptions {
  /** Connections kept open (messages in flight at once). */
  maxConnections: number;
  /** Socket timeout in milliseconds. */
  timeoutMs?: number;
}

interface SmtpFailure {
  code?: string;
  responseCode?: number;
  command?: string;
  response?: string;
  message?: string;
}

interface PooledConnection {
  smtp: SMTPConnection;
  ready: Promise<void>;
  broken: boolean;
}

/**
 * Sends through SMTP_URL on a pool of nodemailer SMTPConnections. Messages arrive already
 * built (and signed), so they go straight to the connection — no per-message MIME
 * composition — and each connection pipelines its envelope (RFC 2920) when the server allows.
 */
export function createSmtpTransport(url: string, options: SmtpOptions): Transport {
  const settings = parseConnectionUrl(url);
  const auth = settings.auth as { user?: string; pass?: string } | undefined;
  const idle: PooledConnection[] = [];
  const waiting: ((connection: PooledConnection) => void)[] = [];
  let open = 0;
  let closed = false;

  const connect = (): PooledConnection => {
    const smtp = new SMTPConnection({
      host: settings.host as string | undefined,
      port: settings.port as number | undefined,
      secure: settings.secure as boolean | undefined,
      ignoreTLS: settings.ignoreTLS as boolean | undefined,
      requireTLS: settings.requireTLS as boolean | undefined,
      tls: settings.tls as SMTPConnection.Options['tls'],
      connectionTimeout: options.timeoutMs ?? 30_000,
      greetingTimeout: options.timeoutMs ?? 30_000,
      socketTimeout: options.timeoutMs ?? 60_000,
    });
    const connection: PooledConnection = { smtp, broken: false, ready: Promise.resolve() };
    smtp.on('error', () => (connection.broken = true));
    smtp.on('end', () => (connection.broken = true));
    connection.ready = new Promise<void>((resolve, reject) => {
      smtp.connect((error?: Error | null) => {
        if (error) return reject(error);
        if (!auth?.user) return resolve();
        smtp.login({ user: auth.user, pass: auth.pass ?? '' }, (loginError) => (loginError ? reject(loginError) : resolve()));
      });
      smtp.once('error', reject);
    });
    return connection;
  };

  const acquire = async (): Promise<PooledConnection> => {
    for (;;) {
      const connection = idle.pop();
      if (connection && !connection.broken) return connection;
      if (connection) {
        drop(connection);
        continue;
      }
      if (open < options.maxConnections) {
        open++;
        return connect();
      }
      return new Promise((resolve) => waiting.push(resolve));
    }
  };

  const release = (connection: PooledConnection) => {
    const next = waiting.shift();
    if (next) next(connection);
    else idle.push(connection);
  };

  // A connection that failed is closed, not reused: its session state is unknown.
  const drop = (connection: PooledConnection) => {
    connection.broken = true;
    connection.smtp.close();
    open--;
    const next = waiting.shift();
    if (next && !closed) {
      open++;
      next(connect());
    }
  };

  return {
    name: 'smtp',
    async send(message: OutgoingMessage) {
      if (closed) throw new TemporaryDeliveryError('the SMTP transport is closed');
      const connection = await acquire();
      try {
        await connection.ready;
        await new Promise<void>((resolve, reject) =>
          connection.smtp.send({ from: message.envelopeFrom, to: [message.to] }, message.raw, (error) => (error ? reject(error) : resolve())),
        );
      } catch (error) {
        drop(connection);
        throw classifySmtpError(error as SmtpFailure);
      }
      release(connection);
    },
    async close() {
      closed = true;
      for (const connection of idle.splice(0)) connection.smtp.quit();
    },
  };
}

/** Translates a nodemailer SMTP error into the app's delivery errors. */
export function classifySmtpError(error: SmtpFailure): Error {
  const reply = (error.response ?? error.message ?? 'unknown SMTP error').trim();
  const code = error.responseCode;
  const command = (error.command ?? '').toUpperCase();
  if (error.code === 'EAUTH') return new TransportRejectedError(`SMTP authentication failed: ${reply}`, { cause: error });
  if (code !== undefined && code >= 500) {
    if (command.startsWith('RCPT') || command.startsWith('DATA') || error.code === 'EENVELOPE' || error.code === 'EMESSAGE') {
      return new PermanentDeliveryError(`recipient refused (${code}): ${reply}`, { cause: error });
    }
    return new TransportRejectedError(`SMTP server refused ${command || 'the session'} (${code}): ${reply}`, { cause: error });
  }
  return new TemporaryDeliveryError(code ? `temporary failure (${code}): ${reply}` : `connection problem (${error.code ?? 'unknown'}): ${reply}`, {
    cause: error,
  });
}
