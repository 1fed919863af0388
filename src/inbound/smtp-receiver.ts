import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerDataStream } from 'smtp-server';
import type { InboundMailHandler } from './inbound-report.ts';

/** How the inbound receiver listens and whom it takes mail for. */
export interface InboundReceiverOptions {
  host: string;
  port: number;
  /** Largest message taken; a bigger one is refused with 552 and never read into memory whole. */
  maxBytes: number;
  /** PEM files for STARTTLS; without them STARTTLS is not offered. */
  tls?: { keyFile: string; certFile: string } | undefined;
  /** Whether RCPT TO may name this address (the bounce and unsubscribe addresses only). */
  accepts(address: string): boolean;
  handle: InboundMailHandler;
  log(line: string): void;
}

/** A running inbound receiver. */
export interface InboundReceiver {
  port: number;
  close(): Promise<void>;
}

/** Recipients one message may name: a report is for one of our addresses, a relay attempt names many. */
const MAX_RECIPIENTS = 10;

/** A temporary failure: the sending MTA keeps the report and tries again, so nothing is lost while the store is down. */
function tempFail(message: string): Error & { responseCode: number } {
  return Object.assign(new Error(message), { responseCode: 451 });
}

/**
 * The SMTP server bounces and unsubscribes by mail arrive at: it takes mail for the bounce and
 * unsubscribe addresses only (the rest is refused at RCPT), reads each message with its size
 * capped, and answers 250 only once the report is recorded (451 if the store failed).
 */
export async function startInboundReceiver(options: InboundReceiverOptions): Promise<InboundReceiver> {
  const tls = options.tls ? { key: await readFile(options.tls.keyFile), cert: await readFile(options.tls.certFile) } : undefined;
  const server = new SMTPServer({
    banner: 'Gazette inbound: bounces and unsubscribes only',
    size: options.maxBytes,
    rejectOversized: true,
    authOptional: true,
    disabledCommands: tls ? ['AUTH'] : ['AUTH', 'STARTTLS'],
    hideSTARTTLS: !tls,
    ...(tls ?? {}),
    maxClients: 200,
    socketTimeout: 60_000,
    closeTimeout: 5_000,
    logger: false,
    onRcptTo(address, session, callback) {
      if (!options.accepts(address.address)) {
        callback(Object.assign(new Error(`5.1.1 <${address.address}>: no such mailbox here (this server takes bounces and unsubscribes only)`), { responseCode: 550 }));
        return;
      }
      if (session.envelope.rcptTo.length >= MAX_RECIPIENTS) {
        callback(Object.assign(new Error('5.5.3 too many recipients'), { responseCode: 452 }));
        return;
      }
      callback();
    },
    onData(stream, session, callback) {
      readMessage(stream, options.maxBytes)
        .then(async (raw) => {
          if (raw === undefined) return callback(Object.assign(new Error('5.3.4 message exceeds the maximum size'), { responseCode: 552 }));
          const recipients = session.envelope.rcptTo.map((r) => r.address);
          try {
            const outcome = await options.handle({ raw, recipients, source: 'smtp' });
            if (outcome.ignored) options.log(`inbound: ignored a mail to ${recipients.join(', ')}: ${outcome.ignored}`);
            // Taken either way: telling the sender about an ignored report only makes it retry.
            callback(null, outcome.recorded > 0 ? `2.0.0 recorded ${outcome.recorded}` : '2.0.0 accepted');
          } catch (error) {
            options.log(`inbound: could not record a mail to ${recipients.join(', ')}: ${(error as Error).message}`);
            callback(tempFail('4.3.0 could not record the report now; try again later'));
          }
        })
        .catch((error: Error) => callback(tempFail(`4.3.0 ${error.message}`)));
    },
  });
  server.on('error', (error) => options.log(`inbound: ${error.message}`));
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

// Reads the message, keeping nothing past the size limit; undefined when it was over.
function readMessage(stream: SMTPServerDataStream, maxBytes: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    stream.on('data', (chunk: Buffer) => {
      length += chunk.length;
      if (length <= maxBytes) chunks.push(chunk);
    });
    stream.once('error', reject);
    stream.once('end', () => resolve(stream.sizeExceeded || length > maxBytes ? undefined : Buffer.concat(chunks, length)));
  });
}
