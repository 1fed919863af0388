import type { EventAction, SubscriberEventType } from '../model/subscriber-event.ts';
import type { InboundReport, ReportHandler, ReportOutcome } from './inbound-report.ts';

/** The delivery a report names, with what it was: its edition's list and its subscriber. */
export interface DeliveryTarget {
  deliveryId: number;
  editionId: number;
  listSlug: string;
  subscriberId: number;
  emailKey: string;
}

/** A subscriber found by address or id, when no delivery is known. */
export interface SubscriberTarget {
  subscriberId: number;
  emailKey: string;
}

/** What recording an event must also do, in the same transaction. */
export type EventPlan =
  /** Suppress the address and set the subscriber's status (bounced, or complained with every list left). */
  | { kind: 'suppress'; reason: 'bounced' | 'complained' }
  /** Count it; suppress as bounced once `limit` soft bounces fall among the last `sends` sends. */
  | { kind: 'soft'; limit: number; sends: number }
  /** Leave one list (the delivery's), or every list when null. */
  | { kind: 'unsubscribe'; listSlug: string | null };

/** An event to record, with who it is about. */
export interface NewSubscriberEvent {
  subscriberId: number;
  emailKey: string;
  type: SubscriberEventType;
  source: InboundReport['source'];
  deliveryId: number | null;
  editionId: number | null;
  listSlug: string | null;
  status: string | null;
  diagnostic: string | null;
  reportId: string;
  /** Unique per event: the same report twice is refused by it. */
  dedupeKey: string;
  occurredAt: Date;
}

/** What the report handler needs of the store. */
export interface SubscriberEventRecords {
  deliveryTarget(deliveryId: number): Promise<DeliveryTarget | undefined>;
  subscriberTarget(which: { id: number } | { emailKey: string }): Promise<SubscriberTarget | undefined>;
  /** Records the event and carries out its plan atomically; 'duplicate' when the event was recorded before. */
  apply(event: NewSubscriberEvent, plan: EventPlan, now: Date): Promise<EventAction | 'duplicate'>;
}

/** What the report handler is given. */
export interface ReportHandlerDeps {
  events: SubscriberEventRecords;
  /** An address is suppressed after `limit` soft bounces among its last `sends` sends. */
  softBounces: { limit: number; sends: number };
  now: () => Date;
  /** Told of each report acted on, for the process's log. */
  log?: (outcome: ReportOutcome & { report: InboundReport; action?: EventAction }) => void;
}

// Providers name the address they sent to: when it is not the named delivery's, the Message-ID
// was not ours to trust, and the address wins. A signed VERP token names its delivery for sure.
const SIGNED_SOURCES = new Set<InboundReport['source']>(['smtp', 'mailbox']);

/** Turns a report into an event on the subscriber it concerns, and acts on it: the one handler every way in feeds. */
export function createReportHandler(deps: ReportHandlerDeps): ReportHandler {
  const { events } = deps;

  const target = async (report: InboundReport): Promise<(SubscriberTarget & Partial<DeliveryTarget>) | undefined> => {
    const emailKey = report.email?.trim().toLowerCase() || undefined;
    if (report.deliveryId !== null) {
      const delivery = await events.deliveryTarget(report.deliveryId);
      if (delivery && (SIGNED_SOURCES.has(report.source) || !emailKey || delivery.emailKey === emailKey)) return delivery;
    }
    if (report.subscriberId !== undefined) return events.subscriberTarget({ id: report.subscriberId });
    return emailKey ? events.subscriberTarget({ emailKey }) : undefined;
  };

  const plan = (type: SubscriberEventType, listSlug: string | null): EventPlan => {
    switch (type) {
      case 'hard-bounce':
        return { kind: 'suppress', reason: 'bounced' };
      case 'soft-bounce':
        return { kind: 'soft', ...deps.softBounces };
      case 'complaint':
        return { kind: 'suppress', reason: 'complained' };
      case 'unsubscribe':
        return { kind: 'unsubscribe', listSlug };
    }
  };

  return {
    async handle(report) {
      const found = await target(report);
      if (!found) {
        const outcome: ReportOutcome = { result: 'ignored', reason: report.deliveryId !== null ? `no delivery ${report.deliveryId}` : 'no subscriber with that address' };
        deps.log?.({ ...outcome, report });
        return outcome;
      }
      const deliveryId = found.deliveryId ?? null;
      const listSlug = found.listSlug ?? null;
      const event: NewSubscriberEvent = {
        subscriberId: found.subscriberId,
        emailKey: found.emailKey,
        type: report.type,
        source: report.source,
        deliveryId,
        editionId: found.editionId ?? null,
        listSlug,
        status: report.status,
        diagnostic: report.diagnostic?.slice(0, 1000) ?? null,
        reportId: report.reportId.slice(0, 500),
        // A delivery bounces, complains or unsubscribes once, whichever way the news came.
        dedupeKey: deliveryId !== null ? `d${deliveryId}:${report.type}` : `s${found.subscriberId}:${report.type}:${report.source}:${report.reportId}`.slice(0, 600),
        occurredAt: report.at,
      };
      const action = await events.apply(event, plan(report.type, listSlug), deps.now());
      const outcome: ReportOutcome = action === 'duplicate' ? { result: 'duplicate' } : { result: 'recorded' };
      deps.log?.({ ...outcome, report, ...(action === 'duplicate' ? {} : { action }) });
      return outcome;
    },
  };
}
