import type { SubscriberDelivery } from '../model/delivery.ts';
import type { Readable, Writable } from 'node:stream';
import { InputError, NotFoundError } from '../errors.ts';
import type { Content } from '../model/content.ts';
import type { Edition } from '../model/edition.ts';
import type {
  Frequency,
  LiftedSuppression,
  NewSubscriber,
  Subscriber,
  SubscriberPage,
  SubscriberStatus,
  Suppression,
  WithHistory,
  WithSuppression,
} from '../model/subscriber.ts';
import type { SubscriberEvent } from '../model/subscriber-event.ts';
import { exportSubscribersCsv } from './csv-export.ts';
import { importSubscribersCsv, type ImportProgress, type ImportSummary } from './csv-import.ts';
import { parseEmailAddress } from './email-address.ts';
import { liftEditionSuppressions, liftSuppression } from './suppression.ts';
import type { SubscriberRecords, SubscriptionService } from './subscription-service.ts';

/** The subscriber base as operators manage it: what the store must offer beyond the subscription flows. */
export interface SubscriberBase extends SubscriberRecords {
  insertMany(subscribers: NewSubscriber[], now: Date): Promise<number>;
  suppressedAmong(emailKeys: string[]): Promise<Set<string>>;
  remove(id: number): Promise<boolean>;
  page(options: { page: number; perPage: number; search?: string | undefined; status?: SubscriberStatus | undefined; list?: string | undefined }): Promise<SubscriberPage>;
  batchAfter(afterId: number, limit: number, list?: string): Promise<Subscriber[]>;
  countByStatus(): Promise<Record<SubscriberStatus, number>>;
  attachSuppressions<T extends { emailKey: string }>(rows: T[]): Promise<WithSuppression<T>[]>;
  suppression(emailKey: string): Promise<Suppression | undefined>;
  unsuppress(emailKey: string, now: Date): Promise<LiftedSuppression | undefined>;
  unsuppressEdition(editionId: number, now: Date): Promise<LiftedSuppression[]>;
}

/** What the subscriber use cases are built on. */
export interface SubscriberUseCaseDeps {
  subscribers: () => Promise<SubscriberBase>;
  subscriptions: () => Promise<SubscriptionService>;
  editions: () => Promise<{ find(id: number): Promise<Edition | undefined> }>;
  /** What came back about subscribers' mail (bounces, complaints, unsubscribes by mail). */
  events: () => Promise<{ ofSubscribers(ids: number[]): Promise<Map<number, SubscriberEvent[]>> }>;
  /** Each subscriber's deliveries, newest first. */
  deliveries: () => Promise<{ ofSubscriber(subscriberId: number, limit: number): Promise<SubscriberDelivery[]> }>;
  content: () => Promise<Content>;
  now: () => Date;
}

/** One subscriber to add by hand (CLI, API): `confirmed` asserts the operator holds their consent. */
export interface AddSubscriber {
  email: unknown;
  name?: unknown;
  lists?: unknown;
  frequency?: unknown;
  confirmed: boolean;
  source: 'cli' | 'api' | 'console';
}

/** How to import a CSV file. */
export interface ImportRequest {
  /** Opens the file from its start; called once per pass (checked, then stored). */
  open: () => Readable;
  list?: string | undefined;
  frequency?: Frequency | undefined;
  confirmed: boolean;
  onProgress?: (progress: ImportProgress) => void;
}

/** The subscriber use cases: what the CLI, the admin API and the console do with the subscriber base. */
export interface SubscriberUseCases {
  /** Adds one subscriber; pending ones get a confirmation email (queued). */
  add(request: AddSubscriber): Promise<WithSuppression<Subscriber>>;
  /** Imports a CSV file: nothing is stored from a file with a broken row structure; bad rows are reported by line. */
  import(request: ImportRequest): Promise<ImportSummary>;
  /** Writes every subscriber (of `list`) as CSV to `out`, waiting while it is full. */
  export(out: Writable, options?: { list?: string | undefined; end?: boolean }): Promise<void>;
  /** One page of subscribers with their suppressions (search matches address or name). */
  page(options: { page: number; perPage: number; search?: string | undefined; status?: SubscriberStatus | undefined; list?: string | undefined }): Promise<{ total: number; page: number; perPage: number; subscribers: WithHistory<Subscriber>[] }>;
  /** Every subscriber (of `list`, at `status`), oldest first, in batches: memory stays flat. */
  batches(options: { list?: string | undefined; status?: SubscriberStatus | undefined; size?: number }): AsyncIterable<WithHistory<Subscriber>[]>;
  /** The newest `limit` deliveries of editions to the subscriber with this address (their send history). */
  deliveries(email: unknown, limit?: number): Promise<SubscriberDelivery[]>;
  /** The subscriber with this address, with their suppression and events; NotFoundError naming it otherwise. */
  find(email: unknown): Promise<WithHistory<Subscriber>>;
  /** Erases a subscriber: their row and subscriptions are deleted. Returns who was erased. */
  remove(email: unknown): Promise<Subscriber>;
  /** Takes an address off the suppression list. */
  unsuppress(email: unknown): Promise<LiftedSuppression>;
  /** Lifts every suppression one edition's bounces caused. */
  unsuppressEdition(id: string | number): Promise<LiftedSuppression[]>;
  /** How many subscribers there are at each status, and in all. */
  counts(): Promise<Record<SubscriberStatus, number> & { total: number }>;
  /** `slug` when site.yaml has such a list; otherwise an InputError on `field` (the flag or parameter) naming the known ones. */
  knownList(slug: string, field: string): Promise<string>;
}

