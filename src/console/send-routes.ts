import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { InputError } from '../errors.ts';
import { parseInstant } from '../schedule/parse-instant.ts';
import type { ConsoleContext } from './console-plugin.ts';
import { field, idParam, zoneOf, type Form } from './console-request.ts';
import { wallClock } from './console-views.ts';

type Id = { Params: { id: string } };

/** The day, time and zone a schedule form sends, as typed. */
interface ScheduleAsked extends Record<string, string> {
  date: string;
  time: string;
  zone: string;
}

function scheduleAsked(form: Form | undefined): ScheduleAsked {
  return { date: field(form, 'date') ?? '', time: field(form, 'time') ?? '', zone: field(form, 'zone') ?? '' };
}

/** The instant asked for; InputError naming the field when it is missing, not a time, or past. */
function checkScheduleAsked(asked: ScheduleAsked, now: Date): Date {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(asked.date)) throw new InputError('day: choose the day to send it on');
  if (!/^\d{2}:\d{2}(:\d{2})?$/.test(asked.time)) throw new InputError('time: choose the time to send it at (HH:MM)');
  if (!asked.zone) throw new InputError('time zone: choose the zone the time is in');
  const instant = parseInstant(`${asked.date}T${asked.time}[${asked.zone}]`);
  if (instant.getTime() <= now.getTime()) throw new InputError(`${asked.date} ${asked.time} in ${asked.zone} is in the past: choose a later time`);
  return instant;
}
type EditionPage = (request: FastifyRequest, reply: FastifyReply, id: number, flash?: { tone: 'ok' | 'error'; text: string }, status?: number, typed?: Record<string, string>) => Promise<FastifyReply>;

const count = (n: number, one: string, many = `${one}s`) => `${n.toLocaleString('en')} ${n === 1 ? one : many}`;

/**
 * What an editor does with an edition: test it, send it, schedule it, pause, resume, retry, cancel.
 * Each that reaches subscribers or cannot be undone asks first, saying how many it concerns.
 */
