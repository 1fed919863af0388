import type { FastifyInstance } from 'fastify';
import type { App } from '../app.ts';
import { InputError, NotFoundError } from '../errors.ts';
import { addScheduleWithNotes, cancelSchedule, scheduleId, scheduleView, upcomingFires, type ScheduleRequest } from '../schedule/manage-schedules.ts';
import { schedulesRepo } from '../schedule/start-scheduler.ts';
import { checkAdminAccess } from './admin-auth.ts';
import type { ServerContext } from './server.ts';

const REGISTERED = Symbol.for('gazette.scheduleApi');

/**
 * The schedules admin API under /api/schedules, behind the same Bearer token as the rest of /api:
 * GET lists, POST adds (JSON: edition + at | list + cron + tz + digest [+ audience] | list + on_publish; allow_duplicate: true
 * adds it even when an active schedule sends the same, else 409 naming that one; `notes` says e.g. that a zone was renamed),
 * GET /:id shows one with its recent fires, GET /:id/next?count=N its next fires, DELETE /:id cancels.
 */
export function registerScheduleApi(server: FastifyInstance, context: ServerContext): void {
  // Registered once per server, whoever calls it (the server, or a test over a built server).
  if ((server as unknown as Record<symbol, boolean>)[REGISTERED]) return;
  (server as unknown as Record<symbol, boolean>)[REGISTERED] = true;
  const { app } = context;
  void server.register(
    async (api) => {
      api.addHook('onRequest', async (request, reply) => checkAdminAccess(app.config.adminToken, request, reply));
      api.get('/', async () => {
        const schedules = await schedulesRepo(app);
        return { schedules: await Promise.all((await schedules.list()).map((row) => scheduleView(schedules, row, app.now()))) };
      });
      api.post<{ Body: unknown }>('/', async (request, reply) => {
        const schedules = await schedulesRepo(app);
        const { schedule: row, notes } = await addScheduleWithNotes({ schedules, editions: await app.editions(), content: () => app.content(), now: app.now() }, requestFrom(request.body));
        request.log.info({ schedule: row.id, kind: row.kind }, 'schedule added');
        return reply.status(201).send({ ...(await scheduleView(schedules, row, app.now())), notes });
      });
      api.get<{ Params: { id: string } }>('/:id', async (request) => {
        const schedules = await schedulesRepo(app);
        const row = await findSchedule(app, request.params.id);
        return { ...(await scheduleView(schedules, row, app.now())), fires: await schedules.fires(row.id, 20) };
      });
      api.get<{ Params: { id: string }; Querystring: Record<string, string | string[] | undefined> }>('/:id/next', async (request) => {
        const row = await findSchedule(app, request.params.id);
        const count = countParam(request.query.count);
        return { id: row.id, kind: row.kind, status: row.status, fires: upcomingFires(row, app.now(), count) };
      });
      api.delete<{ Params: { id: string } }>('/:id', async (request) => {
        const schedules = await schedulesRepo(app);
        const row = await cancelSchedule({ schedules, now: app.now() }, scheduleId(request.params.id));
        request.log.info({ schedule: row.id }, 'schedule cancelled');
        return scheduleView(schedules, row, app.now());
      });
    },
    { prefix: '/api/schedules' },
  );
}

/** The JSON body of POST /api/schedules, checked field by field. */
function requestFrom(body: unknown): ScheduleRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new InputError('body: expected a JSON object');
  const fields = body as Record<string, unknown>;
  const known = ['edition', 'edition_id', 'at', 'list', 'cron', 'tz', 'timezone', 'digest', 'audience', 'on_publish', 'allow_duplicate'];
  const unknown = Object.keys(fields).filter((key) => !known.includes(key));
  if (unknown.length > 0) throw new InputError(`unknown field ${unknown.map((k) => `"${k.slice(0, 40)}"`).join(', ')} (known: ${known.join(', ')})`);
  const text = (key: string): string | undefined => {
    const value = fields[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'string') throw new InputError(`${key}: expected text`);
    return value;
  };
  const bool = (key: string): boolean | undefined => {
    const value = fields[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'boolean') throw new InputError(`${key}: expected true or false`);
    return value;
  };
  const edition = fields.edition ?? fields.edition_id;
  if (edition !== undefined && edition !== null && typeof edition !== 'number' && typeof edition !== 'string') throw new InputError('edition: expected an edition id');
  return {
    edition: edition === null ? undefined : (edition as number | string | undefined),
    at: text('at'),
    list: text('list'),
    cron: text('cron'),
    tz: text('tz') ?? text('timezone'),
    digest: bool('digest'),
    audience: text('audience'),
    onPublish: bool('on_publish'),
    allowDuplicate: bool('allow_duplicate'),
  };
}

async function findSchedule(app: App, id: string) {
  const row = await (await schedulesRepo(app)).find(scheduleId(id));
  if (!row) throw new NotFoundError(`no schedule ${id}`);
  return row;
}

function countParam(value: string | string[] | undefined): number {
  if (value === undefined || value === '') return 5;
  const n = typeof value === 'string' && /^[0-9]{1,4}$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && n <= 1000)) throw new InputError(`count: expected a whole number from 1 to 1000, got "${String(value).slice(0, 40)}"`);
  return n;
}

