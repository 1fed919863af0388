import type { FastifyInstance } from 'fastify';
import { InputError } from '../errors.ts';
import { AUDIENCES, type Audience, type Edition } from '../model/edition.ts';
import { apiAccess, checkAdminAccess } from './admin-auth.ts';
import { objectBody, optionalFlag, optionalText } from './json-body.ts';
import type { ServerContext } from './server.ts';

type Id = { Params: { id: string } };
type Body = { Body: unknown };

/**
 * Editions in the admin API, so a script can do what the console does: GET /api/editions, POST /api/editions
 * (make a draft), GET/PATCH /api/editions/:id (status; subject and preheader of a draft), GET …/preview,
 * GET …/audience, POST …/test, …/send, …/pause, …/resume, …/cancel.
 */
export function registerEditionApi(server: FastifyInstance, context: ServerContext): void {
  const { app } = context;
  void server.register(
    async (api) => {
      api.addHook('onRequest', async (request, reply) => checkAdminAccess(apiAccess(app), request, reply));

      api.get<{ Querystring: Record<string, string | undefined> }>('/', async (request) => {
        const limit = request.query.limit === undefined ? 50 : Number(request.query.limit);
        if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new InputError('limit: expected a whole number from 1 to 500');
        return { editions: await app.editions.recent(limit) };
      });

      api.post<Body>('/', async (request, reply) => {
        const fields = objectBody(request.body, ['list', 'story', 'digest', 'since_last', 'stories', 'subject', 'preheader', 'audience']);
        const audience = optionalText(fields, 'audience') ?? 'all';
        if (!(AUDIENCES as readonly string[]).includes(audience)) throw new InputError(`audience: expected one of ${AUDIENCES.join(', ')}`);
        const stories = fields.stories;
        if (stories !== undefined && (!Array.isArray(stories) || !stories.every((s) => typeof s === 'string'))) throw new InputError('stories: expected an array of story slugs');
        const { edition, leftOut } = await app.editions.create({
          list: optionalText(fields, 'list') ?? '',
          story: optionalText(fields, 'story'),
          digest: optionalFlag(fields, 'digest'),
          sinceLast: optionalFlag(fields, 'since_last'),
          stories: stories as string[] | undefined,
          subject: optionalText(fields, 'subject'),
          preheader: optionalText(fields, 'preheader'),
          audience: audience as Audience,
        });
        request.log.info({ edition: edition.id, by: request.apiActor?.name }, 'edition made through the API');
        return reply.status(201).send({ ...editionJson(edition), left_out: leftOut || null });
      });

      api.get<Id>('/:id', async (request) => {
        const id = editionId(request.params.id);
        return { ...editionJson(await app.editions.find(id)), progress: await app.editions.status(id), preflight: await app.editions.preflight(id) };
      });

      api.patch<Id & Body>('/:id', async (request) => {
        const fields = objectBody(request.body, ['subject', 'preheader']);
        return editionJson(await app.editions.revise(editionId(request.params.id), { subject: optionalText(fields, 'subject'), preheader: optionalText(fields, 'preheader') }));
      });

      api.get<Id>('/:id/preview', async (request) => app.editions.sample(editionId(request.params.id)));

      api.get<Id>('/:id/audience', async (request) => ({ subscribers: await app.editions.audienceSize(editionId(request.params.id)) }));

      api.post<Id & Body>('/:id/test', async (request) => {
        const fields = objectBody(request.body, ['to']);
        const to = typeof fields.to === 'string' ? [fields.to] : fields.to;
        if (!Array.isArray(to)) throw new InputError('to: expected an address or an array of addresses');
        return app.editions.sendTests(editionId(request.params.id), to);
      });

      api.post<Id & Body>('/:id/send', async (request) => {
        const fields = request.body === undefined || request.body === null ? {} : objectBody(request.body, ['include_new']);
        const result = await app.editions.send(editionId(request.params.id), { includeNew: optionalFlag(fields, 'include_new') });
        await app.schedules.cancelOneOffsOf(result.editionId);
        request.log.info({ edition: result.editionId, added: result.added, by: request.apiActor?.name }, 'send started through the API');
        return result;
      });

      api.post<Id>('/:id/resume', async (request) => app.editions.send(editionId(request.params.id)));

      api.post<Id>('/:id/pause', async (request) => editionJson(await app.editions.pause(editionId(request.params.id), `paused by ${request.apiActor?.name ?? 'the API'}: POST /api/editions/${request.params.id}/resume resumes it`)));

      api.post<Id>('/:id/cancel', async (request) => {
        const edition = await app.editions.cancel(editionId(request.params.id), `cancelled by ${request.apiActor?.name ?? 'the API'}`);
        await app.schedules.cancelOneOffsOf(edition.id);
        return editionJson(edition);
      });
    },
    { prefix: '/api/editions' },
  );
}

/** An edition without its render, in the API's field names. */
function editionJson(edition: Edition) {
  return {
    id: edition.id,
    list: edition.listSlug,
    kind: edition.kind,
    audience: edition.audience,
    subject: edition.subject,
    preheader: edition.preheader,
    stories: edition.storySlugs,
    status: edition.status,
    pause_kind: edition.pauseKind,
    last_error: edition.lastError,
    created_at: edition.createdAt,
    enqueued_at: edition.enqueuedAt,
    completed_at: edition.completedAt,
    schedule_id: edition.scheduleId,
  };
}

function editionId(text: string): number {
  if (!/^[1-9][0-9]{0,9}$/.test(text) || Number(text) > 2 ** 31 - 1) throw new InputError(`edition: expected an edition id, got "${text.slice(0, 40)}"`);
  return Number(text);
}