export function registerSendRoutes(admin: FastifyInstance, context: ConsoleContext, editionPage: EditionPage): void {
  const { app, kit } = context;
  const back = (id: number) => `/admin/editions/${id}`;
  const confirm = (request: FastifyRequest, reply: FastifyReply, id: number, page: { heading: string; lines: string[]; action: string; button: string; danger?: boolean; hidden?: { name: string; value: string }[] }) =>
    kit.page(request, reply, 'confirm', { title: page.heading, section: 'editions' }, { ...page, cancelHref: back(id) });

  admin.post<Id & { Body: Form }>('/editions/:id/test', async (request, reply) => {
    const id = idParam(request.params.id, 'edition');
    const to = (field(request.body, 'to') ?? '').split(/[\s,;]+/).filter(Boolean);
    try {
      const sent = await app.editions.sendTests(id, to);
      request.log.info({ edition: id, to: sent.to.length }, 'test sent from the console');
      return kit.redirect(request, reply, back(id), { tone: 'ok', text: `Test sent to ${sent.to.join(', ')} (through ${sent.transport}).` });
    } catch (error) {
      if (!(error instanceof InputError)) throw error;
      return editionPage(request, reply, id, { tone: 'error', text: `No test was sent: ${error.message}` }, 400, { to: field(request.body, 'to') ?? '' });
    }
  });

  admin.get<Id>('/editions/:id/send', async (request, reply) => {
    const id = idParam(request.params.id, 'edition');
    const edition = await app.editions.find(id);
    if (edition.status !== 'draft') {
      return kit.redirect(request, reply, back(id), { tone: 'error', text: `Edition ${id} is ${edition.status}: it has been sent already (resume, retry or cancel it here).` });
    }
    const audience = await app.editions.audienceSize(id);
    return confirm(request, reply, id, {
      heading: `Send edition ${id} now?`,
      lines: [`“${edition.subject}” goes to ${count(audience, 'subscriber')} of the list ${edition.listSlug}${edition.audience === 'all' ? '' : ` (${edition.audience} readers)`}.`, 'Once it has started, you can pause or cancel it, but what has gone out cannot be called back.'],
      action: `/admin/editions/${id}/send`,
      button: `Send to ${count(audience, 'subscriber')}`,
    });
  });

  admin.post<Id>('/editions/:id/send', async (request, reply) => {
    const id = idParam(request.params.id, 'edition');
    const result = await app.editions.send(id);
    // Sent now, it must not be sent again when its schedule comes.
    await app.schedules.cancelOneOffsOf(id);
    request.log.info({ edition: id, added: result.added, user: request.consoleUser?.id }, 'send started from the console');
    return kit.redirect(request, reply, back(id), { tone: 'ok', text: `Sending to ${count(result.added, 'subscriber')}: ${count(result.queued, 'message')} waiting for a worker.` });
  });

  // The confirmation is a GET (it changes nothing), so Back and reload work and the form keeps what was typed.
  admin.get<Id & { Querystring: Form }>('/editions/:id/schedule', async (request, reply) => {
    const id = idParam(request.params.id, 'edition');
    const asked = scheduleAsked(request.query);
    try {
      const instant = checkScheduleAsked(asked, app.now());
      const edition = await app.editions.find(id);
      const audience = await app.editions.audienceSize(id);
      const zone = zoneOf(request);
      const lines = [
        `“${edition.subject}” will go out on ${wallClock(instant, asked.zone)} ${asked.zone}${zone === asked.zone || zone === 'UTC' ? '' : ` (${wallClock(instant, zone)} ${zone}, your time)`}, which is ${instant.toISOString().slice(0, 16).replace('T', ' ')} UTC.`,
        `That is ${count(audience, 'subscriber')} of the list ${edition.listSlug} as of now; anyone who joins before then gets it too.`,
      ];
      // Two sends to one list within the hour would reach the same readers twice.
      for (const other of await app.schedules.list()) {
        const next = other.next_fire ? Date.parse(other.next_fire.at) : NaN;
        if (other.status === 'active' && other.list === edition.listSlug && other.edition_id !== id && Math.abs(next - instant.getTime()) <= 60 * 60_000) {
          lines.push(`Careful: schedule ${other.id} (${other.kind === 'recurring' ? 'a recurring digest' : `edition ${other.edition_id}`}) also sends to ${edition.listSlug} at ${wallClock(new Date(next), asked.zone)} ${asked.zone}.`);
        }
      }
      return confirm(request, reply, id, {
        heading: `Schedule edition ${id}?`,
        lines,
        action: `/admin/editions/${id}/schedule`,
        button: `Schedule for ${count(audience, 'subscriber')}`,
        hidden: [
          { name: 'date', value: asked.date },
          { name: 'time', value: asked.time },
          { name: 'zone', value: asked.zone },
        ],
      });
    } catch (error) {
      if (!(error instanceof InputError)) throw error;
      return kit.redirect(request, reply, `${back(id)}?${new URLSearchParams(asked).toString()}#schedule-heading`, { tone: 'error', text: `Not scheduled: ${error.message}` });
    }
  });

  admin.post<Id & { Body: Form }>('/editions/:id/schedule', async (request, reply) => {
    const id = idParam(request.params.id, 'edition');
    const asked = scheduleAsked(request.body);
    try {
      checkScheduleAsked(asked, app.now());
      const { schedule, view } = await app.schedules.add({ edition: id, at: `${asked.date}T${asked.time}[${asked.zone}]` });
      request.log.info({ edition: id, schedule: schedule.id }, 'send scheduled from the console');
      const when = view.next_fire ? `${wallClock(new Date(view.next_fire.at), asked.zone)} ${asked.zone}` : asked.date;
      return kit.redirect(request, reply, back(id), { tone: 'ok', text: `Scheduled for ${when} (schedule ${schedule.id}).` });
    } catch (error) {
      if (!(error instanceof InputError)) throw error;
      return kit.redirect(request, reply, `${back(id)}?${new URLSearchParams(asked).toString()}#schedule-heading`, { tone: 'error', text: `Not scheduled: ${error.message}` });
    }
  });

  admin.get<Id>('/editions/:id/pause', async (request, reply) => {
    const id = idParam(request.params.id, 'edition');
    const report = await app.editions.status(id);
    return confirm(request, reply, id, {
      heading: `Pause edition ${id}?`,
      lines: [`${count(report.queued, 'message')} not sent yet will wait; nobody gets it twice and nobody is skipped when you resume.`],
      action: `/admin/editions/${id}/pause`,
      button: 'Pause the send',
    });
  });

  admin.post<Id>('/editions/:id/pause', async (request, reply) => {
    const id = idParam(request.params.id, 'edition');
    const who = request.consoleUser?.email ?? 'an editor';
    await app.editions.pause(id, `paused by ${who} in the console: resume it from the edition's page`);
    return kit.redirect(request, reply, back(id), { tone: 'ok', text: 'Paused. Messages already with the mail server still go out; the rest wait.' });
  });

  for (const action of ['resume', 'retry'] as const) {
    admin.get<Id>(`/editions/:id/${action}`, async (request, reply) => {
      const id = idParam(request.params.id, 'edition');
      const report = await app.editions.status(id);
      const lines =
        action === 'resume'
          ? [`${count(report.queued, 'message')} still to send will go out again${report.lastError ? `; it was paused because: ${report.lastError}` : ''}.`]
          : [`${count(report.failed, 'failed delivery', 'failed deliveries')} will be tried again with fresh attempts. Nobody who got it already gets it twice.`];
      return confirm(request, reply, id, { heading: `${action === 'resume' ? 'Resume' : 'Retry'} edition ${id}?`, lines, action: `/admin/editions/${id}/${action}`, button: action === 'resume' ? 'Resume the send' : 'Retry the failed ones' });
    });
    admin.post<Id>(`/editions/:id/${action}`, async (request, reply) => {
      const id = idParam(request.params.id, 'edition');
      const result = await app.editions.send(id);
      return kit.redirect(request, reply, back(id), { tone: 'ok', text: `${action === 'resume' ? 'Resumed' : 'Retrying'}: ${count(result.queued, 'message')} to send.` });
    });
  }

  admin.get<Id>('/editions/:id/cancel', async (request, reply) => {
    const id = idParam(request.params.id, 'edition');
    const [edition, report] = await Promise.all([app.editions.find(id), app.editions.status(id)]);
    const lines =
      edition.status === 'draft'
        ? ['The draft will never be sent (a schedule for it is cancelled too). This cannot be undone.']
        : [`${count(report.queued, 'message')} not sent yet will be skipped (a worker may still send the few it is holding); the ${count(report.sent, 'reader')} who got it keep it. This cannot be undone.`];
    return confirm(request, reply, id, { heading: `Cancel edition ${id}?`, lines, action: `/admin/editions/${id}/cancel`, button: 'Cancel the edition', danger: true });
  });

  admin.post<Id>('/editions/:id/cancel', async (request, reply) => {
    const id = idParam(request.params.id, 'edition');
    const who = request.consoleUser?.email ?? 'an editor';
    await app.editions.cancel(id, `cancelled by ${who} in the console`);
    // A one-off schedule of a cancelled edition would only fail when it fires.
    await app.schedules.cancelOneOffsOf(id);
    return kit.redirect(request, reply, back(id), { tone: 'ok', text: `Edition ${id} is cancelled.` });
  });
}
