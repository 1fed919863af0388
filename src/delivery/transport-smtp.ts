import nodemailer from 'nodemailer';
import { PermanentDeliveryError, TemporaryDeliveryError, TransportRejectedError } from '../errors.ts';
import type { OutgoingMessage, Transport } from './transport.ts';

/** SMTP settings beyond the URL. */
export interface SmtpOptions {
  /** Connections kept open in the pool. */
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

/** Sends through SMTP_URL with nodemailer's pooled transport; raw messages, our own envelope. */
export function createSmtpTransport(url: string, options: SmtpOptions): Transport {
  const transporter = nodemailer.createTransport({
    url,
    pool: true,
    maxConnections: options.maxConnections,
    maxMessages: Infinity,
    // A message is sent once per attempt: the ledger decides retries, never the pool behind its back.
    maxRequeues: 0,
    connectionTimeout: options.timeoutMs ?? 30_000,
    socketTimeout: options.timeoutMs ?? 60_000,
    greetingTimeout: options.timeoutMs ?? 30_000,
  });
  return {
    name: 'smtp',
    async send(message: OutgoingMessage) {
      try {
        await transporter.sendMail({ envelope: { from: message.envelopeFrom, to: [message.to] }, raw: message.raw });
      } catch (error) {
        throw classifySmtpError(error as SmtpFailure);
      }
    },
    async close() {
      transporter.close();
    },
  };
}

/** Translates a nodemailer error into the app's delivery errors. */
export function classifySmtpError(error: SmtpFailure): Error {
  const reply = (error.response ?? error.message ?? 'unknown SMTP error').trim();
  const code = error.responseCode;
  const command = (error.command ?? '').toUpperCase();
  if (error.code === 'EAUTH') return new TransportRejectedError(`SMTP authentication failed: ${reply}`, { cause: error });
  if (code !== undefined && code >= 500) {
    if (command.startsWith('RCPT') || command === 'DATA' || command.startsWith('DATA')) {
      return new PermanentDeliveryError(`recipient refused (${code}): ${reply}`, { cause: error });
    }
    return new TransportRejectedError(`SMTP server refused ${command || 'the session'} (${code}): ${reply}`, { cause: error });
  }
  return new TemporaryDeliveryError(code ? `temporary failure (${code}): ${reply}` : `connection problem (${error.code ?? 'unknown'}): ${reply}`, {
    cause: error,
  });
}
