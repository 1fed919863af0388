import path from 'node:path';
import type { Config } from './config.ts';
import { cachedContentLoader } from './content/content-cache.ts';
import { loadContent } from './content/load-content.ts';
import type { Content } from './content/model.ts';
import { createMessageSigner, type MessageSigner } from './delivery/dkim.ts';
import type { Transport } from './delivery/transport.ts';
import { createOutboxTransport } from './delivery/transport-outbox.ts';
import { resolveSecret, TokenSigner } from './links/tokens.ts';
import { loadEmailTemplates, type EmailTemplates } from './render/email-templates.ts';
import { openStore, type Store } from './store/database.ts';
import { SubscribersRepo } from './store/subscribers-repo.ts';
import { DeliveriesRepo } from './store/deliveries-repo.ts';
import { EditionsRepo } from './store/editions-repo.ts';
import type { Queue } from './queue/queue.ts';
import { createSqlQueue } from './queue/queue-sql.ts';
import { Worker, type WorkerDeps, type WorkerOptions } from './delivery/worker.ts';
import { systemClock, type Clock } from './delivery/rate-limiter.ts';
import { DEFAULT_RETRY_POLICY } from './delivery/retry-policy.ts';
import { SubscriptionService } from './subscribers/subscription-service.ts';

/** The composition root: every adapter and shared service of one process, built on first use. */
export interface App {
  readonly config: Config;
  /** The clock; tests inject their own. */
  now(): Date;
  /** Validated content/, reloaded when its files change (editors change it while the server runs). */
  content(): Promise<Content>;
  /** content/ read from disk now, bypassing the cache: for code that watches the files itself or must not miss a save. */
  freshContent(): Promise<Content>;
  emailTemplates(): Promise<EmailTemplates>;
  tokens(): Promise<TokenSigner>;
  signMessage(): Promise<MessageSigner>;
  store(): Promise<Store>;
  subscribers(): Promise<SubscribersRepo>;
  transport(): Promise<Transport>;
  subscriptions(): Promise<SubscriptionService>;
  editions(): Promise<EditionsRepo>;
  deliveries(): Promise<DeliveriesRepo>;
  queue(): Promise<Queue>;
  /** A new worker with the configured limits; `options` override them (tests, benchmarks); `log` hears retries, bounces, pauses, errors. */
  worker(options?: Partial<WorkerOptions>, log?: WorkerDeps['log']): Promise<Worker>;
  /** Closes whatever was opened (database, SMTP pool). */
  close(): Promise<void>;
}

/** Overrides for tests: a fixed clock, a transport of their own. */
export interface AppOverrides {
  now?: () => Date;
  /** The clock workers sleep on; defaults to real time. */
  clock?: Clock;
  transport?: Transport;
  random?: () => number;
}

/** Builds the App from validated configuration; nothing is opened until first asked for. */
export function createApp(config: Config, overrides: AppOverrides = {}): App {
  const opened: { close(): Promise<void> }[] = [];
  const once = <T>(make: () => Promise<T>): (() => Promise<T>) => {
    let value: Promise<T> | undefined;
    return () => (value ??= make());
  };
  const now = overrides.now ?? (() => new Date());
  const content = cachedContentLoader(config.contentDir, { baseUrl: config.baseUrl });
  const emailTemplates = once(() => loadEmailTemplates(config.templatesDir));
  const tokens = once(async () => new TokenSigner(await resolveSecret(config.secret, config.dataDir)));
  const signMessage = once(() => createMessageSigner(config.dkim));
  const store = once(async () => {
    const s = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
    opened.push(s);
    return s;
  });
  const subscribers = once(async () => new SubscribersRepo((await store()).db));
  const transport = once(async () => {
    const t = overrides.transport ?? (await createTransport(config));
    opened.push(t);
    return t;
  });
  const subscriptions = once(
    async () =>
      new SubscriptionService({
        repo: await subscribers(),
        transport: await transport(),
        content,
        templates: await emailTemplates(),
        tokens: await tokens(),
        signMessage: await signMessage(),
        now,
      }),
  );
  const editions = once(async () => new EditionsRepo((await store()).db));
  const deliveries = once(async () => new DeliveriesRepo((await store()).db));
  const queue = once(async () => createSqlQueue(await store()));
  const clock: Clock = overrides.clock ?? (overrides.now ? { now, sleep: systemClock.sleep } : systemClock);
  const worker = async (options: Partial<WorkerOptions> = {}, log: WorkerDeps['log'] = () => {}) =>
    new Worker(
      {
        queue: await queue(),
        deliveries: await deliveries(),
        editions: await editions(),
        subscribers: await subscribers(),
        transport: await transport(),
        signMessage: await signMessage(),
        tokens: await tokens(),
        content,
        clock,
        random: overrides.random ?? Math.random,
        log,
      },
      {
        concurrency: config.concurrency,
        rate: config.rate,
        retry: DEFAULT_RETRY_POLICY,
        leaseMs: config.leaseMs,
        pollMs: 500,
        rejectedBackoffMs: 60_000,
        ...options,
      },
    );
  return {
    config,
    now,
    editions,
    deliveries,
    queue,
    worker,
    content,
    freshContent: () => loadContent(config.contentDir, { baseUrl: config.baseUrl }),
    emailTemplates,
    tokens,
    signMessage,
    store,
    subscribers,
    transport,
    subscriptions,
    async close() {
      for (const item of opened.splice(0).reverse()) await item.close();
    },
  };
}

/** The transport config asks for: SMTP when SMTP_URL is set, else .eml files in data/outbox/. */
async function createTransport(config: Config): Promise<Transport> {
  if (config.smtpUrl) {
    // Loaded lazily: outbox users never load the SMTP stack.
    const { createSmtpTransport } = await import('./delivery/transport-smtp.ts');
    return createSmtpTransport(config.smtpUrl, { maxConnections: config.concurrency });
  }
  return createOutboxTransport(path.join(config.dataDir, 'outbox'));
}
