import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ConflictError, InputError, NotFoundError } from '../errors.ts';
import { AUDIENCES } from '../model/edition.ts';
import { compileCron } from '../schedule/cron-time.ts';
import { fireJson, type ScheduleRequest, type ScheduleView } from '../schedule/manage-schedules.ts';
import { canonicalTimeZone } from '../schedule/zone-time.ts';
import type { ConsoleContext } from './console-plugin.ts';
import { timeZoneOptions } from './zone-options.ts';
import { field, idParam, zoneOf, type Form } from './console-request.ts';
import { wallClock } from './console-views.ts';
import { cronOfChoice, describeCron, WEEKDAYS, type CronChoice } from './cron-words.ts';

/** The three forms of the new-schedule page. */
type FormName = 'oneOff' | 'recurring' | 'onPublish';

/** One form as shown again: what was typed, and why it was refused (or the preview asked for). */
interface FormState {
  values: Record<string, string>;
  error?: string;
  /** A duplicate was refused: offer to add it anyway. */
  conflict?: boolean;
  preview?: { cron: string; description: string; zone: string; fires: { local: string; utc: string }[] };
}

const FIELDS: Record<FormName, string[]> = {
  oneOff: ['edition', 'date', 'time', 'zone', 'allow_duplicate'],
  recurring: ['list', 'audience', 'mode', 'time', 'weekday', 'cron', 'zone', 'allow_duplicate'],
  onPublish: ['list'],
};

