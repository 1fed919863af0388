import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { App } from '../app.ts';
import { ConflictError, GazetteError, InputError, NotFoundError } from '../errors.ts';
import type { MailingList } from '../model/content.ts';
import { FREQUENCIES, SUBSCRIBER_STATUSES, type Subscriber, type SubscriberStatus, type WithHistory } from '../model/subscriber.ts';
import { IMPORT_BODY_LIMIT, knownList, sendExport, text } from '../server/admin-api.ts';
import type { ConsoleContext } from './console-plugin.ts';
import { field, fields, requireAdmin, userOf, zoneOf, type Form } from './console-request.ts';
import { ImportJobs, jobPercent, type ImportJob } from './import-jobs.ts';

const PER_PAGE = 50;

type Query = Record<string, string | string[] | undefined>;

/**
 * The console's subscriber pages: the listing (search, filters, counts), adding one by hand, a
 * subscriber's page (history, unsuppress, erase), CSV import with a page that follows it, CSV export.
 */
export async function registerSubscriberRoutes(admin: FastifyInstance, context: ConsoleContext): Promise<void> {
  const { app, kit } = context;
  const jobs = new ImportJobs(app.now, admin.log);
  // The server waits for running imports before it closes the store under them (and their temp files go).
  admin.addHook('onClose', async () => jobs.settled());

  admin.get<{ Querystring: Query }>('/subscribers', async (request, reply) => {
    const q = request.query;
    const search = (text(q, 'search') ?? '').trim();
    if (search.length > 200) throw new InputError(`search: at most 200 characters (got ${search.length})`);
    const status = text(q, 'status') || undefined;
    if (status !== undefined && !SUBSCRIBER_STATUSES.includes(status as SubscriberStatus)) {
      throw new InputError(`status: expected one of ${SUBSCRIBER_STATUSES.join(', ')}, got "${status.slice(0, 40)}"`);
    }
    const list = await knownList(app, text(q, 'list'));
    const page = pageNumber(text(q, 'page'));
    const [result, counts, lists] = await Promise.all([
      app.subscribers.page({ page, perPage: PER_PAGE, search: search || undefined, status: status as SubscriberStatus | undefined, list }),
      app.subscribers.counts(),
      siteLists(app),
    ]);
    const zone = zoneOf(request);
    const filters = { search, list, status };
    const pages = Math.max(1, Math.ceil(result.total / PER_PAGE));
    return kit.page(request, reply, 'subscribers', { title: 'Subscribers', section: 'subscribers' }, {
      zone,
      search,
      list,
      status,
      filtered: Boolean(search || list || status),
      total: result.total,
      counts: SUBSCRIBER_STATUSES.map((s) => ({ status: s, count: counts[s], href: listingHref({ ...filters, status: s }), current: s === status })),
      allCount: counts.total,
      allHref: listingHref({ ...filters, status: undefined }),
      lists: lists.map((l) => ({ slug: l.slug, name: l.name, selected: l.slug === list })),
      statuses: SUBSCRIBER_STATUSES.map((s) => ({ value: s, selected: s === status })),
      subscribers: result.subscribers.map((s) => row(s, lists)),
      page: result.page,
      pages,
      previous: result.page > 1 ? listingHref({ ...filters, page: result.page - 1 }) : undefined,
      next: result.page < pages ? listingHref({ ...filters, page: result.page + 1 }) : undefined,
      exportHref: `/admin/subscribers/export${list ? `?list=${encodeURIComponent(list)}` : ''}`,
    });
  });

  admin.get('/subscribers/new', async (request, reply) => addForm(request, reply, {}));

  admin.post<{ Body: Form }>('/subscribers/new', async (request, reply) => {
    const form = {
      email: (field(request.body, 'email') ?? '').trim(),
      name: (field(request.body, 'name') ?? '').trim(),
      lists: fields(request.body, 'lists'),
      frequency: field(request.body, 'frequency') ?? '',
      confirmed: field(request.body, 'confirmed') === 'yes',
    };
    let added: Subscriber;
    try {
      added = await app.subscribers.add({
        email: form.email,
        name: form.name || undefined,
        lists: form.lists,
        frequency: form.frequency || undefined,
        confirmed: form.confirmed,
        // The console is an operator's word like the CLI and the API; the stored source says where it came from.
        source: 'console',
      });
    } catch (error) {
      if (!(error instanceof InputError || error instanceof ConflictError)) throw error;
      return addForm(request, reply, { ...form, error: error.message }, 400);
    }
    request.log.info({ subscriber: added.id, user: userOf(request).id, confirmed: form.confirmed }, 'subscriber added in the console');
    const text = added.status === 'active'
      ? `Added ${added.email}: active, mailed from the next send.`
      : `Added ${added.email} as pending: a confirmation email is queued, and they are mailed only once they click its link.`;
    return kit.redirect(request, reply, subscriberHref(added.email), { tone: 'ok', text });
  });

  admin.get('/subscribers/import', async (request, reply) => importForm(request, reply, {}));

  admin.get<{ Params: { id: string } }>('/subscribers/import/:id', async (request, reply) => {
    const job = jobs.get(request.params.id);
    if (!job) throw new NotFoundError('no such import: imports are shown for an hour after they finish (the subscribers they stored are on the Subscribers page)');
    return kit.page(request, reply, 'import-job', { title: `Import of ${job.fileName}`, section: 'subscribers' }, jobView(job, zoneOf(request)));
  });

  admin.get<{ Querystring: Query }>('/subscribers/export', async (request, reply) => sendExport(app, request, reply, await knownList(app, text(request.query, 'list'))));

  admin.get<{ Params: { email: string } }>('/subscribers/:email', async (request, reply) => {
    const subscriber = await app.subscribers.find(request.params.email);
    const [lists, deliveries] = await Promise.all([siteLists(app), app.subscribers.deliveries(subscriber.email)]);
    return kit.page(request, reply, 'subscriber', { title: subscriber.email, section: 'subscribers' }, {
      zone: zoneOf(request),
      deliveries,
      subscriber: detail(subscriber, lists),
      canErase: userOf(request).role === 'admin',
    });
  });

  admin.get<{ Params: { email: string } }>('/subscribers/:email/unsuppress', async (request, reply) => {
    const subscriber = await app.subscribers.find(request.params.email);
    if (!subscriber.suppression) throw new NotFoundError(`${subscriber.email} is not suppressed`);
    const href = subscriberHref(subscriber.email);
    return kit.page(request, reply, 'confirm', { title: 'Lift the suppression', section: 'subscribers' }, {
      heading: `Mail ${subscriber.email} again?`,
      lines: [
        `This address is suppressed (${subscriber.suppression.reason}${subscriber.suppression.detail ? `: ${subscriber.suppression.detail}` : ''}), so no edition goes to it.`,
        'Lift it only when the cause is fixed (a full mailbox emptied, a relay misconfiguration) or the person asked to be mailed again: mailing an address that complained or bounces hurts how every send is delivered.',
        subscriber.status === 'bounced' || subscriber.status === 'complained' ? 'They become active again if they are still on a list.' : '',
      ].filter(Boolean),
      action: `${href}/unsuppress`,
      button: 'Lift the suppression',
      cancelHref: href,
    });
  });

  admin.post<{ Params: { email: string } }>('/subscribers/:email/unsuppress', async (request, reply) => {
    const lifted = await app.subscribers.unsuppress(request.params.email);
    request.log.info({ reason: lifted.reason, status: lifted.status, user: userOf(request).id }, 'suppression lifted in the console');
    const now = lifted.status ? ` Their status is now ${lifted.status}.` : '';
    const to = lifted.status ? subscriberHref(lifted.email) : '/admin/subscribers';
    return kit.redirect(request, reply, to, { tone: 'ok', text: `Lifted the suppression of ${lifted.email} (${lifted.reason}).${now}` });
  });

  admin.get<{ Params: { email: string } }>('/subscribers/:email/erase', async (request, reply) => {
    requireAdmin(request, 'erase subscribers');
    const subscriber = await app.subscribers.find(request.params.email);
    const href = subscriberHref(subscriber.email);
    return kit.page(request, reply, 'confirm', { title: 'Erase a subscriber', section: 'subscribers' }, {
      heading: `Erase ${subscriber.email}?`,
      lines: [
        'Their row, their lists and the bounces and complaints recorded for them are deleted for good (a GDPR erasure request). This cannot be undone.',
        ...(subscriber.suppression ? ['The address stays on the suppression list, so it is still never mailed.'] : []),
        'To stop mailing someone who may come back, leave them be: an unsubscribe keeps the record that they left.',
      ],
      action: `${href}/erase`,
      button: 'Erase for good',
      danger: true,
      cancelHref: href,
    });
  });

  admin.post<{ Params: { email: string } }>('/subscribers/:email/erase', async (request, reply) => {
    const user = requireAdmin(request, 'erase subscribers');
    const erased = await app.subscribers.remove(request.params.email);
    request.log.info({ subscriber: erased.id, user: user.id }, 'subscriber erased in the console');
    return kit.redirect(request, reply, '/admin/subscribers', { tone: 'ok', text: `Erased ${erased.email}.` });
  });

  // Multipart only here: the plugin's parser and limits stay inside this scope.
  await admin.register(async (scope) => {
    // The server reads multipart/form-data as text for the one-click unsubscribe; this scope parses it for real.
    if (scope.hasContentTypeParser('multipart/form-data')) scope.removeContentTypeParser('multipart/form-data');
    await scope.register(multipart, { limits: { fileSize: IMPORT_BODY_LIMIT, files: 1, fields: 10, fieldSize: 1024, parts: 12 } });

    scope.post('/subscribers/import', async (request, reply) => {
      if (!request.isMultipart()) throw new InputError('send the form as multipart/form-data (with the file)');
      const file = await spoolPath(app);
      let job: ImportJob | undefined;
      let problem: string;
      try {
        const upload = await readUpload(request, file);
        const list = await knownList(app, upload.fields.list);
        const confirmed = upload.fields.confirmed === 'yes';
        if (!upload.fileName && upload.size === 0) throw new InputError('file: choose a CSV file to import');
        if (upload.size === 0) throw new InputError(`the file ${upload.fileName} is empty: expected a header row with an "email" column`);
        job = jobs.start(
          { fileName: upload.fileName || 'upload.csv', size: upload.size, list, confirmed, startedBy: userOf(request).id },
          (onProgress) => app.subscribers.import({ open: () => createReadStream(file), list, confirmed, onProgress }),
          () => rm(file, { force: true }),
        );
        request.log.info({ job: job.id, bytes: upload.size, user: userOf(request).id }, 'console CSV import started');
        return reply.redirect(`/admin/subscribers/import/${job.id}`, 303);
      } catch (error) {
        if (!(error instanceof GazetteError)) throw error;
        problem = error.message;
      } finally {
        // Once the job has it, the job removes the file when the import ends.
        if (!job) await rm(file, { force: true });
      }
      return importForm(request, reply, { error: problem }, 400);
    });
  });

  async function addForm(request: FastifyRequest, reply: FastifyReply, form: { email?: string; name?: string; lists?: string[]; frequency?: string; confirmed?: boolean; error?: string }, status = 200) {
    const lists = await siteLists(app);
    const chosen = form.lists ?? (lists[0] ? [lists[0].slug] : []);
    return kit.page(request, reply, 'subscriber-new', { title: 'Add a subscriber', section: 'subscribers' }, {
      ...form,
      lists: lists.map((l) => ({ slug: l.slug, name: l.name, description: l.description, checked: chosen.includes(l.slug) })),
      frequencies: FREQUENCIES.map((f) => ({ value: f, selected: f === (form.frequency || 'instant') })),
    }, status);
  }

  async function importForm(request: FastifyRequest, reply: FastifyReply, form: { error?: string }, status = 200) {
    const lists = await siteLists(app);
    return kit.page(request, reply, 'import', { title: 'Import subscribers', section: 'subscribers' }, {
      ...form,
      lists: lists.map((l, i) => ({ slug: l.slug, name: l.name, first: i === 0 })),
      limit: `${IMPORT_BODY_LIMIT / (1024 * 1024)} MB`,
    }, status);
  }
}