/** Builds the subscriber use cases over their ports. */
export function subscriberUseCases(deps: SubscriberUseCaseDeps): SubscriberUseCases {
  const withSuppression = async (subscriber: Subscriber) => (await (await deps.subscribers()).attachSuppressions([subscriber]))[0]!;
  const withHistory = async <T extends WithSuppression<Subscriber>>(rows: T[]): Promise<(T & { events: SubscriberEvent[] })[]> => {
    const events = rows.length > 0 ? await (await deps.events()).ofSubscribers(rows.map((s) => s.id)) : new Map<number, SubscriberEvent[]>();
    return rows.map((s) => ({ ...s, events: events.get(s.id) ?? [] }));
  };
  const findByAddress = async (email: unknown): Promise<Subscriber> => {
    const address = parseEmailAddress(email);
    if ('error' in address) throw new InputError(address.error);
    const subscriber = await (await deps.subscribers()).findByEmail(address.key);
    if (!subscriber) throw new NotFoundError(`no subscriber with the address ${address.address}`);
    return subscriber;
  };
  return {
    async add(request) {
      return withSuppression(await (await deps.subscriptions()).add(request));
    },
    async import(request) {
      return importSubscribersCsv(request.open, {
        repo: await deps.subscribers(),
        lists: (await deps.content()).site.lists,
        list: request.list,
        confirmed: request.confirmed,
        frequency: request.frequency,
        now: deps.now(),
        source: 'import',
        ...(request.onProgress ? { onProgress: request.onProgress } : {}),
      });
    },
    async export(out, options = {}) {
      await exportSubscribersCsv(await deps.subscribers(), out, { list: options.list, end: options.end ?? true });
    },
    async page(options) {
      const repo = await deps.subscribers();
      const result = await repo.page(options);
      return { total: result.total, page: result.page, perPage: result.perPage, subscribers: await withHistory(await repo.attachSuppressions(result.subscribers)) };
    },
    async *batches(options) {
      const repo = await deps.subscribers();
      const size = options.size ?? 1000;
      for (let afterId = 0; ; ) {
        const batch = await repo.batchAfter(afterId, size, options.list);
        const shown = options.status ? batch.filter((s) => s.status === options.status) : batch;
        if (shown.length > 0) yield await withHistory(await repo.attachSuppressions(shown));
        if (batch.length < size) return;
        afterId = batch[batch.length - 1]!.id;
      }
    },
    async deliveries(email, limit = 50) {
      const subscriber = await findByAddress(email);
      return (await deps.deliveries()).ofSubscriber(subscriber.id, limit);
    },
    async find(email) {
      return (await withHistory([await withSuppression(await findByAddress(email))]))[0]!;
    },
    async remove(email) {
      const subscriber = await findByAddress(email);
      if (!(await (await deps.subscribers()).remove(subscriber.id))) throw new NotFoundError(`no subscriber with the address ${subscriber.email}`);
      return subscriber;
    },
    async unsuppress(email) {
      return liftSuppression(await deps.subscribers(), email, deps.now());
    },
    async unsuppressEdition(id) {
      return liftEditionSuppressions({ store: await deps.subscribers(), editions: await deps.editions() }, id, deps.now());
    },
    async counts() {
      const counts = await (await deps.subscribers()).countByStatus();
      return { ...counts, total: Object.values(counts).reduce((sum, n) => sum + n, 0) };
    },
    async knownList(slug, field) {
      const known = (await deps.content()).site.lists;
      if (!known.some((l) => l.slug === slug)) throw new InputError(`${field}: unknown list "${slug.slice(0, 60)}" (known: ${known.map((l) => l.slug).join(', ')})`);
      return slug;
    },
  };
}