/** GET /admin/schedules, /schedules/new, /schedules/:id; POST the three kinds; GET+POST /schedules/:id/cancel. */
export function registerScheduleRoutes(admin: FastifyInstance, context: ConsoleContext): void {
  const { app, kit } = context;
  const frame = (title: string) => ({ title, section: 'schedules' });

  admin.get('/schedules', async (request, reply) => {
    const zone = zoneOf(request);
    const views = (await app.schedules.list()).sort(listOrder);
    return kit.page(request, reply, 'schedules', frame('Schedules'), { schedules: views.map((v) => row(v, zone)), zone });
  });

  admin.get<{ Querystring: { edition?: string } }>('/schedules/new', async (request, reply) => {
    const edition = typeof request.query.edition === 'string' ? request.query.edition : '';
    return newPage(request, reply, { oneOff: { values: { edition } } }, 200);
  });

  // A one-off goes through the edition's own confirmation, which says how many it reaches and when in each zone.
  admin.post<{ Body: Form }>('/schedules/one-off', async (request, reply) => {
    const values = valuesOf(request.body, 'oneOff');
    if (!/^[1-9][0-9]{0,9}$/.test(values.edition ?? '')) return newPage(request, reply, { oneOff: { values, error: 'edition: choose a draft edition' } }, 400);
    const asked = new URLSearchParams({ date: values.date ?? '', time: values.time ?? '', zone: values.zone ?? '' });
    return reply.redirect(`/admin/editions/${values.edition}/schedule?${asked.toString()}`, 303);
  });

  admin.post<{ Body: Form }>('/schedules/recurring', async (request, reply) => {
    const values = valuesOf(request.body, 'recurring');
    if (field(request.body, 'action') === 'preview') {
      try {
        return await newPage(request, reply, { recurring: { values, preview: preview(values, app.now()) } }, 200);
      } catch (error) {
        if (!(error instanceof InputError)) throw error;
        return newPage(request, reply, { recurring: { values, error: error.message } }, 400);
      }
    }
    return attempt(request, reply, 'recurring', values, () => ({
      list: values.list || undefined,
      cron: cronOfChoice(choiceOf(values)),
      tz: values.zone || undefined,
      digest: true,
      audience: values.audience || undefined,
      allowDuplicate: values.allow_duplicate === 'on',
    }));
  });

  admin.post<{ Body: Form }>('/schedules/on-publish', async (request, reply) => {
    const values = valuesOf(request.body, 'onPublish');
    return attempt(request, reply, 'onPublish', values, () => ({ list: values.list || undefined, onPublish: true }));
  });

  admin.get<{ Params: { id: string } }>('/schedules/:id', async (request, reply) => {
    const id = idParam(request.params.id, 'schedule id');
    const zone = zoneOf(request);
    const [{ view, fires, stories }, [next]] = await Promise.all([app.schedules.show(id, 50), app.schedules.next(id, 5)]);
    const upcoming = (next?.fires ?? []).map((f) => f.at);
    return kit.page(request, reply, 'schedule', frame(`Schedule ${id}`), {
      schedule: row(view, zone),
      upcoming,
      fires: fires.map(fireJson),
      stories,
      zone,
    });
  });

  admin.get<{ Params: { id: string } }>('/schedules/:id/cancel', async (request, reply) => {
    const id = idParam(request.params.id, 'schedule id');
    const { view } = await app.schedules.show(id, 1);
    if (view.status !== 'active') throw new InputError(`schedule ${id} is already ${view.status}`);
    return kit.page(request, reply, 'confirm', frame(`Cancel schedule ${id}`), {
      heading: `Cancel schedule ${id}?`,
      lines: [
        `${kindName(view.kind)} to ${view.list}: ${summary(row(view, zoneOf(request)))}.`,
        'It will not fire again, in any scheduler. Editions it already made are left as they are (manage them under Editions).',
      ],
      action: `/admin/schedules/${id}/cancel`,
      button: 'Cancel schedule',
      danger: true,
      cancelHref: `/admin/schedules/${id}`,
    });
  });

  admin.post<{ Params: { id: string } }>('/schedules/:id/cancel', async (request, reply) => {
    const id = idParam(request.params.id, 'schedule id');
    await app.schedules.cancel(id);
    return kit.redirect(request, reply, `/admin/schedules/${id}`, { tone: 'ok', text: `Schedule ${id} cancelled: it will not fire again.` });
  });

  /** Adds a schedule and goes to its page; a refused one shows its form again with the reason and the values kept. */
  async function attempt(request: FastifyRequest, reply: FastifyReply, which: FormName, values: Record<string, string>, build: () => ScheduleRequest): Promise<FastifyReply> {
    try {
      const { schedule, view, notes } = await app.schedules.add(build());
      request.log.info({ schedule: schedule.id, kind: schedule.kind }, 'schedule added');
      return kit.redirect(request, reply, `/admin/schedules/${schedule.id}`, { tone: 'ok', text: addedText(view, notes) });
    } catch (error) {
      if (!(error instanceof InputError || error instanceof ConflictError || error instanceof NotFoundError)) throw error;
      const conflict = error instanceof ConflictError;
      return newPage(request, reply, { [which]: { values, error: error.message, conflict } }, conflict ? 409 : 400);
    }
  }

  /** The new-schedule page: its three forms, each with its defaults unless given again. */
  async function newPage(request: FastifyRequest, reply: FastifyReply, states: Partial<Record<FormName, FormState>>, status: number): Promise<FastifyReply> {
    const [content, editions] = await Promise.all([app.content(), app.editions.list(100)]);
    const defaultZone = request.consoleUser?.timeZone ?? content.site.timezone;
    const lists = content.site.lists.map((l) => ({ value: l.slug, label: `${l.name} (${l.slug})` }));
    const drafts = editions.filter((e) => e.status === 'draft').map((e) => ({ value: String(e.id), label: `#${e.id} ${e.subject} (${e.listSlug}, ${e.audience})` }));
    const oneOff = { ...states.oneOff, values: { zone: defaultZone, ...states.oneOff?.values } };
    const recurring = { ...states.recurring, values: { mode: 'weekly', weekday: '1', time: '07:00', zone: defaultZone, audience: 'all', list: lists[0]?.value ?? '', ...states.recurring?.values } };
    const onPublish = { values: {}, ...states.onPublish };
    const v = (state: { values: Record<string, string> }, name: string) => state.values[name] ?? '';
    return kit.page(request, reply, 'schedule-new', frame('New schedule'), {
      oneOff: { ...oneOff, editions: options(drafts, v(oneOff, 'edition')), zones: timeZoneOptions(v(oneOff, 'zone')), zone: v(oneOff, 'zone') },
      recurring: {
        ...recurring,
        lists: options(lists, v(recurring, 'list')),
        audiences: options(AUDIENCES.map((a) => ({ value: a, label: a })), v(recurring, 'audience')),
        weekdays: options(WEEKDAYS.map((d) => ({ value: d.value, label: d.name })), v(recurring, 'weekday')),
        zones: timeZoneOptions(v(recurring, 'zone')),
        zone: v(recurring, 'zone'),
        mode: { [v(recurring, 'mode') || 'weekly']: true },
      },
      onPublish: { ...onPublish, lists: options(lists, v(onPublish, 'list')) },
      userZone: request.consoleUser?.timeZone,
      siteZone: content.site.timezone,
    }, status);
  }
}

