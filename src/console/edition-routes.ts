import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { GazetteError, InputError } from '../errors.ts';
import { publishedStories } from '../model/content.ts';
import { AUDIENCES, type Audience, type Edition } from '../model/edition.ts';
import type { ConsoleContext } from './console-plugin.ts';
import { field, fields, idParam, stillSignedIn, zoneOf, type Form } from './console-request.ts';
import { sendProgress, withScheduledAt } from './live-streams.ts';
import { sendFrame } from './preview-frames.ts';
import { registerSendRoutes } from './send-routes.ts';
import { timeZoneOptions } from './zone-options.ts';

type Id = { Params: { id: string } };

/** Editions: the list, making one, its page (previews, preflight, test send, outcome), its frames and live progress. */
export function registerEditionRoutes(admin: FastifyInstance, context: ConsoleContext): void {
  const { app, kit, live } = context;

  admin.get('/editions', async (request, reply) => {
    const [editions, schedules] = await Promise.all([app.editions.recent(100), app.schedules.list()]);
    return kit.page(request, reply, 'editions', { title: 'Editions', section: 'editions' }, { editions: withScheduledAt(editions, schedules), zone: zoneOf(request) });
  });

  admin.get<{ Querystring: { story?: string } }>('/editions/new', async (request, reply) => {
    return newEditionForm(context, request, reply, { kind: request.query.story ? 'story' : 'digest', story: request.query.story, source: 'since' });
  });

  admin.post<{ Body: Form }>('/editions', async (request, reply) => {
    const form = request.body ?? {};
    const kind = field(form, 'kind') === 'story' ? 'story' : 'digest';
    const source = field(form, 'source') ?? 'since';
    const typed = { kind, source, list: field(form, 'list'), story: field(form, 'story'), picked: fields(form, 'stories'), audience: field(form, 'audience'), subject: field(form, 'subject'), preheader: field(form, 'preheader') };
    try {
      const audience = typed.audience ?? 'all';
      if (!(AUDIENCES as readonly string[]).includes(audience)) throw new InputError(`audience: expected one of ${AUDIENCES.join(', ')}`);
      const { edition, leftOut } = await app.editions.create({
        list: typed.list ?? '',
        story: kind === 'story' ? typed.story || '' : undefined,
        digest: kind === 'digest' ? true : undefined,
        sinceLast: kind === 'digest' && source === 'since' ? true : undefined,
        stories: kind === 'digest' && source === 'pick' ? typed.picked : undefined,
        audience: audience as Audience,
        subject: typed.subject,
        preheader: typed.preheader,
      });
      request.log.info({ edition: edition.id, user: request.consoleUser?.id }, 'edition made in the console');
      const text = `Edition ${edition.id} is ready as a draft: preview it, send a test, then send or schedule it.${leftOut ? ` ${leftOut}` : ''}`;
      return kit.redirect(request, reply, `/admin/editions/${edition.id}`, { tone: 'ok', text });
    } catch (error) {
      if (!(error instanceof GazetteError)) throw error;
      return newEditionForm(context, request, reply, typed, error.message, 400);
    }
  });

  admin.get<Id>('/editions/:id', async (request, reply) => editionPage(context, request, reply, idParam(request.params.id, 'edition')));

  admin.post<Id & { Body: Form }>('/editions/:id/revise', async (request, reply) => {
    const id = idParam(request.params.id, 'edition');
    try {
      await app.editions.revise(id, { subject: field(request.body, 'subject'), preheader: field(request.body, 'preheader') });
    } catch (error) {
      if (!(error instanceof InputError)) throw error;
      return editionPage(context, request, reply, id, { tone: 'error', text: error.message }, 400);
    }
    return kit.redirect(request, reply, `/admin/editions/${id}`, { tone: 'ok', text: 'Subject and preheader saved; the previews below show the new version.' });
  });

  admin.get<Id>('/editions/:id/frame', async (request, reply) => {
    const sample = await app.editions.sample(idParam(request.params.id, 'edition'));
    return sendFrame(reply, sample.html, 'email');
  });

  admin.get<Id>('/editions/:id/live', async (request, reply) => {
    const id = idParam(request.params.id, 'edition');
    await app.editions.find(id);
    live.stream(request, reply, async () => ({ sends: [sendProgress(await app.editions.status(id))] }), () => stillSignedIn(request, (userId) => app.users.findById(userId)));
    return reply;
  });

  registerSendRoutes(admin, context, (request, reply, id, flash, status, typed) => editionPage(context, request, reply, id, flash, status, typed));
}

