import type { FastifyInstance } from 'fastify';
import type { App } from '../app.ts';
import { ContentError, formatContentIssue } from '../errors.ts';
import type { ConsoleContext } from './console-plugin.ts';
import { stillSignedIn, zoneOf } from './console-request.ts';
import { sendProgress, withScheduledAt, type SendProgress } from './live-streams.ts';

/** A send that finished this recently still shows on the dashboard, so its bar is seen reaching the end. */
const JUST_FINISHED_MS = 30 * 60_000;

/** GET /admin (the dashboard) and GET /admin/live (its sends, as Server-Sent Events). */
export function registerDashboardRoutes(admin: FastifyInstance, context: ConsoleContext): void {
  const { app, kit, live } = context;

  admin.get('/', async (request, reply) => {
    const zone = zoneOf(request);
    const [sends, schedules, recent, alerts] = await Promise.all([currentSends(app), app.schedules.list(), app.editions.recent(10), contentAlerts(app)]);
    const upcoming = schedules
      .filter((s) => s.status === 'active' && s.next_fire)
      .sort((a, b) => Date.parse(a.next_fire!.at) - Date.parse(b.next_fire!.at))
      .map((s) => ({ ...s, zone: s.next_fire!.timezone }));
    const fireAlerts = schedules
      .filter((s) => s.last_fire && ['failed', 'missed', 'retrying'].includes(s.last_fire.status))
      .map((s) => ({ tone: s.last_fire!.status === 'retrying' ? 'warn' : 'error', href: `/admin/schedules/${s.id}`, text: `Schedule ${s.id} (${s.kind}, ${s.list}): the fire due ${s.last_fire!.fire_at} ${s.last_fire!.status}${s.last_fire!.detail ? `: ${s.last_fire!.detail}` : ''}` }));
    const pauseAlerts = sends
      .filter((s) => s.status === 'paused')
      .map((s) => ({ tone: 'warn', href: `/admin/editions/${s.id}`, text: `Edition ${s.id} “${s.subject}” is paused: ${s.problem ?? 'no reason recorded'}` }));
    return kit.page(request, reply, 'dashboard', { title: 'Dashboard', section: 'dashboard' }, {
      sends,
      upcoming,
      recent: withScheduledAt(recent, schedules),
      alerts: [...fireAlerts, ...pauseAlerts, ...alerts],
      zone,
      live: '/admin/live',
    });
  });

  admin.get('/live', async (request, reply) => {
    live.stream(request, reply, async () => ({ sends: await currentSends(app) }), () => stillSignedIn(request, (id) => app.users.findById(id)));
    return reply;
  });
}

/** Sends in progress or paused, and those that finished in the last half hour, newest first. */
export async function currentSends(app: App): Promise<(SendProgress & { finished: boolean })[]> {
  const now = app.now().getTime();
  const editions = (await app.editions.list(100)).filter(
    (e) => e.status === 'sending' || e.status === 'paused' || (e.completedAt !== null && e.enqueuedAt !== null && now - Date.parse(e.completedAt) < JUST_FINISHED_MS),
  );
  return Promise.all(
    editions.map(async (e) => {
      const progress = sendProgress(await app.editions.status(e.id));
      return { ...progress, finished: e.status !== 'sending' && e.status !== 'paused' };
    }),
  );
}

/** Story files left out of content/ (with file:line and what is wrong), or content/ that cannot load at all. */
async function contentAlerts(app: App): Promise<{ tone: string; href: string; text: string }[]> {
  try {
    const content = await app.content();
    return content.problems.map((issue) => ({ tone: 'error', href: '/admin/stories', text: `Left out: ${formatContentIssue(issue)}` }));
  } catch (error) {
    if (!(error instanceof ContentError)) throw error;
    return error.issues.map((issue) => ({ tone: 'error', href: '/admin/stories', text: formatContentIssue(issue) }));
  }
}