/** The address's page in the console. */
export function subscriberHref(email: string): string {
  return `/admin/subscribers/${encodeURIComponent(email)}`;
}

/** The form's fields, and the file copied to `file` (at most IMPORT_BODY_LIMIT bytes). */
async function readUpload(request: FastifyRequest, file: string): Promise<{ fields: Record<string, string>; fileName: string; size: number }> {
  const values: Record<string, string> = {};
  let fileName = '';
  let size = 0;
  let seenFile = false;
  try {
    for await (const part of request.parts()) {
      if (part.type === 'field') {
        if (typeof part.value === 'string') values[part.fieldname] = part.value;
        continue;
      }
      if (part.fieldname !== 'file' || seenFile) {
        part.file.resume();
        continue;
      }
      seenFile = true;
      fileName = path.basename(part.filename ?? '').slice(0, 200);
      // Opened before the copy, so the caller's `rm` finds it however early the copy fails.
      const out = (await open(file, 'wx', 0o600)).createWriteStream();
      await pipeline(part.file as Readable, out);
      size = (await stat(file)).size;
    }
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'FST_REQ_FILE_TOO_LARGE') throw new InputError(`the CSV file is larger than the ${IMPORT_BODY_LIMIT / (1024 * 1024)} MB limit: nothing was imported`);
    if (code?.startsWith('FST_') && (error as { statusCode?: number }).statusCode === 413) throw new InputError(`the form is too large (${(error as Error).message})`);
    throw error;
  }
  return { fields: values, fileName, size };
}