interface TypedEdition {
  kind: string;
  source: string;
  list?: string | undefined;
  story?: string | undefined;
  picked?: string[];
  audience?: string | undefined;
  subject?: string | undefined;
  preheader?: string | undefined;
}

async function newEditionForm(context: ConsoleContext, request: FastifyRequest, reply: FastifyReply, typed: TypedEdition, error?: string, status = 200): Promise<FastifyReply> {
  const { app, kit } = context;
  const content = await app.content();
  const published = publishedStories(content, app.now());
  const picked = new Set(typed.picked ?? []);
  return kit.page(request, reply, 'edition-new', { title: 'New edition', section: 'editions' }, {
    error,
    typed,
    isStory: typed.kind === 'story',
    lists: content.site.lists.map((l) => ({ slug: l.slug, name: l.name, selected: l.slug === (typed.list ?? content.site.lists[0]?.slug) })),
    stories: published.map((s) => ({ slug: s.slug, title: s.title, date: s.date.toISOString(), selected: s.slug === typed.story, picked: picked.has(s.slug) })),
    audiences: AUDIENCES.map((a) => ({ value: a, selected: a === (typed.audience ?? 'all') })),
    sources: [
      { value: 'since', label: 'Stories published since the last sent edition of the list', checked: typed.source === 'since' },
      { value: 'latest', label: 'The latest stories', checked: typed.source === 'latest' },
      { value: 'pick', label: 'The stories I tick below', checked: typed.source === 'pick' },
    ],
    zone: zoneOf(request),
  }, status);
}

/** The edition's page: what it is, its previews and preflight, and what can be done with it now. */
async function editionPage(context: ConsoleContext, request: FastifyRequest, reply: FastifyReply, id: number, flash?: { tone: 'ok' | 'error'; text: string }, status = 200, typed: Record<string, string> = {}): Promise<FastifyReply> {
  const { app, kit } = context;
  const edition = await app.editions.find(id);
  const [sample, problems, report, schedules] = await Promise.all([app.editions.sample(id), app.editions.preflight(id), app.editions.status(id), app.schedules.list()]);
  const schedule = schedules.find((s) => s.kind === 'one-off' && s.status === 'active' && s.edition_id === id);
  const zone = zoneOf(request);
  // A schedule refused is shown again as it was typed (its confirmation sends it back here in the query).
  const query = request.query as Record<string, unknown>;
  const asked = (name: string) => (typeof query[name] === 'string' ? (query[name] as string) : undefined);
  const scheduleZone = asked('zone') || zone;
  const progress = sendProgress(report);
  const took = edition.enqueuedAt && edition.completedAt ? (Date.parse(edition.completedAt) - Date.parse(edition.enqueuedAt)) / 1000 : undefined;
  if (flash) request.session.flash = flash;
  return kit.page(request, reply, 'edition', { title: `Edition ${id}`, section: 'editions' }, {
    edition: { ...edition, compiled: undefined },
    actions: actionsFor(edition, schedule !== undefined),
    progress,
    took,
    problems,
    text: sample.text,
    frame: `/admin/editions/${id}/frame`,
    // A scheduled draft is watched too: the page is drawn again when its schedule fires.
    live: edition.status === 'sending' || edition.status === 'paused' || schedule !== undefined ? `/admin/editions/${id}/live` : undefined,
    schedule,
    zone,
    zones: timeZoneOptions(scheduleZone),
    asked: { date: asked('date') ?? '', time: asked('time') ?? '', to: typed.to ?? '' },
    subjectLength: [...edition.subject].length,
    longSubject: [...edition.subject].length > 70,
  }, status);
}

/** Which buttons an edition gets in its state. */
function actionsFor(edition: Edition, scheduled: boolean) {
  const retryable = edition.status === 'incomplete' || edition.status === 'failed';
  return {
    edit: edition.status === 'draft',
    test: edition.status !== 'cancelled',
    send: edition.status === 'draft' && !scheduled,
    schedule: edition.status === 'draft' && !scheduled,
    pause: edition.status === 'sending',
    resume: edition.status === 'paused',
    retry: retryable,
    cancel: edition.status === 'draft' || edition.status === 'sending' || edition.status === 'paused',
  };
}
