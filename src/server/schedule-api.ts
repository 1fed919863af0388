import type { FastifyInstance } from 'fastify';
import { InputError } from '../errors.ts';
import type { ScheduleRequest } from '../schedule/manage-schedules.ts';
import { fireJson } from '../schedule/manage-schedules.ts';
import { apiAccess, checkAdminAccess } from './admin-auth.ts';
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
      api.addHook('onRequest', async (request, reply) => checkAdminAccess(apiAccess(app), request, reply));
      api.get('/', async () => ({ schedules: await app.schedules.list() }));
      api.post<{ Body: unknown }>('/', async (request, reply) => {
        const { schedule, view, notes } = await app.schedules.add(requestFrom(request.body));
        request.log.info({ schedule: schedule.id, kind: schedule.kind }, 'schedule added');
        return reply.status(201).send({ ...view, notes });
      });
      api.get<{ Params: { id: string } }>('/:id', async (request) => {
        const { view, fires, stories } = await app.schedules.show(request.params.id, 20);
        return { ...view, fires: fires.map(fireJson), ...(view.kind === 'on-publish' ? { stories: stories.map((s) => ({ story: s.slug, edition_id: s.editionId, at: s.at })) } : {}) };
      });
      api.get<{ Params: { id: string }; Querystring: Record<string, string | string[] | undefined> }>('/:id/next', async (request) => {
        const [entry] = await app.schedules.next(request.params.id, countParam(request.query.count));
        const { schedule, fires } = entry!;
        return { id: schedule.id, kind: schedule.kind, status: schedule.status, fires };
      });
      api.delete<{ Params: { id: string } }>('/:id', async (request) => {
        const { schedule, view } = await app.schedules.cancel(request.params.id);
        request.log.info({ schedule: schedule.id }, 'schedule cancelled');
        return view;
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

function countParam(value: string | string[] | undefined): number {
  if (value === undefined || value === '') return 5;
  const n = typeof value === 'string' && /^[0-9]{1,4}$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && n <= 1000)) throw new InputError(`count: expected a whole number from 1 to 1000, got "${String(value).slice(0, 40)}"`);
  return n;
}

