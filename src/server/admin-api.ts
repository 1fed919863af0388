import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rm } from 'node:fs/promises';
import path from 'node:path';
import { finished, PassThrough, Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { App } from '../app.ts';
import { InputError, NotFoundError } from '../errors.ts';
import type { LiftedSuppression, SubscriberStatus } from '../model/subscriber.ts';
import { subscriberJson, suppressionJson } from '../subscribers/csv-export.ts';
import { type ImportSummary } from '../subscribers/csv-import.ts';
import { apiAccess, checkAdminAccess, requireApiAdmin } from './admin-auth.ts';
import type { ServerContext } from './server.ts';

type Query = Record<string, string | string[] | undefined>;

const STATUSES: readonly SubscriberStatus[] = ['pending', 'active', 'unsubscribed', 'bounced', 'complained'];

/** Largest CSV the import route reads, by default. */
export const IMPORT_BODY_LIMIT = 50 * 1024 * 1024;

/** Options of the admin API. */
export interface AdminApiOptions {
  /** Largest CSV body POST /api/subscribers/import takes, in bytes; default IMPORT_BODY_LIMIT (50 MB). */
  importBodyLimit?: number;
}

const MAX_PER_PAGE = 500;

/** An error with an HTTP status the server's error handler passes on (413, 415): they are not core errors. */
class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The admin API under /api, behind `Authorization: Bearer GAZETTE_ADMIN_TOKEN`: subscribers listed,
 * added, erased, counted, imported and exported, suppressions lifted. With no token configured every
 * /api URL answers 404.
 */
export function registerAdminApi(server: FastifyInstance, context: ServerContext, options: AdminApiOptions = {}): void {
  void server.register(
    async (api) => {
      api.addHook('onRequest', async (request, reply) => checkAdminAccess(apiAccess(context.app), request, reply));
      // Unknown /api URLs still pass the check above, so they tell nothing to a caller without the token.
      api.setNotFoundHandler(async (request) => {
        throw new NotFoundError(`no API route ${request.method} ${request.url.split('?')[0]}`);
      });
      registerSubscriberRoutes(api, context.app);
      await api.register(async (csv) => registerImportRoute(csv, context.app, options.importBodyLimit ?? IMPORT_BODY_LIMIT));
    },
    { prefix: '/api' },
  );
}

/** Subscriber routes, and the one that lifts an edition's bounces (it acts on subscribers). */
function registerSubscriberRoutes(api: FastifyInstance, app: App): void {
  api.get<{ Querystring: Query }>('/subscribers', async (request) => {
    const q = request.query;
    const status = text(q, 'status');
    if (status !== undefined && !STATUSES.includes(status as SubscriberStatus)) {
      throw new InputError(`status: expected one of ${STATUSES.join(', ')}, got "${status.slice(0, 40)}"`);
    }
    const search = text(q, 'search');
    if (search !== undefined && search.length > 200) throw new InputError(`search: at most 200 characters (got ${search.length})`);
    const result = await app.subscribers.page({
      page: wholeNumber(q, 'page', 1, Number.MAX_SAFE_INTEGER),
      perPage: wholeNumber(q, 'per_page', 50, MAX_PER_PAGE),
      search: search || undefined,
      status: status as SubscriberStatus | undefined,
      list: await knownList(app, text(q, 'list')),
    });
    return { total: result.total, page: result.page, per_page: result.perPage, subscribers: result.subscribers.map(subscriberJson) };
  });

  api.get('/subscribers/counts', async () => {
    return app.subscribers.counts();
  });

  api.get<{ Querystring: Query }>('/subscribers/export', async (request, reply) => sendExport(app, request, reply, await knownList(app, text(request.query, 'list'))));

  api.get<{ Params: { email: string } }>('/subscribers/:email', async (request) => subscriberJson(await app.subscribers.find(request.params.email)));

  api.post<{ Body: unknown }>('/subscribers', async (request, reply) => {
    if (typeof request.body !== 'object' || request.body === null || Array.isArray(request.body)) {
      throw new InputError('body: expected a JSON object with an "email" field');
    }
    const fields = request.body as Record<string, unknown>;
    if (fields.confirmed !== undefined && typeof fields.confirmed !== 'boolean') throw new InputError('confirmed: expected true or false');
    const added = await app.subscribers.add({ ...fields, email: fields.email, confirmed: fields.confirmed === true, source: 'api' });
    return reply.status(201).send(subscriberJson(added));
  });

  api.delete<{ Params: { email: string } }>('/subscribers/:email', async (request, reply) => {
    requireApiAdmin(request, 'erase subscribers');
    const subscriber = await app.subscribers.remove(request.params.email);
    request.log.info({ subscriber: subscriber.id }, 'subscriber erased');
    return reply.status(204).send();
  });

  api.delete<{ Params: { email: string } }>('/subscribers/:email/suppression', async (request) => {
    const lifted = await app.subscribers.unsuppress(request.params.email);
    request.log.info({ reason: lifted.reason, status: lifted.status }, 'suppression lifted');
    return liftedJson(lifted);
  });

  api.post<{ Params: { id: string } }>('/editions/:id/unsuppress', async (request) => {
    const lifted = await app.subscribers.unsuppressEdition(request.params.id);
    request.log.info({ edition: request.params.id, lifted: lifted.length }, 'edition bounces lifted');
    return { lifted: lifted.map(liftedJson) };
  });
}

/** Streams the subscribers (of one list, or all) as a CSV download, written as the client reads it. */
export function sendExport(app: App, request: FastifyRequest, reply: FastifyReply, list: string | undefined): FastifyReply {
  const body = new PassThrough();
  // The export waits while `body` is full, so memory stays flat however many subscribers there are.
  app.subscribers.export(body, { list }).catch((error: unknown) => {
    request.log.error({ err: error }, 'export failed');
    body.destroy(error instanceof Error ? error : new Error(String(error)));
  });
  const date = app.now().toISOString().slice(0, 10);
  return reply
    .type('text/csv; charset=utf-8')
    .header('Content-Disposition', `attachment; filename="subscribers${list ? `-${list}` : ''}-${date}.csv"`)
    .header('Cache-Control', 'no-store')
    .send(body);
}

/** A lifted suppression: the address, what its suppression was, and the subscriber's status now (null: no subscriber has it). */
function liftedJson(lifted: LiftedSuppression) {
  return { email: lifted.email, ...suppressionJson(lifted), status: lifted.status };
}

/**
 * POST /api/subscribers/import. The body is first copied to a temp file under the data folder, counting
 * bytes, so a body over `limit` is refused before a row is stored; the import then reads that file twice
 * (check, then store). Memory stays flat whatever the size; the file is removed whatever happens.
 */
function registerImportRoute(csv: FastifyInstance, app: App, limit: number): void {
  csv.addContentTypeParser(['text/csv', 'application/csv'], (_request, payload, done) => done(null, payload));
  csv.post<{ Querystring: Query; Body: Readable }>('/subscribers/import', { bodyLimit: limit }, async (request) => {
    const type = request.headers['content-type'] ?? '';
    if (!/^(text|application)\/csv\b/i.test(type)) throw new HttpError(415, `send the CSV file with Content-Type: text/csv (got "${type.slice(0, 60)}")`);
    if (Number(request.headers['content-length'] ?? 0) > limit) throw tooLarge(limit);
    const confirmed = flag(request.query, 'confirmed');
    const list = await knownList(app, text(request.query, 'list'));
    const file = await spoolFile(app);
    try {
      await spoolBody(request.body, file, limit);
      const summary = await app.subscribers.import({ open: () => createReadStream(file), list, confirmed });
      request.log.info({ rows: summary.rows, imported: summary.imported, invalid: summary.invalidCount }, 'subscribers imported');
      return summaryJson(summary, confirmed);
    } finally {
      await rm(file, { force: true });
    }
  });
}

function summaryJson(summary: ImportSummary, confirmed: boolean) {
  return {
    rows: summary.rows,
    imported: summary.imported,
    existing: summary.existing,
    suppressed: summary.suppressed,
    invalid_count: summary.invalidCount,
    invalid: summary.invalid,
    status: confirmed ? 'active' : 'pending',
    // Said in every answer, so nobody expects the imported addresses to have been asked.
    confirmation_emails_sent: false,
  };
}

/** The list a `list` parameter names (checked against site.yaml), or undefined when it names none. */
export async function knownList(app: App, slug: string | undefined): Promise<string | undefined> {
  return slug === undefined || slug === '' ? undefined : app.subscribers.knownList(slug, 'list');
}

/** One query parameter; a parameter given twice is refused. */
export function text(query: Query, key: string): string | undefined {
  const value = query[key];
  if (Array.isArray(value)) throw new InputError(`${key}: given more than once`);
  return value;
}

function wholeNumber(query: Query, key: string, fallback: number, max: number): number {
  const value = text(query, key);
  if (value === undefined || value === '') return fallback;
  const n = /^[0-9]{1,15}$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1)) throw new InputError(`${key}: expected a positive whole number, got "${value.slice(0, 40)}"`);
  if (n > max) throw new InputError(`${key}: at most ${max}, got ${n}`);
  return n;
}