/** A fresh temp path for one upload, in the data folder (the same disk as the database, not tmpfs). */
async function spoolPath(app: App): Promise<string> {
  const dir = path.join(app.config.dataDir, 'tmp');
  await mkdir(dir, { recursive: true });
  return path.join(dir, `console-import-${randomBytes(8).toString('hex')}.csv`);
}

/** What the job page shows. */
function jobView(job: ImportJob, zone: string) {
  const summary = job.summary;
  return {
    zone,
    job: {
      ...job,
      running: job.state === 'running',
      failed: job.state === 'failed',
      done: job.state === 'done',
      percent: jobPercent(job),
      storing: job.phase === 'insert',
      startedAt: job.startedAt.toISOString(),
      finishedAt: job.finishedAt?.toISOString(),
      status: job.confirmed ? 'active' : 'pending',
      more: summary ? summary.invalidCount - summary.invalid.length : 0,
    },
    listHref: job.list ? `/admin/subscribers?list=${encodeURIComponent(job.list)}` : '/admin/subscribers',
  };
}

/** A row of the listing. */
function row(subscriber: WithHistory<Subscriber>, lists: MailingList[]) {
  return {
    email: subscriber.email,
    href: subscriberHref(subscriber.email),
    name: subscriber.name,
    status: subscriber.status,
    suppression: subscriber.suppression,
    lists: listChoices(subscriber, lists),
    createdAt: subscriber.createdAt,
  };
}

