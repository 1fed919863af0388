import path from 'node:path';
import { z } from 'zod';
import { ConfigError } from './errors.ts';

const positiveNumber = (fallback: number) =>
  z.coerce.number().positive().default(fallback);

const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i;

const optionalString = z
  .string()
  .optional()
  .transform((value) => (value === undefined || value.trim() === '' ? undefined : value));

/** Environment variables Gazette reads, each with its default; the only place that reads process.env. */
const envSchema = z.object({
  /** Folder with site.yaml and stories/. */
  GAZETTE_CONTENT_DIR: z.string().default('./content'),
  /** Folder the feeds are written to by `gazette build`. */
  GAZETTE_FEEDS_DIR: z.string().default('./feeds'),
  /** Folder of templates/email and templates/web. */
  GAZETTE_TEMPLATES_DIR: z.string().default('./templates'),
  /** Runtime state: SQLite file, outbox/, generated secret. */
  GAZETTE_DATA_DIR: z.string().default('./data'),
  /** Database URL; unset means the SQLite file data/gazette.db. */
  DATABASE_URL: optionalString,
  /** redis://… (or rediss://) puts the send queue on BullMQ; unset keeps it in the database. */
  REDIS_URL: optionalString.refine((value) => value === undefined || /^rediss?:\/\//.test(value), 'expected a URL starting with redis:// or rediss://'),
  /** Prefix of every Redis key the queue uses: Gazettes sharing one Redis need one each. */
  GAZETTE_REDIS_PREFIX: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'expected 1 to 64 letters, digits, _ . or -').default('gazette'),
  /** smtp://user:pass@host:port or smtps://…; unset writes .eml files to data/outbox/. */
  SMTP_URL: optionalString.refine(
    (value) => value === undefined || /^smtps?:\/\//.test(value),
    'expected a URL starting with smtp:// or smtps://',
  ),
  /** Messages per second: per worker process on the database queue; across every worker on BullMQ. */
  GAZETTE_RATE: positiveNumber(50),
  /** Messages sent at once. */
  GAZETTE_CONCURRENCY: z.coerce.number().int().positive().default(5),
  /**
   * How long a worker holds a job without renewing it; a dead worker's jobs are taken again after
   * this. Live workers renew every quarter of it, and one message's SMTP transaction is capped at half.
   */
  GAZETTE_LEASE_SECONDS: z.coerce.number().int().min(2).max(3600).default(60),
  /** DKIM signing domain, selector and private key file: all three or none. */
  DKIM_DOMAIN: optionalString,
  DKIM_SELECTOR: optionalString,
  DKIM_PRIVATE_KEY_FILE: optionalString,
  /** Token signing key; unset means one generated once into the data dir. */
  GAZETTE_SECRET: optionalString.refine(
    (value) => value === undefined || value.length >= 16,
    'expected at least 16 characters',
  ),
  /** Bearer token for /api; unset turns the admin API off. Long enough that guessing it is hopeless. */
  GAZETTE_ADMIN_TOKEN: optionalString.refine(
    (value) => value === undefined || value.length >= 32,
    'expected at least 32 characters (generate one with: openssl rand -base64 32)',
  ),
  /**
   * Which proxies may set X-Forwarded-For (the client IP for rate limits and consent records):
   * unset trusts none; addresses or CIDRs of your proxies ("127.0.0.1,10.0.0.0/8"); "true" trusts any.
   */
  GAZETTE_TRUST_PROXY: optionalString,
  /** HTTP port of `gazette serve`. */
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  /** Public URL of the server, used in links inside emails; defaults to http://localhost:PORT. */
  BASE_URL: optionalString.refine(
    (value) => value === undefined || /^https?:\/\//.test(value),
    'expected an absolute http(s) URL',
  ),
  /** How late a missed scheduled fire may still run at start-up, in minutes. */
  GAZETTE_SCHEDULE_GRACE_MINUTES: z.coerce.number().min(0).default(60),
  /** Domain of the VERP return path and the mailto unsubscribe address; unset means the sender's domain. */
  GAZETTE_BOUNCE_DOMAIN: optionalString.refine((value) => value === undefined || DOMAIN.test(value), 'expected a domain name such as bounces.example.com'),
  /** Port of the inbound SMTP receiver inside `gazette serve`; unset runs none there (`gazette inbound` defaults to 2525). */
  GAZETTE_INBOUND_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  /** Address the inbound SMTP receiver listens on. */
  GAZETTE_INBOUND_HOST: z.string().default('0.0.0.0'),
  /** Largest inbound message taken, in bytes (a DSN carries the original message or its headers). */
  GAZETTE_INBOUND_MAX_BYTES: z.coerce.number().int().min(1024).default(5 * 1024 * 1024),
  /** PEM key and certificate files for STARTTLS on the inbound receiver: both or neither. */
  GAZETTE_INBOUND_TLS_KEY_FILE: optionalString,
  GAZETTE_INBOUND_TLS_CERT_FILE: optionalString,
  /** imaps://user:pass@host[:port]/MAILBOX (or imap://) that `gazette inbound --mailbox` reads. */
  GAZETTE_MAILBOX_URL: optionalString.refine((value) => value === undefined || /^imaps?:\/\//.test(value), 'expected a URL starting with imap:// or imaps://'),
  /** What becomes of a processed mailbox message: deleted (expunged), or flagged and kept. */
  GAZETTE_MAILBOX_AFTER: z.enum(['delete', 'flag']).default('flag'),
  /** How often the mailbox is checked when the server cannot IDLE, in seconds. */
  GAZETTE_MAILBOX_POLL_SECONDS: z.coerce.number().int().min(1).default(60),
  /** Soft bounces that suppress an address: this many among its last GAZETTE_SOFT_BOUNCE_SENDS sends. */
  GAZETTE_SOFT_BOUNCES: z.coerce.number().int().min(1).default(3),
  GAZETTE_SOFT_BOUNCE_SENDS: z.coerce.number().int().min(1).default(5),
  /** SNS topic ARNs (comma-separated) whose SES notifications /webhooks/ses takes; unset turns it off. */
  GAZETTE_SES_TOPIC_ARNS: optionalString,
  /** user:password Postmark sends with its webhooks (HTTP Basic auth); unset turns /webhooks/postmark off. */
  GAZETTE_POSTMARK_WEBHOOK_AUTH: optionalString.refine((value) => value === undefined || /^[^:]+:.{12,}$/.test(value), 'expected user:password with a password of 12 or more characters'),
  /** Mailgun's HTTP webhook signing key; unset turns /webhooks/mailgun off. */
  GAZETTE_MAILGUN_SIGNING_KEY: optionalString,
  /** SendGrid's signed event webhook verification key (base64 or PEM); unset turns /webhooks/sendgrid off. */
  GAZETTE_SENDGRID_PUBLIC_KEY: optionalString,
  /** pino log level. */
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

/** The validated configuration of one Gazette process. */
export interface Config {
  contentDir: string;
  feedsDir: string;
  templatesDir: string;
  dataDir: string;
  databaseUrl: string | undefined;
  redisUrl: string | undefined;
  /** Prefix of the queue's Redis keys. */
  redisPrefix: string;
  smtpUrl: string | undefined;
  rate: number;
  concurrency: number;
  leaseMs: number;
  dkim: { domain: string; selector: string; privateKeyFile: string } | undefined;
  secret: string | undefined;
  adminToken: string | undefined;
  trustProxy: boolean | string;
  port: number;
  baseUrl: string | undefined;
  scheduleGraceMs: number;
  logLevel: string;
  inbound: InboundConfig;
  webhooks: WebhookConfig;
  /**
   * Whether opening the store may create the database. Not an environment variable: the CLI
   * allows it for `serve` and `migrate` only, so other commands never start an empty list.
   */
  createDatabase: boolean;
}

/** How bounces, complaints and unsubscribes by mail come in. */
export interface InboundConfig {
  /** Unset: each edition's sender domain. */
  bounceDomain: string | undefined;
  /** The receiver's port inside `serve`; undefined runs none there. */
  port: number | undefined;
  host: string;
  maxBytes: number;
  tls: { keyFile: string; certFile: string } | undefined;
  mailboxUrl: string | undefined;
  mailboxAfter: 'delete' | 'flag';
  mailboxPollMs: number;
  /** An address is suppressed after `limit` soft bounces among its last `sends` sends. */
  softBounces: { limit: number; sends: number };
}

/** Each provider webhook's credentials; an unset one answers 404. */
export interface WebhookConfig {
  sesTopicArns: string[];
  postmarkAuth: { user: string; password: string } | undefined;
  mailgunSigningKey: string | undefined;
  sendgridPublicKey: string | undefined;
}

/** Reads and validates the environment once; throws ConfigError naming every wrong key. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map(
      (issue) => `${issue.path.join('.')}: ${issue.message} (got ${shown(issue.path[0], pick(env, issue.path[0]))})`,
    );
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  const dkimKeys = [e.DKIM_DOMAIN, e.DKIM_SELECTOR, e.DKIM_PRIVATE_KEY_FILE];
  const dkimSet = dkimKeys.filter((value) => value !== undefined).length;
  if (dkimSet !== 0 && dkimSet !== 3) {
    throw new ConfigError(
      'invalid configuration:\nDKIM_DOMAIN, DKIM_SELECTOR and DKIM_PRIVATE_KEY_FILE: set all three or none',
    );
  }
  if ((e.GAZETTE_INBOUND_TLS_KEY_FILE === undefined) !== (e.GAZETTE_INBOUND_TLS_CERT_FILE === undefined)) {
    throw new ConfigError('invalid configuration:\nGAZETTE_INBOUND_TLS_KEY_FILE and GAZETTE_INBOUND_TLS_CERT_FILE: set both or neither');
  }
  if (e.GAZETTE_SOFT_BOUNCES > e.GAZETTE_SOFT_BOUNCE_SENDS) {
    throw new ConfigError(
      `invalid configuration:\nGAZETTE_SOFT_BOUNCES: ${e.GAZETTE_SOFT_BOUNCES} soft bounces can never happen in ${e.GAZETTE_SOFT_BOUNCE_SENDS} sends (GAZETTE_SOFT_BOUNCE_SENDS)`,
    );
  }
  const postmark = e.GAZETTE_POSTMARK_WEBHOOK_AUTH?.match(/^([^:]+):(.*)$/);
  return {
    contentDir: path.resolve(e.GAZETTE_CONTENT_DIR),
    feedsDir: path.resolve(e.GAZETTE_FEEDS_DIR),
    templatesDir: path.resolve(e.GAZETTE_TEMPLATES_DIR),
    dataDir: path.resolve(e.GAZETTE_DATA_DIR),
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    redisPrefix: e.GAZETTE_REDIS_PREFIX,
    smtpUrl: e.SMTP_URL,
    rate: e.GAZETTE_RATE,
    concurrency: e.GAZETTE_CONCURRENCY,
    leaseMs: e.GAZETTE_LEASE_SECONDS * 1000,
    dkim:
      dkimSet === 3
        ? { domain: e.DKIM_DOMAIN!, selector: e.DKIM_SELECTOR!, privateKeyFile: path.resolve(e.DKIM_PRIVATE_KEY_FILE!) }
        : undefined,
    secret: e.GAZETTE_SECRET,
    adminToken: e.GAZETTE_ADMIN_TOKEN,
    trustProxy: parseTrustProxy(e.GAZETTE_TRUST_PROXY),
    port: e.PORT,
    baseUrl: e.BASE_URL?.replace(/\/+$/, ''),
    scheduleGraceMs: e.GAZETTE_SCHEDULE_GRACE_MINUTES * 60_000,
    logLevel: e.LOG_LEVEL,
    inbound: {
      bounceDomain: e.GAZETTE_BOUNCE_DOMAIN?.toLowerCase(),
      port: e.GAZETTE_INBOUND_PORT,
      host: e.GAZETTE_INBOUND_HOST,
      maxBytes: e.GAZETTE_INBOUND_MAX_BYTES,
      tls:
        e.GAZETTE_INBOUND_TLS_KEY_FILE && e.GAZETTE_INBOUND_TLS_CERT_FILE
          ? { keyFile: path.resolve(e.GAZETTE_INBOUND_TLS_KEY_FILE), certFile: path.resolve(e.GAZETTE_INBOUND_TLS_CERT_FILE) }
          : undefined,
      mailboxUrl: e.GAZETTE_MAILBOX_URL,
      mailboxAfter: e.GAZETTE_MAILBOX_AFTER,
      mailboxPollMs: e.GAZETTE_MAILBOX_POLL_SECONDS * 1000,
      softBounces: { limit: e.GAZETTE_SOFT_BOUNCES, sends: e.GAZETTE_SOFT_BOUNCE_SENDS },
    },
    webhooks: {
      sesTopicArns: (e.GAZETTE_SES_TOPIC_ARNS ?? '').split(',').map((arn) => arn.trim()).filter(Boolean),
      postmarkAuth: postmark ? { user: postmark[1]!, password: postmark[2]! } : undefined,
      mailgunSigningKey: e.GAZETTE_MAILGUN_SIGNING_KEY,
      sendgridPublicKey: e.GAZETTE_SENDGRID_PUBLIC_KEY,
    },
    createDatabase: true,
  };
}

function parseTrustProxy(value: string | undefined): boolean | string {
  if (value === undefined || value === 'false') return false;
  return value === 'true' ? true : value;
}

// Secrets are never echoed into logs: only how long the given value was.
function shown(key: PropertyKey | undefined, value: string | undefined): string {
  if (value !== undefined && typeof key === 'string' && /TOKEN|SECRET|PASS|AUTH|SIGNING_KEY/.test(key)) return `${value.length} characters`;
  if (value !== undefined && (key === 'SMTP_URL' || key === 'REDIS_URL' || key === 'DATABASE_URL' || key === 'GAZETTE_MAILBOX_URL')) return JSON.stringify(value.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@'));
  return JSON.stringify(value);
}

function pick(env: NodeJS.ProcessEnv, key: PropertyKey | undefined): string | undefined {
  return typeof key === 'string' ? env[key] : undefined;
}
