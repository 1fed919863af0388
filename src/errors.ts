/** Base error of the whole core: a stable machine-readable code, the cause kept. */
export class GazetteError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** One problem found in a content file: which file, which field, what was expected. */
export interface ContentIssue {
  file: string;
  field: string;
  message: string;
  line?: number;
}

/** Formats an issue as `file:line: field: message`, the shape editors see on the terminal. */
export function formatContentIssue(issue: ContentIssue): string {
  const where = issue.line === undefined ? issue.file : `${issue.file}:${issue.line}`;
  return issue.field ? `${where}: ${issue.field}: ${issue.message}` : `${where}: ${issue.message}`;
}

/** Content failed validation; carries every issue found, so a build reports them all at once. */
export class ContentError extends GazetteError {
  readonly issues: ContentIssue[];

  constructor(issues: ContentIssue[]) {
    super('CONTENT_INVALID', issues.map(formatContentIssue).join('\n'));
    this.issues = issues;
  }
}

/** Configuration (environment) is invalid; the message names the key. */
export class ConfigError extends GazetteError {
  constructor(message: string) {
    super('CONFIG_INVALID', message);
  }
}

/** A template failed to compile or render; names the template and, where known, the line. */
export class RenderError extends GazetteError {
  readonly template: string;
  readonly line: number | undefined;

  constructor(template: string, message: string, options?: { line?: number; cause?: unknown }) {
    super('RENDER_FAILED', `${template}${options?.line ? `:${options.line}` : ''}: ${message}`, options);
    this.template = template;
    this.line = options?.line;
  }
}

/** Input from a user (CLI flag, HTTP body) is wrong; the message says which and why. */
export class InputError extends GazetteError {
  constructor(message: string) {
    super('INPUT_INVALID', message);
  }
}

/** The thing to create exists already (an address subscribed twice). */
export class ConflictError extends GazetteError {
  constructor(message: string) {
    super('CONFLICT', message);
  }
}

/** The caller is known but their role does not allow this (an editor erasing a subscriber). */
export class ForbiddenError extends GazetteError {
  constructor(message: string) {
    super('FORBIDDEN', message);
  }
}

/** A thing looked up by id or slug does not exist. */
export class NotFoundError extends GazetteError {
  constructor(message: string) {
    super('NOT_FOUND', message);
  }
}

/**
 * Who is at fault for a failed send, as the transport adapter read the reply:
 * - `recipient-temporary`: a 4xx for this recipient (mailbox busy, greylisting): retry this one later;
 * - `recipient-permanent`: a 5xx that names the recipient (5.1.x, 5.2.x, 550 at RCPT): bounce it;
 * - `unclear-permanent`: a 5xx that may be the message's or the server's fault (a bare 554 after DATA):
 *   that message fails, but nobody is suppressed on its word;
 * - `refused`: the server refuses us (bad auth, 5xx to MAIL FROM, 5.7.x policy or relay, 554 greeting);
 * - `unreachable`: no usable session (refused or dropped connection, 421, timeout, a full disk).
 */
export type FaultKind = 'recipient-temporary' | 'recipient-permanent' | 'unclear-permanent' | 'refused' | 'unreachable';

/** A send that failed, translated by the transport into the app's terms; `reply` is what the server said. */
export class DeliveryFault extends GazetteError {
  readonly kind: FaultKind;
  readonly reply: string;

  constructor(kind: FaultKind, message: string, options?: { reply?: string; cause?: unknown }) {
    super(`DELIVERY_${kind.toUpperCase().replace(/-/g, '_')}`, message, options);
    this.kind = kind;
    this.reply = options?.reply ?? '';
  }
}

/** The database went away under a running process (file deleted or replaced): stop rather than write into the void. */
export class DatabaseGoneError extends GazetteError {
  constructor(message: string) {
    super('DATABASE_GONE', message);
  }
}

/** No database where one was expected; the message says how to create one. */
export class DatabaseMissingError extends GazetteError {
  constructor(message: string) {
    super('DATABASE_MISSING', message);
  }
}
