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

/** A thing looked up by id or slug does not exist. */
export class NotFoundError extends GazetteError {
  constructor(message: string) {
    super('NOT_FOUND', message);
  }
}

/** A send failed for now (4xx, dropped connection, timeout): retry later. */
export class TemporaryDeliveryError extends GazetteError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DELIVERY_TEMPORARY', message, options);
  }
}

/** The receiving server refused this recipient for good (5xx): bounce and suppress. */
export class PermanentDeliveryError extends GazetteError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DELIVERY_PERMANENT', message, options);
  }
}

/** The mail server refuses us as a whole (bad auth, 5xx to MAIL FROM): pause instead of burning the list. */
export class TransportRejectedError extends GazetteError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('TRANSPORT_REJECTED', message, options);
  }
}
