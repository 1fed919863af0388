import type { Command } from 'commander';
import { InputError } from '../../errors.ts';
import type { AppFactory } from '../main.ts';

/** The receiver's port when neither --port nor GAZETTE_INBOUND_PORT says (25 needs root). */
const DEFAULT_PORT = 2525;

/** `gazette inbound`: takes bounces, complaints and unsubscribes by mail until SIGTERM/SIGINT. */
export function registerInbound(program: Command, makeApp: AppFactory): void {
  program
    .command('inbound')
    .description('take bounces, complaints and unsubscribes by mail: an SMTP receiver for the bounce domain, and/or an IMAP mailbox')
    .option('--port <n>', `SMTP port to listen on (default: GAZETTE_INBOUND_PORT or ${DEFAULT_PORT})`)
    .option('--host <address>', 'address to listen on (default: GAZETTE_INBOUND_HOST or 0.0.0.0)')
    .option('--mailbox [url]', 'read an IMAP mailbox instead (imaps://user:pass@host/INBOX; default GAZETTE_MAILBOX_URL)')
    .option('--also-smtp', 'with --mailbox: run the SMTP receiver as well')
    .action(async (options: { port?: string; host?: string; mailbox?: string | boolean; alsoSmtp?: boolean }) => {
      const app = makeApp();
      const port = options.port === undefined ? (app.config.inbound.port ?? DEFAULT_PORT) : Number(options.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InputError(`--port: expected a port number from 0 to 65535, got "${options.port}"`);
      const mailboxUrl = typeof options.mailbox === 'string' ? options.mailbox : options.mailbox ? app.config.inbound.mailboxUrl : undefined;
      if (options.mailbox === true && !mailboxUrl) throw new InputError('--mailbox: give the mailbox URL (imaps://user:pass@host/INBOX) or set GAZETTE_MAILBOX_URL');
      if (mailboxUrl !== undefined && !/^imaps?:\/\//.test(mailboxUrl)) throw new InputError('--mailbox: expected a URL starting with imap:// or imaps://');
      const controller = new AbortController();
      const stop = () => controller.abort();
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
      try {
        await app.checkDatabase();
        const { startInbound } = await import('../../inbound/start-inbound.ts');
        const inbound = await startInbound(app, {
          port: mailboxUrl && !options.alsoSmtp ? undefined : port,
          host: options.host ?? app.config.inbound.host,
          mailboxUrl,
          log: (line) => process.stderr.write(`${line}\n`),
          signal: controller.signal,
        });
        await inbound.done;
      } finally {
        process.off('SIGTERM', stop);
        process.off('SIGINT', stop);
        await app.close();
      }
    });
}
