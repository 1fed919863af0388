import type { ConnectionOptions } from 'node:tls';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { parseConnectionUrl } from 'nodemailer/lib/shared';
import { DeliveryFault } from '../errors.ts';
import { classifySmtpFailure, type SmtpFailure } from './smtp-fault.ts';
import { takeOverSession, type PipelinedSession } from './smtp-pipeline.ts';
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
  /**
   * Send each transaction on the session's socket directly when the server advertises
   * PIPELINING (see smtp-pipeline.ts); default true. False leaves every transaction to
   * nodemailer's own data path, which sends the same bytes at several times the CPU: for
   * comparing the two.
   */
  pipelinedDataPath?: boolean;
  /** TLS options laid over the URL's `tls.*` parameters (a private CA for an in-house relay, or a test's). */
  tls?: ConnectionOptions;
}

/** What an SMTP transport has done so far. */
export interface SmtpTransportStats {
  /** Sessions that became ready. */
  sessions: number;
  /** Of them, those the fast data path took over (the server pipelines). */
  pipelinedSessions: number;
  /** Messages the server accepted on the fast path, and on nodemailer's. */
  pipelinedMessages: number;
  nodemailerMessages: number;
  /** Failed transactions after which the session was reset (RSET) and reused, not dropped. */
  resets: number;
}

/** The SMTP transport, which also tells what it did (for tests, benchmarks and logs). */
export interface SmtpTransport extends Transport {
  stats(): SmtpTransportStats;
}

interface PooledConnection {
  smtp: SMTPConnection;
  ready: Promise<void>;
  /** The fast path's hold on the session, once ready on a server that pipelines. */
  pipeline: PipelinedSession | undefined;
  broken: boolean;
}

/**
 * Sends through SMTP_URL on a pool of SMTP sessions. nodemailer's SMTPConnection sets each one
 * up (connect, greeting, EHLO, STARTTLS, AUTH); then, where the server pipelines, each message
 * goes out on the session's socket as one pipelined envelope and one write of the dot-stuffed
 * message (smtp-pipeline.ts), and elsewhere through nodemailer's send. Messages arrive already
 * built (and signed), so there is no per-message MIME composition either way.
 */