/** Everything the subscriber's page shows. */
function detail(subscriber: WithHistory<Subscriber>, lists: MailingList[]) {
  return {
    ...subscriber,
    href: subscriberHref(subscriber.email),
    lists: listChoices(subscriber, lists),
    consent: consentOf(subscriber),
    events: subscriber.events.map((e) => ({ ...e, bad: e.type === 'hard-bounce' || e.type === 'complaint' })),
  };
}

/** Where the subscriber's consent comes from, in words. */
function consentOf(subscriber: Subscriber): string {
  const via = subscriber.source === 'form' ? `the site's form${subscriber.consentIp ? ` (from ${subscriber.consentIp})` : ''}` : sourceName(subscriber.source);
  if (subscriber.status === 'pending') {
    return subscriber.confirmationSentAt
      ? `Came through ${via}; asked to confirm by email, not confirmed yet.`
      : `Came through ${via} as pending; no confirmation email has been sent to them.`;
  }
  if (subscriber.source === 'form' || subscriber.confirmationSentAt) return `Came through ${via}${subscriber.confirmedAt ? ' and confirmed by email' : ''}.`;
  return `Came through ${via}: the operator asserted that they hold this person's consent.`;
}

function sourceName(source: string): string {
  return ({ import: 'a CSV import', api: 'the admin API', cli: 'the command line', console: 'the console' } as Record<string, string>)[source] ?? source;
}

function listChoices(subscriber: Subscriber, lists: MailingList[]) {
  return subscriber.lists.map((c) => ({ slug: c.slug, name: lists.find((l) => l.slug === c.slug)?.name ?? c.slug, frequency: c.frequency }));
}

/** The listing's URL with these filters. */
function listingHref(filters: { search?: string | undefined; list?: string | undefined; status?: string | undefined; page?: number }): string {
  const params = new URLSearchParams();
  if (filters.search) params.set('search', filters.search);
  if (filters.list) params.set('list', filters.list);
  if (filters.status) params.set('status', filters.status);
  if (filters.page && filters.page > 1) params.set('page', String(filters.page));
  const query = params.toString();
  return `/admin/subscribers${query ? `?${query}` : ''}`;
}

async function siteLists(app: App): Promise<MailingList[]> {
  return (await app.content()).site.lists;
}

function pageNumber(value: string | undefined): number {
  if (value === undefined || value === '') return 1;
  if (!/^[1-9][0-9]{0,8}$/.test(value)) throw new InputError(`page: expected a positive whole number, got "${value.slice(0, 40)}"`);
  return Number(value);
}
