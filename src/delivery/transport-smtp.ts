import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { parseConnectionUrl } from 'nodemailer/lib/shared';
import { DeliveryFault } from '../errors.ts';
import { classifySmtpFailure, type SmtpFailure } from './smtp-fault.ts';
import type { OutgoingMessage, Transport } from './transport.ts';

/** SMTP settings beyond the URL. */
export interface SmtpOptions {
  /** Connections kept open (messages in flight at once). */
  maxConnections: number;
  /** Connect, greeting and socket timeout in milliseconds; default 30 s. */
  timeoutMs?: number;
  /**
   * Longest one message's transaction (MAIL FROM to the final reply) may take; past it the
   * connection is dropped. Kept well below the worker's lease, so a slow server can never make
   * a worker send on a lease that another worker has already taken over. Default 30 s.
   */
  transactionTimeoutMs?: number;
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

  const newConnection = () =>
    new SMTPConnection({
      host: settings.host as string | undefined,
      port: settings.port as number | undefined,
      secure: settings.secure as boolean | undefined,
      ignoreTLS: settings.ignoreTLS as boolean | undefined,
      requireTLS: settings.requireTLS as boolean | undefined,
      tls: settings.tls as SMTPConnection.Options['tls'],
      connectionTimeout: options.timeoutMs ?? 30_000,
      greetingTimeout: options.timeoutMs ?? 30_000,
      socketTimeout: options.timeoutMs ?? 30_000,
    });
  const transactionTimeoutMs = options.transactionTimeoutMs ?? 30_000;

  const connect = (): PooledConnection => {
    const smtp = newConnection();
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
    async send(message: OutgoingMessage, signal?: AbortSignal) {
      if (closed) throw new DeliveryFault('unreachable', 'the SMTP transport is closed');
      const connection = await acquire();
      try {
        // The cap covers all the server can hold us up with: a new session's greeting, EHLO, STARTTLS
        // and AUTH, then the transaction itself.
        await bounded(
          (async () => {
            await connection.ready;
            await transaction(connection.smtp, message);
          })(),
          transactionTimeoutMs,
          signal,
          () => connection.smtp.close(),
        );
      } catch (error) {
        drop(connection);
        throw error instanceof DeliveryFault ? error : classifySmtpFailure(error as SmtpFailure);
      }
      release(connection);
    },
    async probe() {
      const smtp = newConnection();
      smtp.on('error', () => {});
      try {
        const session = new Promise<void>((resolve, reject) => {
          smtp.connect((error?: Error | null) => {
            if (error) return reject(error);
            if (!auth?.user) return resolve();
            smtp.login({ user: auth.user, pass: auth.pass ?? '' }, (loginError) => (loginError ? reject(loginError) : resolve()));
          });
          smtp.once('error', reject);
        });
        await bounded(session, transactionTimeoutMs, undefined, () => smtp.close());
        smtp.quit();
      } catch (error) {
        smtp.close();
        throw error instanceof DeliveryFault ? error : classifySmtpFailure(error as SmtpFailure);
      }
    },
    async close() {
      closed = true;
      for (const connection of idle.splice(0)) connection.smtp.quit();
    },
  };
}

/** Sends one message on an open session. */
function transaction(smtp: SMTPConnection, message: OutgoingMessage): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    smtp.send({ from: message.envelopeFrom, to: [message.to] }, message.raw, (error) => (error ? reject(error) : resolve()));
  });
}

/** `work`, cut short after `ms` or when `signal` aborts: `cut` drops the session, and the send fails as unreachable. */
function bounded(work: Promise<void>, ms: number, signal: AbortSignal | undefined, cut: () => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const stop = (fault: DeliveryFault) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      cut();
      reject(fault);
    };
    const timer = setTimeout(
      () => stop(new DeliveryFault('unreachable', `no SMTP session: the server took more than ${Math.round(ms / 1000)} s to take one message; the connection was dropped`)),
      ms,
    );
    const onAbort = () => stop(new DeliveryFault('unreachable', 'not sent: its edition was paused while it was in flight'));
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    work.then(
      () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        resolve();
      },
      (error: unknown) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