export function createSmtpTransport(url: string, options: SmtpOptions): SmtpTransport {
  const settings = parseConnectionUrl(url);
  const auth = settings.auth as { user?: string; pass?: string } | undefined;
  const tls = options.tls ? { ...(settings.tls as ConnectionOptions | undefined), ...options.tls } : (settings.tls as ConnectionOptions | undefined);
  const usePipeline = options.pipelinedDataPath ?? true;
  const idle: PooledConnection[] = [];
  // Sends waiting for a connection; handed undefined when the transport closes under them.
  const waiting: ((connection: PooledConnection | undefined) => void)[] = [];
  const live = new Set<PooledConnection>();
  const stats: SmtpTransportStats = { sessions: 0, pipelinedSessions: 0, pipelinedMessages: 0, nodemailerMessages: 0, resets: 0 };
  let closed = false;

  const newConnection = () =>
    new SMTPConnection({
      host: settings.host as string | undefined,
      port: settings.port as number | undefined,
      secure: settings.secure as boolean | undefined,
      ignoreTLS: settings.ignoreTLS as boolean | undefined,
      requireTLS: settings.requireTLS as boolean | undefined,
      tls,
      connectionTimeout: options.timeoutMs ?? 30_000,
      greetingTimeout: options.timeoutMs ?? 30_000,
      socketTimeout: options.timeoutMs ?? 30_000,
    });
  const transactionTimeoutMs = options.transactionTimeoutMs ?? 30_000;

  /** Connects and, if the URL has credentials, logs in; resolves with the EHLO reply. */
  const openSession = (smtp: SMTPConnection) =>
    new Promise<string | false>((resolve, reject) => {
      smtp.connect((error?: Error | null) => {
        if (error) return reject(error);
        // Right after connect, nodemailer's last reply is the one to the last EHLO (after STARTTLS, the second).
        const ehlo = smtp.lastServerResponse;
        if (!auth?.user) return resolve(ehlo);
        smtp.login({ user: auth.user, pass: auth.pass ?? '' }, (loginError) => (loginError ? reject(loginError) : resolve(ehlo)));
      });
      smtp.once('error', reject);
    });

  const connect = (): PooledConnection => {
    const smtp = newConnection();
    const connection: PooledConnection = { smtp, broken: false, pipeline: undefined, ready: Promise.resolve() };
    live.add(connection);
    smtp.on('error', () => (connection.broken = true));
    smtp.on('end', () => (connection.broken = true));
    connection.ready = openSession(smtp).then((ehlo) => {
      stats.sessions++;
      // Taken over only now: AUTH ran on nodemailer's reply reader.
      if (usePipeline) connection.pipeline = takeOverSession(smtp, ehlo, () => (connection.broken = true));
      if (connection.pipeline) stats.pipelinedSessions++;
    });
    return connection;
  };

  const acquire = async (): Promise<PooledConnection> => {
    for (;;) {
      const connection = idle.pop();
      // A fast-path session the server ended while it sat idle is noticed here, before its close event.
      if (connection && !connection.broken && (!connection.pipeline || connection.pipeline.isOpen())) return connection;
      if (connection) {
        drop(connection);
        continue;
      }
      if (live.size < options.maxConnections) return connect();
      const handed = await new Promise<PooledConnection | undefined>((resolve) => waiting.push(resolve));
      if (!handed) throw new DeliveryFault('unreachable', 'the SMTP transport is closed');
      return handed;
    }
  };

  const release = (connection: PooledConnection) => {
    if (closed) return retire(connection);
    const next = waiting.shift();
    if (next) next(connection);
    else idle.push(connection);
  };

  // A connection that failed is closed, not reused: its session state is unknown.
  const drop = (connection: PooledConnection) => {
    connection.broken = true;
    connection.smtp.close();
    if (!live.delete(connection)) return;
    const next = waiting.shift();
    if (next && !closed) next(connect());
  };

  // Ends a connection that is in step with the server: QUIT, then close.
  const retire = (connection: PooledConnection) => {
    live.delete(connection);
    if (connection.pipeline) connection.pipeline.quit();
    else connection.smtp.quit();
  };

  /**
   * After a failed send: a fast-path session that read every reply is reset (RSET) and reused,
   * in the background so the send's fault is reported at once; any other is dropped.
   */
  const recover = (connection: PooledConnection) => {
    const pipeline = connection.pipeline;
    if (connection.broken || !pipeline) return drop(connection);
    if (pipeline.state === 'ready') return release(connection);
    if (pipeline.state !== 'needs-reset') return drop(connection);
    bounded(pipeline.reset(), transactionTimeoutMs, undefined, () => connection.smtp.close()).then(
      () => {
        stats.resets++;
        release(connection);
      },
      () => drop(connection),
    );
  };

  /** Sends one message on a ready session. */
  const transaction = async (connection: PooledConnection, message: OutgoingMessage): Promise<void> => {
    if (connection.pipeline) {
      await connection.pipeline.send(message.envelopeFrom, message.to, message.raw, message.canonical === true);
      stats.pipelinedMessages++;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      connection.smtp.send({ from: message.envelopeFrom, to: [message.to] }, message.raw, (error) => (error ? reject(error) : resolve()));
    });
    stats.nodemailerMessages++;
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
            await transaction(connection, message);
          })(),
          transactionTimeoutMs,
          signal,
          () => connection.smtp.close(),
        );
      } catch (error) {
        recover(connection);
        throw error instanceof DeliveryFault ? error : classifySmtpFailure(error as SmtpFailure);
      }
      release(connection);
    },
    async probe() {
      const smtp = newConnection();
      smtp.on('error', () => {});
      try {
        await bounded(
          openSession(smtp).then(() => undefined),
          transactionTimeoutMs,
          undefined,
          () => smtp.close(),
        );
        smtp.quit();
      } catch (error) {
        smtp.close();
        throw error instanceof DeliveryFault ? error : classifySmtpFailure(error as SmtpFailure);
      }
    },
    async close() {
      closed = true;
      for (const next of waiting.splice(0)) next(undefined);
      for (const connection of idle.splice(0)) {
        if (connection.broken) drop(connection);
        else retire(connection);
      }
    },
    stats: () => ({ ...stats }),
  };
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
    // Handled before anything can cut it short: a send cut before it began still fails, later, on the closed session.
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
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