function flag(query: Query, key: string): boolean {
  const value = text(query, key);
  if (value === undefined || value === '' || value === 'false' || value === '0') return false;
  if (value === 'true' || value === '1') return true;
  throw new InputError(`${key}: expected true or false, got "${value.slice(0, 40)}"`);
}

function tooLarge(limit: number): HttpError {
  return new HttpError(413, `the CSV file is larger than the ${byteSize(limit)} limit: nothing was imported`);
}

function byteSize(bytes: number): string {
  const MB = 1024 * 1024;
  if (bytes >= MB && bytes % MB === 0) return `${bytes / MB} MB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KB`;
  return `${bytes} bytes`;
}

/** A fresh temp path for one import's body, in the data folder (the same disk as the database, not tmpfs). */
async function spoolFile(app: App): Promise<string> {
  const dir = path.join(app.config.dataDir, 'tmp');
  await mkdir(dir, { recursive: true });
  return path.join(dir, `import-${randomBytes(8).toString('hex')}.csv`);
}

/**
 * Copies the request body to `file`, failing with 413 past `limit` bytes (Fastify does not count a body it
 * hands over as a stream). The request itself is never destroyed: the rest is drained so the 413 can be sent.
 */
async function spoolBody(body: Readable, file: string, limit: number): Promise<void> {
  // A body that broke off before the handler ran would never end nor fail again: the copy would wait forever.
  if (body.destroyed) throw new Error('the request body broke off before it was read');
  let seen = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length;
      if (seen > limit) callback(tooLarge(limit));
      else callback(null, chunk);
    },
  });
  // Opened before the copy starts, so the file exists when the caller's `rm` runs, however early the copy fails.
  const out = (await open(file, 'wx', 0o600)).createWriteStream();
  // A client that goes away mid-body ends the copy too, rather than leaving it waiting for an `end`.
  const stopWatching = finished(body, (error) => {
    if (error) counter.destroy(error);
  });
  body.pipe(counter);
  try {
    await pipeline(counter, out);
  } finally {
    stopWatching();
    body.unpipe(counter);
    if (!body.readableEnded) body.resume();
  }
}