/** The text fields of one form, each trimmed ('' when absent). */
function valuesOf(form: Form | undefined, which: FormName): Record<string, string> {
  return Object.fromEntries(FIELDS[which].map((name) => [name, (field(form, name) ?? '').trim()]));
}

function choiceOf(values: Record<string, string>): CronChoice {
  const mode = values.mode || (values.cron ? 'cron' : '');
  if (mode !== 'daily' && mode !== 'weekly' && mode !== 'cron') throw new InputError('when: choose daily, weekly or a cron expression');
  return { mode, time: values.time, weekday: values.weekday, cron: values.cron };
}

/** What a recurring form would do: its expression in words and its next five fires (validation stays in the use case). */
function preview(values: Record<string, string>, now: Date): FormState['preview'] {
  const cron = cronOfChoice(choiceOf(values));
  if (!values.zone) throw new InputError('time zone: choose the zone the times are in');
  const zone = canonicalTimeZone(values.zone);
  const fires = compileCron(cron, zone).upcoming(now, 5);
  if (fires.length === 0) throw new InputError(`cron expression "${cron}" never fires again`);
  return { cron, zone, description: describeCron(cron) ?? cron, fires: fires.map((d) => ({ local: `${wallClock(d, zone)} ${zone}`, utc: `${wallClock(d, 'UTC')} UTC` })) };
}

/** A schedule as the pages show it: its view, its zone, and what it does in words. */
function row(view: ScheduleView, userZone: string) {
  const zone = view.timezone ?? 'UTC';
  return {
    ...view,
    zone,
    userZone,
    kindName: kindName(view.kind),
    active: view.status === 'active',
    words: view.kind === 'recurring' && view.cron ? describeCron(view.cron) : undefined,
  };
}

/** One line: what a schedule does and when. */
function summary(schedule: ReturnType<typeof row>): string {
  if (schedule.kind === 'one-off') return `edition ${schedule.edition_id} at ${wallClock(new Date(schedule.at!), schedule.zone)} ${schedule.zone}`;
  if (schedule.kind === 'recurring') return `a digest ${schedule.words ? schedule.words.charAt(0).toLowerCase() + schedule.words.slice(1) : schedule.cron}, ${schedule.zone} time (${schedule.audience})`;
  return 'each newly published story to instant subscribers';
}

function kindName(kind: ScheduleView['kind']): string {
  return kind === 'one-off' ? 'One-off send' : kind === 'recurring' ? 'Recurring digest' : 'On publish';
}

/** The flash after adding: when it fires next, in its zone. */
function addedText(view: ScheduleView, notes: string[]): string {
  const next = view.next_fire
    ? `next fire ${wallClock(new Date(view.next_fire.at), view.next_fire.timezone)} ${view.next_fire.timezone}`
    : 'each story published from now on goes to the list’s instant subscribers';
  return [`Schedule ${view.id} added: ${next}.`, ...notes.map((n) => `Note: ${n}.`)].join(' ');
}

/** Active schedules first, soonest next fire first; then the rest, latest change first. */
function listOrder(a: ScheduleView, b: ScheduleView): number {
  const rank = (s: ScheduleView) => (s.status === 'active' ? 0 : 1);
  if (rank(a) !== rank(b)) return rank(a) - rank(b);
  if (a.status === 'active') {
    const next = (s: ScheduleView) => (s.next_fire_at ? Date.parse(s.next_fire_at) : Infinity);
    return next(a) - next(b) || a.id - b.id;
  }
  return Date.parse(b.updated_at) - Date.parse(a.updated_at) || b.id - a.id;
}

function options(items: { value: string; label: string }[], selected: string) {
  return items.map((item) => ({ ...item, selected: item.value === selected }));
}
