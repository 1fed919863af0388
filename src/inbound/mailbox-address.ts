import { GazetteError } from '../errors.ts';

// An IMAP mailbox's address as a URL gives it, and the reader's errors: neither ever shows the password.

/** Where a mailbox is and how to log in to it, as read from an imap:// or imaps:// URL. */
export interface MailboxAddress {
  /** imaps://: TLS from the first byte. */
  secure: boolean;
  /** imap:// to a host that is not loopback: the password goes over STARTTLS or not at all. */
  requireStartTls: boolean;
  host: string;
  port: number;
  user: string;
  password: string;
  /** The mailbox path as the server names it; INBOX when the URL has none. */
  mailbox: string;
}

/** Reading a mailbox failed; `transient` says whether trying again later may work without anyone fixing the configuration. */
export class MailboxError extends GazetteError {
  readonly transient: boolean;

  constructor(code: string, message: string, options: { transient: boolean; cause?: unknown }) {
    super(code, message, options);
    this.transient = options.transient;
  }
}

const INVALID_URL_HINT =
  'expected imaps://user:password@host[:port]/MAILBOX or imap://… with @ : / ? # % in the user and password percent-encoded';

/** Reads an imap:// or imaps:// URL; the error for a bad one never repeats the URL, which holds a password. */
export function parseMailboxUrl(url: string): MailboxAddress {
  const invalid = (why: string) => new MailboxError('MAILBOX_URL_INVALID', `invalid mailbox URL: ${why}; ${INVALID_URL_HINT}`, { transient: false });
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // Not kept as the cause: Node's URL error carries the input, password and all.
    throw invalid('not a URL');
  }
  if (parsed.protocol !== 'imap:' && parsed.protocol !== 'imaps:') throw invalid(`scheme ${parsed.protocol}`);
  if (parsed.search || parsed.hash) throw invalid('it has a ? or # part');
  if (!parsed.hostname) throw invalid('no host');
  if (!parsed.username || !parsed.password) throw invalid('no user or no password');
  const secure = parsed.protocol === 'imaps:';
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  try {
    return {
      secure,
      requireStartTls: !secure && !isLoopback(host),
      host,
      port: parsed.port ? Number(parsed.port) : secure ? 993 : 143,
      user: decodeURIComponent(parsed.username),
      password: decodeURIComponent(parsed.password),
      mailbox: decodeURIComponent(parsed.pathname.replace(/^\/+|\/+$/g, '')) || 'INBOX',
    };
  } catch {
    throw invalid('a malformed %-escape');
  }
}

/** Translates imapflow's and Node's errors into the reader's own, telling lasting from passing ones. */
// into the reader's own, telling lasting from passing ones.
export function asMailboxError(error: unknown, address: MailboxAddress): MailboxError {
  if (error instanceof MailboxError) return error;
  const where = `${address.host}:${address.port}`;
  const e = (error ?? {}) as { message?: string; code?: string; authenticationFailed?: boolean; serverResponseCode?: string; responseText?: string; tlsFailed?: boolean };
  if (e.authenticationFailed && e.serverResponseCode !== 'UNAVAILABLE') {
    const said = scrub(e.responseText ?? e.message ?? '', address);
    return new MailboxError('MAILBOX_LOGIN_FAILED', `login as "${address.user}" at ${where} refused${said ? `: ${said}` : ''}`, { transient: false, cause: error });
  }
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME/.test(e.code ?? '')) {
    return new MailboxError('MAILBOX_TLS_FAILED', `TLS with ${where} failed: ${e.message}`, { transient: false, cause: error });
  }
  if (e.tlsFailed && address.requireStartTls) {
    return new MailboxError(
      'MAILBOX_TLS_REQUIRED',
      `${where} offers no STARTTLS, and imap:// sends the password in the clear only to a loopback host; use imaps://`,
      { transient: false, cause: error },
    );
  }
  if (e.code === 'NoConnection' || e.code === 'EConnectionClosed') {
    return new MailboxError('MAILBOX_CONNECTION_LOST', 'connection lost', { transient: true, cause: error });
  }
  const text = e.responseText || e.message || String(error);
  const reason = scrub(e.code && !text.includes(e.code) ? `${e.code}: ${text}` : text, address);
  return new MailboxError('MAILBOX_UNREACHABLE', `cannot read mailbox at ${where} (${reason})`, { transient: true, cause: error });
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host.endsWith('.localhost') || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

// The URL as logs show it: never the password.
export function displayUrl(address: MailboxAddress): string {
  return `${address.secure ? 'imaps' : 'imap'}://${address.user}@${address.host}:${address.port}/${address.mailbox}`;
}

// Belt and braces: no server or library text reaches a log with the password in it.
export function scrub(text: string, address: MailboxAddress): string {
  return address.password.length >= 4 ? text.split(address.password).join('***') : text;
}
