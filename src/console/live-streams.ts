import type { FastifyReply, FastifyRequest } from 'fastify';
import type { EditionStatusReport } from '../edition/edition-status.ts';
import type { ScheduleView } from '../schedule/manage-schedules.ts';
import { durationText } from './console-views.ts';

/** How often a stream sends a fresh reading. */
export const LIVE_INTERVAL_MS = 1000;
/** Readings between checks that the viewer is still signed in. */
const RECHECK_EVERY = 15;

/**
 * Server-Sent Events streams: each sends what `read` returns now, then again every interval, until the
 * client goes away or the server closes. A failed read is sent as an `error` event and tried again.
 */
export class LiveStreams {
  private readonly open = new Set<() => void>();

  /**
   * `allowed` is asked again every RECHECK_EVERY readings: a stream ends soon after its viewer signs
   * out, is removed or has their password reset, as their pages would.
   */
  stream(request: FastifyRequest, reply: FastifyReply, read: () => Promise<unknown>, allowed: () => Promise<boolean>, intervalMs = LIVE_INTERVAL_MS): void {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      // A proxy that buffers would hold the events back until the stream ends.
      'X-Accel-Buffering': 'no',
      Connection: 'keep-alive',
    });
    let timer: NodeJS.Timeout | undefined;
    let stopped = false;
    const stop = () => {
      if (stopped) return;
      stopped = true;
      clearTimeout(timer);
      this.open.delete(stop);
      res.end();
    };
    this.open.add(stop);
    request.raw.on('close', stop);
    // The browser waits this long before reconnecting after a drop.
    res.write('retry: 3000\n\n');
    let ticks = 0;
    const tick = async () => {
      if (++ticks % RECHECK_EVERY === 0 && !(await allowed().catch(() => false))) return stop();
      try {
        const data = await read();
        if (!stopped) res.write(`data: ${JSON.stringify(data)}\n\n`);
      } catch (error) {
        request.log.warn({ err: error }, 'live stream read failed');
        if (!stopped) res.write(`event: error\ndata: ${JSON.stringify({ message: 'reading the progress failed; trying again' })}\n\n`);
      }
      if (!stopped) timer = setTimeout(() => void tick(), intervalMs);
    };
    void tick();
  }

  /** Ends every open stream (the server is closing). */
  closeAll(): void {
    for (const stop of [...this.open]) stop();
  }
}

/** Editions as listings show them: a draft with an active one-off schedule carries when it goes out. */
export function withScheduledAt<E extends { id: number }>(editions: E[], schedules: readonly ScheduleView[]): (E & { scheduledAt: string | undefined; scheduledZone: string | undefined })[] {
  const due = new Map(schedules.filter((s) => s.kind === 'one-off' && s.status === 'active' && s.edition_id !== null && s.next_fire).map((s) => [s.edition_id!, s.next_fire!]));
  return editions.map((e) => ({ ...e, scheduledAt: due.get(e.id)?.at, scheduledZone: due.get(e.id)?.timezone }));
}

/** A send's progress as the console shows it and its live stream sends it. */
export interface SendProgress {
  id: number;
  subject: string;
  list: string;
  status: string;
  total: number;
  /** Deliveries done one way or another (sent, failed, bounced, skipped). */
  done: number;
  sent: number;
  failed: number;
  bounced: number;
  skipped: number;
  queued: number;
  percent: number;
  /** "12.5 messages/s". */
  rate: string;
  /** "about 6 min left", or empty. */
  eta: string;
  stalled: boolean;
  problem: string | null;
  unsubscribes: number;
  complaints: number;
}

/** The console's reading of a status report. */
export function sendProgress(report: EditionStatusReport): SendProgress {
  const done = report.sent + report.failed + report.bounced + report.skipped;
  return {
    id: report.id,
    subject: report.subject,
    list: report.list,
    status: report.status,
    total: report.total,
    done,
    sent: report.sent,
    failed: report.failed,
    bounced: report.bounced,
    skipped: report.skipped,
    queued: report.queued,
    percent: report.total > 0 ? Math.floor((done / report.total) * 100) : report.status === 'sent' ? 100 : 0,
    rate: `${report.rate >= 10 ? Math.round(report.rate) : report.rate.toFixed(1)} messages/s`,
    eta: report.status === 'sending' && report.etaSeconds !== null ? `about ${durationText(report.etaSeconds)} left` : '',
    stalled: report.stalled,
    problem: report.lastError,
    unsubscribes: report.cameBack.unsubscribes,
    complaints: report.cameBack.complaints,
  };
}
