import { rm } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.ts';
import { createEdition } from '../../src/edition/create-edition.ts';
import { testServer } from '../helpers/server.ts';
import { tempContentDir } from '../helpers/content-dir.ts';
import { freshDatabase, type TestDatabase } from '../helpers/databases.ts';
import { datedStory } from './schedule-fixture.ts';

const TOKEN = 'admin-token-0123456789abcdef0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };
const NOW = new Date('2026-03-16T12:00:00Z');

async function serve(env: Record<string, string>) {
  const database = await freshDatabase('sqlite');
  const contentDir = await tempContentDir({ 'a.md': datedStory('Story A', '2026-03-10T09:00:00Z') });
  const t = await testServer({ content: contentDir, now: () => NOW, env: { DATABASE_URL: database.url, ...env } });
  return {
    ...t,
    database,
    async close() {
      await t.close();
      await rm(contentDir, { recursive: true, force: true });
      await rm(database.dataDir, { recursive: true, force: true });
    },
  };
}

describe('schedules API without GAZETTE_ADMIN_TOKEN', () => {
  it('answers 401 without GAZETTE_ADMIN_TOKEN to a token that is not a user\'s', async () => {
    const t = await serve({});
    try {
      const res = await t.server.inject({ url: '/api/schedules', headers: auth });
      expect(res.statusCode).toBe(401);
      expect(res.json().error).toBe('unauthorized');
    } finally {
      await t.close();
    }
  });
});

describe('schedules API', () => {
  let t: { app: App; server: FastifyInstance; database: TestDatabase; close(): Promise<void> };
  beforeEach(async () => {
    t = await serve({ GAZETTE_ADMIN_TOKEN: TOKEN });
  });
  afterEach(() => t.close());

  const post = (payload: object, headers: Record<string, string> = auth) => t.server.inject({ method: 'POST', url: '/api/schedules', headers, payload });

  it('needs the bearer token', async () => {
    for (const headers of [{}, { authorization: 'Bearer wrong' }]) {
      const res = await t.server.inject({ url: '/api/schedules', headers });
      expect(res.statusCode).toBe(401);
      expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
    }
    expect((await post({ list: 'dispatch', on_publish: true }, {})).statusCode).toBe(401);
  });

  it('adds a weekly digest in its zone, lists it, shows its next fires and cancels it', async () => {
    const created = await post({ list: 'weekly', cron: '0 7 * * 1', tz: 'Europe/Kyiv', digest: true, audience: 'weekly' });
    expect(created.statusCode).toBe(201);
    const body = created.json();
    expect(body).toMatchObject({ kind: 'recurring', list: 'weekly', cron: '0 7 * * 1', timezone: 'Europe/Kyiv', audience: 'weekly', status: 'active', next_fire_at: '2026-03-23T05:00:00.000Z', last_fire: null });

    const list = await t.server.inject({ url: '/api/schedules', headers: auth });
    expect(list.json().schedules.map((s: { id: number }) => s.id)).toEqual([body.id]);

    const next = await t.server.inject({ url: `/api/schedules/${body.id}/next?count=2`, headers: auth });
    expect(next.json()).toEqual({
      id: body.id,
      kind: 'recurring',
      status: 'active',
      fires: [
        { at: '2026-03-23T05:00:00.000Z', local: '2026-03-23T07:00:00+02:00', timezone: 'Europe/Kyiv' },
        { at: '2026-03-30T04:00:00.000Z', local: '2026-03-30T07:00:00+03:00', timezone: 'Europe/Kyiv' },
      ],
    });
    expect((await t.server.inject({ url: `/api/schedules/${body.id}/next?count=0`, headers: auth })).statusCode).toBe(400);

    const shown = await t.server.inject({ url: `/api/schedules/${body.id}`, headers: auth });
    expect(shown.json()).toMatchObject({ id: body.id, fires: [] });

    const cancelled = await t.server.inject({ method: 'DELETE', url: `/api/schedules/${body.id}`, headers: auth });
    expect(cancelled.json()).toMatchObject({ id: body.id, status: 'cancelled', next_fire_at: null });
    const again = await t.server.inject({ method: 'DELETE', url: `/api/schedules/${body.id}`, headers: auth });
    expect(again.statusCode).toBe(400);
    expect(again.json().message).toBe(`schedule ${body.id} is already cancelled`);
    expect((await t.server.inject({ method: 'DELETE', url: '/api/schedules/999', headers: auth })).statusCode).toBe(404);
  });

  it('adds a one-off and an on-publish schedule', async () => {
    const { id } = await createEdition({ content: await t.app.content(), templates: await t.app.adapters.emailTemplates(), editions: await t.app.adapters.editions(), now: NOW }, { list: 'dispatch', story: 'a' });
    const oneOff = await post({ edition: id, at: '2026-03-17T09:00:00+02:00' });
    expect(oneOff.statusCode).toBe(201);
    expect(oneOff.json()).toMatchObject({ kind: 'one-off', edition_id: id, at: '2026-03-17T07:00:00.000Z', next_fire_at: '2026-03-17T07:00:00.000Z' });
    const onPublish = await post({ list: 'dispatch', on_publish: true });
    expect(onPublish.json()).toMatchObject({ kind: 'on-publish', audience: 'instant', stories_sent: 0, next_fire_at: null });
  });

  it('refuses bad input with 400 and a message naming it', async () => {
    const cases: [object, RegExp][] = [
      [{ list: 'weekly', cron: '0 7 * * 8', tz: 'Europe/Kyiv', digest: true }, /invalid cron expression "0 7 \* \* 8": 8 is an invalid expression for week day/],
      [{ list: 'weekly', cron: '0 7 * * 1', tz: 'Europe/Atlantis', digest: true }, /unknown time zone "Europe\/Atlantis"/],
      [{ list: 'weekly', cron: '0 7 * * 1', timezone: 'Europe/Kyiv', digest: 'yes' }, /digest: expected true or false/],
      [{ edition: 1, at: '2026-03-17T07:00:00Z' }, /no edition 1/],
      [{ list: 'weekly', cron: '0 7 * * 1', zone: 'UTC' }, /unknown field "zone"/],
      [{ list: 'nope', on_publish: true }, /unknown list "nope"/],
    ];
    for (const [payload, message] of cases) {
      const res = await post(payload);
      expect([400, 404], JSON.stringify(payload)).toContain(res.statusCode);
      expect(res.json().message).toMatch(message);
    }
    const notObject = await t.server.inject({ method: 'POST', url: '/api/schedules', headers: { ...auth, 'content-type': 'application/json' }, payload: '[1]' });
    expect(notObject.statusCode).toBe(400);
    expect((await t.server.inject({ url: '/api/schedules', headers: auth })).json().schedules).toEqual([]);
  });
});
