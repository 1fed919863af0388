import path from 'node:path';
import type { AlertEditors } from './alerts/editor-alerts.ts';
import type { Config } from './config.ts';
import type { Content } from './model/content.ts';
import { createMessageSigner, type MessageSigner } from './delivery/dkim.ts';
import type { EditionStore } from './delivery/edition-store.ts';
import { FaultJudge, type DEFAULT_STREAKS } from './delivery/fault-judge.ts';
import { NoticeSender, type NoticeToSend } from './delivery/notice-sender.ts';
import { OutcomeRecorder, type Taken, type WorkerLog } from './delivery/outcome-recorder.ts';
import { RateLimiter, systemClock, type Clock } from './delivery/rate-limiter.ts';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from './delivery/retry-policy.ts';
import type { SendQueue } from './delivery/send-queue.ts';
import { SendStep } from './delivery/send-step.ts';
import type { Transport } from './delivery/transport.ts';
import { createOutboxTransport } from './delivery/transport-outbox.ts';
import { Worker, type WorkerOptions } from './delivery/worker.ts';
import { DeliveryTokens } from './links/delivery-tokens.ts';
import { resolveSecret, TokenSigner } from './links/tokens.ts';
import type { InboundMailHandler, ReportHandler } from './inbound/inbound-report.ts';
import { EventsRepo } from './store/events-repo.ts';
import { createSqlSendQueue } from './queue/send-queue-sql.ts';
import type { EmailTemplates } from './render/email-templates.ts';
import { openStore, type Store } from './store/database.ts';
import { DeliveriesRepo } from './store/deliveries-repo.ts';
import { EditionsRepo, editionStoreOf } from './store/editions-repo.ts';
import { NoticesRepo } from './store/notices-repo.ts';
import { PublicationsRepo } from './store/publications-repo.ts';
import { SubscribersRepo } from './store/subscribers-repo.ts';
import { SchedulesRepo } from './store/schedules-repo.ts';
import { ConsoleSessionsRepo } from './store/console-sessions-repo.ts';
import { UsersRepo } from './store/users-repo.ts';
import { userUseCases, type UserUseCases } from './users/user-use-cases.ts';
import type { SubscriptionService } from './subscribers/subscription-service.ts';
import { subscriberUseCases, type SubscriberUseCases } from './subscribers/subscriber-use-cases.ts';
import type { EditionUseCases } from './edition/edition-use-cases.ts';
import { lazyFunction, lazyMethods } from './lazy.ts';
import type { FireDeps, ScheduleLog } from './schedule/fire-schedule.ts';
import { stderrScheduleLog } from './schedule/schedule-log.ts';
import type { ScheduleUseCases } from './schedule/schedule-use-cases.ts';

/** What a worker may be tuned with beyond the configuration (tests, benchmarks). */
export interface WorkerSettings extends Partial<WorkerOptions> {
  retry?: RetryPolicy;
  /** Failures in a row that make a fault the server's (see FaultJudge). */
  streaks?: Partial<typeof DEFAULT_STREAKS>;
  /** Longest a failure is held waiting for more evidence. */
  maxHoldMs?: number;
}

/** The adapters behind the use cases, each built on first use: for the worker's own wiring, tests and benchmarks. */
export interface Adapters {
  store(): Promise<Store>;
  subscribers(): Promise<SubscribersRepo>;
  editions(): Promise<EditionsRepo>;
  deliveries(): Promise<DeliveriesRepo>;
  notices(): Promise<NoticesRepo>;
  schedules(): Promise<SchedulesRepo>;
  /** When stories were first seen a draft and first seen published (what digests since the last one read). */
  publications(): Promise<PublicationsRepo>;
  events(): Promise<EventsRepo>;
  users(): Promise<UsersRepo>;
  /** Console sessions, shared by every server process. */
  consoleSessions(): Promise<ConsoleSessionsRepo>;
  deliveryTokens(): Promise<DeliveryTokens>;
  queue(): Promise<SendQueue>;
  transport(): Promise<Transport>;
  emailTemplates(): Promise<EmailTemplates>;
  tokens(): Promise<TokenSigner>;
  signMessage(): Promise<MessageSigner>;
  /** Tells site.yaml's editors of trouble (a failed scheduled send) by email, through the notices. */
  alerts(): Promise<AlertEditors>;
  /** What a scheduled fire needs; `log` hears what the scheduler does (default: stderr). */
  fireDeps(log?: ScheduleLog): Promise<FireDeps>;
}

/**
 * The composition root: the one place adapters are chosen and wired. Shells (the CLI, the HTTP
 * server, the console) call its use cases; nothing else builds a repository or a transport.
 */
export interface App {
  readonly config: Config;
  /** The clock; tests inject their own. */
  now(): Date;
  /** Validated content/, reloaded when its files change (editors change it while the server runs). */
  content(): Promise<Content>;
  /** content/ read from disk now, bypassing the cache: for code that must not miss a save. */
  freshContent(): Promise<Content>;
  /** Make, send, pause, follow and preview editions. */
  readonly editions: EditionUseCases;
  /** Add, list, show, cancel schedules; run the scheduler. */
  readonly schedules: ScheduleUseCases;
  /** The subscriber base as operators manage it. */
  readonly subscribers: SubscriberUseCases;
  /** Console users and their API tokens. */
  readonly users: UserUseCases;
  /** The public subscription flows: subscribe, confirm, unsubscribe, preferences. */
  subscriptions(): Promise<SubscriptionService>;
  /** A new worker with the configured limits; `settings` override them; `log` hears retries, bounces, pauses, errors. */
  worker(settings?: WorkerSettings, log?: WorkerLog): Promise<Worker>;
  /** Messages waiting to be sent now: jobs of editions not paused, and notices due. Zero: nothing to do. */
  backlog(): Promise<number>;
  /** The one handler every way in (receiver, mailbox, webhooks) hands its reports to. */
  reports(): Promise<ReportHandler>;
  /** Reads mails to the bounce and unsubscribe addresses at `domains` into reports. */
  inboundMail(domains: string[]): Promise<InboundMailHandler>;
  /** Whether the database answers now (the health check; also migrates it on first use). */
  checkDatabase(): Promise<void>;
  readonly adapters: Adapters;
  /** Closes whatever was opened (database, SMTP pool, queue connections). */
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
  const clock: Clock = overrides.clock ?? (overrides.now ? { ...systemClock, now } : systemClock);
  const random = overrides.random ?? Math.random;
  // Loaded on first use: the Markdown, sanitizing and template modules weigh more than all a worker runs on.
  const contentOptions = { baseUrl: config.baseUrl, bounceDomain: config.inbound.bounceDomain };
  const content = lazyFunction(async () => (await import('./content/content-cache.ts')).cachedContentLoader(config.contentDir, contentOptions));
  const emailTemplates = once(async () => (await import('./render/email-templates.ts')).loadEmailTemplates(config.templatesDir));
  const secret = once(() => resolveSecret(config.secret, config.dataDir));
  const tokens = once(async () => new TokenSigner(await secret()));
  const deliveryTokens = once(async () => new DeliveryTokens(await secret()));
  const signMessage = once(() => createMessageSigner(config.dkim));
  const store = once(async () => {
    const s = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, create: config.createDatabase });
    opened.push(s);
    return s;
  });
  const subscribers = once(async () => new SubscribersRepo((await store()).db));
  const transport = once(async () => {
    const t = overrides.transport ?? (await createTransport(config));
    opened.push(t);
    return t;
  });
  const editions = once(async () => new EditionsRepo((await store()).db, now));
  const deliveries = once(async () => new DeliveriesRepo((await store()).db, now));
  const notices = once(async () => new NoticesRepo((await store()).db, now));
  const publications = once(async () => new PublicationsRepo((await store()).db));
  const schedules = once(async () => new SchedulesRepo((await store()).db));
  const events = once(async () => new EventsRepo((await store()).db));
  const users = once(async () => new UsersRepo((await store()).db));
  const consoleSessions = once(async () => new ConsoleSessionsRepo((await store()).db));
  const reports = once(async () =>
    (await import('./inbound/report-handler.ts')).createReportHandler({ events: await events(), softBounces: config.inbound.softBounces, now }),
  );
  const queue = once(async () => {
    const q = await createQueue(config, store, now);
    opened.push(q);
    return q;
  });
  // Notice senders of this process's workers: a subscribe here wakes them instead of waiting for their poll.
  const noticeSenders = new Set<NoticeSender>();
  const wakeNotices = () => noticeSenders.forEach((sender) => sender.wake());
  const alerts = once(async () => (await import('./alerts/editor-alerts.ts')).createEditorAlerts({ content, templates: emailTemplates, notices: await notices(), now, wake: wakeNotices }));
  const subscriptions = once(
    async () =>
      new (await import('./subscribers/subscription-service.ts')).SubscriptionService({
        repo: await subscribers(),
        notices: await notices(),
        wake: wakeNotices,
        content,
        templates: await emailTemplates(),
        tokens: await tokens(),
        now,
      }),
  );

  const worker = async (settings: WorkerSettings = {}, log: WorkerLog = () => {}): Promise<Worker> => {
    const { retry = DEFAULT_RETRY_POLICY, streaks, maxHoldMs, ...loop } = settings;
    const options: WorkerOptions = {
      concurrency: config.concurrency,
      rate: config.rate,
      leaseMs: config.leaseMs,
      pollMs: 500,
      resumeOutages: false,
      ...loop,
    };
    const editionStore: EditionStore = editionStoreOf(await editions());
    const step = new SendStep({
      editions: editionStore,
      transport: await transport(),
      signMessage: await signMessage(),
      tokens: await tokens(),
      deliveryTokens: await deliveryTokens(),
      limiter: new RateLimiter(options.rate, clock),
      now: () => clock.now(),
      legacyContent: content,
    });
    const judgeOptions = { streaks, maxHoldMs, now: () => clock.monotonic() };
    let built: Worker | undefined;
    const recorder = new OutcomeRecorder({
      ledger: await deliveries(),
      queue: await queue(),
      editions: editionStore,
      judge: new FaultJudge<Taken>(judgeOptions),
      retry,
      random,
      now: () => clock.now(),
      log,
      onPause: async (id) => built?.dropEdition(id),
      probe: async () => (await transport()).probe(),
    });
    const noticeSender = new NoticeSender({
      outbox: await notices(),
      deliver: (message) => step.deliver(message),
      judge: new FaultJudge<NoticeToSend>(judgeOptions),
      retry,
      random,
      clock,
      log,
      pollMs: options.pollMs,
      leaseMs: options.leaseMs,
      probe: async () => (await transport()).probe(),
    });
    noticeSenders.add(noticeSender);
    built = new Worker(
      { queue: await queue(), ledger: await deliveries(), editions: editionStore, step, recorder, transport: await transport(), notices: noticeSender, clock, log },
      options,
    );
    return built;
  };

  const freshContent = async () => (await import('./content/load-content.ts')).loadContent(config.contentDir, contentOptions);
  // Content is read afresh for each fire, not through the change-polling cache: a digest must see
  // a story saved a moment before it fires.
  const fireDeps = async (log: ScheduleLog = stderrScheduleLog): Promise<FireDeps> => ({
    schedules: await schedules(),
    editions: await editions(),
    deliveries: await deliveries(),
    queue: await queue(),
    publications: await publications(),
    content: freshContent,
    templates: emailTemplates,
    now,
    log,
    graceMs: config.scheduleGraceMs,
    alert: await alerts(),
  });

  return {
    config,
    now,
    content,
    freshContent,
    editions: lazyMethods(async () => (await import('./edition/edition-use-cases.ts')).editionUseCases({ editions, deliveries, events, queue, publications, content, templates: emailTemplates, tokens, signMessage, transport, now })),
    schedules: lazyMethods(async () => (await import('./schedule/schedule-use-cases.ts')).scheduleUseCases({ fireDeps, graceMs: config.scheduleGraceMs })),
    subscribers: subscriberUseCases({ subscribers, subscriptions, editions, events, deliveries, content, now }),
    users: userUseCases({ users, now }),
    subscriptions,
    worker,
    async backlog() {
      return (await (await queue()).size()) + (await (await notices()).due());
    },
    async checkDatabase() {
      await (await store()).db.selectFrom('subscribers').select('id').limit(1).execute();
    },
    reports,
    async inboundMail(domains) {
      const { inboundMailHandler } = await import('./inbound/mail-reports.ts');
      return inboundMailHandler({ reports: await reports(), deliveryTokens: await deliveryTokens(), tokens: await tokens(), domains, now });
    },
    adapters: { store, subscribers, editions, deliveries, notices, schedules, publications, events, users, consoleSessions, queue, transport, emailTemplates, tokens, deliveryTokens, signMessage, alerts, fireDeps },
    async close() {
      for (const item of opened.splice(0).reverse()) await item.close();
    },
  };
}

/** The send queue config asks for: BullMQ on Redis when REDIS_URL is set (loaded only then), else the table beside the ledger. */
async function createQueue(config: Config, store: () => Promise<Store>, now: () => Date): Promise<SendQueue> {
  if (!config.redisUrl) return createSqlSendQueue(await store(), now);
  const { createBullmqSendQueue } = await import('./queue/send-queue-bullmq.ts');
  return createBullmqSendQueue({
    redisUrl: config.redisUrl,
    prefix: config.redisPrefix,
    now,
    leaseMs: config.leaseMs,
    // GAZETTE_RATE holds across every worker sharing the queue.
    rate: { max: config.rate, durationMs: 1000 },
  });
}

/** The transport config asks for: SMTP when SMTP_URL is set, else .eml files in data/outbox/. */
async function createTransport(config: Config): Promise<Transport> {
  if (config.smtpUrl) {
    // Loaded lazily: outbox users never load the SMTP stack.
    const { createSmtpTransport } = await import('./delivery/transport-smtp.ts');
    return createSmtpTransport(config.smtpUrl, { maxConnections: config.concurrency, transactionTimeoutMs: Math.floor(config.leaseMs / 2) });
  }
  return createOutboxTransport(path.join(config.dataDir, 'outbox'));
}
