import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ListChoice } from '../../src/model/subscriber.ts';
import { linkIn } from '../helpers/outbox.ts';
import { testServer, type TestServer } from '../helpers/server.ts';

// A frequency per list: the preferences form sends `lists` and `frequency_<slug>` for each list,
// old forms one `frequency` for all; both arrive in the stored subscriptions, and a bad value
// changes nothing.

let t: TestServer;

beforeEach(async () => {
  t = await testServer({ now: () => new Date('2026-01-05T10:00:00Z') });
});
afterEach(async () => t.close());

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

/** Urlencodes pairs in order, so a field may repeat (`lists=a&lists=b`). */
const form = (pairs: [string, string][]) => pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');

/** A confirmed subscriber on the given lists, and the path of their preferences page. */
async function member(email: string, lists: ListChoice[]): Promise<{ id: number; path: string }> {
  const added = await t.app.subscribers.add({ email, lists: lists.map((l) => l.slug), confirmed: true, source: 'api' });
  await (await t.app.adapters.subscribers()).replaceLists(added.id, lists, new Date());
  const token = (await t.app.adapters.tokens()).sign(added.id, 'preferences');
  return { id: added.id, path: `/preferences?token=${encodeURIComponent(token)}` };
}

async function listsOf(id: number): Promise<ListChoice[] | undefined> {
  return (await (await t.app.adapters.subscribers()).findById(id))?.lists;
}

/** Which radio of each list's `frequency_<slug>` group the page has checked, and which lists are ticked. */
function shown(html: string): { ticked: string[]; frequency: Record<string, string> } {
  const inputs = [...html.matchAll(/<input\b[^>]*>/g)].map((m) => m[0]);
  const attr = (tag: string, name: string) => new RegExp(`\\b${name}="([^"]*)"`).exec(tag)?.[1];
  const checked = inputs.filter((tag) => /\schecked\b/.test(tag));
  return {
    ticked: checked.filter((tag) => attr(tag, 'name') === 'lists').map((tag) => attr(tag, 'value')!),
    frequency: Object.fromEntries(
      checked.filter((tag) => attr(tag, 'name')?.startsWith('frequency_')).map((tag) => [attr(tag, 'name')!.slice('frequency_'.length), attr(tag, 'value')!]),
    ),
  };
}

describe('a frequency per list on the preferences page', () => {
  it('shows each list in its own fieldset with its own radio group, the stored frequency checked', async () => {
    const { path } = await member('shown@example.com', [{ slug: 'weekly', frequency: 'weekly' }]);
    const page = await t.server.inject({ method: 'GET', url: path });
    expect(page.statusCode).toBe(200);
    expect(shown(page.body)).toEqual({ ticked: ['weekly'], frequency: { dispatch: 'weekly', weekly: 'weekly' } });
    for (const name of ['The Dispatch', 'Weekly Briefing']) expect(page.body).toContain(`<legend>${name}</legend>`);
    expect(page.body.match(/<legend>How often<\/legend>/g)).toHaveLength(2);
    // Every radio and checkbox sits inside its own <label>: no unlabelled control.
    const controls = page.body.match(/<input\b(?![^>]*type="hidden")[^>]*>/g) ?? [];
    const labelled = [...page.body.matchAll(/<label class="choice">(<input\b[^>]*>)/g)].map((m) => m[1]);
    expect(controls).toHaveLength(2 + 2 * 3);
    expect(labelled).toEqual(controls);
  });

  it('stores what each list was given, answers "Saved." and shows the saved state', async () => {
    const { id, path } = await member('both@example.com', [{ slug: 'dispatch', frequency: 'daily' }]);
    const saved = await t.server.inject({
      method: 'POST',
      url: path,
      headers: FORM,
      payload: form([['lists', 'dispatch'], ['frequency_dispatch', 'instant'], ['lists', 'weekly'], ['frequency_weekly', 'weekly']]),
    });
    expect(saved.statusCode).toBe(200);
    expect(saved.body).toContain('Saved.');
    expect(shown(saved.body)).toEqual({ ticked: ['dispatch', 'weekly'], frequency: { dispatch: 'instant', weekly: 'weekly' } });
    expect(await listsOf(id)).toEqual([
      { slug: 'dispatch', frequency: 'instant' },
      { slug: 'weekly', frequency: 'weekly' },
    ]);
    const again = await t.server.inject({ method: 'GET', url: path });
    expect(again.body).not.toContain('Saved.');
    expect(shown(again.body)).toEqual({ ticked: ['dispatch', 'weekly'], frequency: { dispatch: 'instant', weekly: 'weekly' } });
  });

  it('takes the same fields as JSON, and keeps a list’s frequency when the request names none', async () => {
    const { id, path } = await member('json@example.com', [{ slug: 'weekly', frequency: 'weekly' }]);
    const saved = await t.server.inject({ method: 'POST', url: path, payload: { lists: ['dispatch', 'weekly'], frequency_dispatch: 'daily' } });
    expect(saved.statusCode).toBe(200);
    expect(saved.json()).toEqual({
      status: 'active',
      lists: [
        { slug: 'dispatch', frequency: 'daily' },
        { slug: 'weekly', frequency: 'weekly' },
      ],
    });
    expect(await listsOf(id)).toEqual(saved.json().lists);
  });

  it('still takes the one `frequency` of old forms for every list, a list’s own field winning', async () => {
    const { id, path } = await member('old@example.com', [{ slug: 'dispatch', frequency: 'instant' }]);
    const old = await t.server.inject({ method: 'POST', url: path, headers: FORM, payload: form([['lists', 'dispatch'], ['lists', 'weekly'], ['frequency', 'daily']]) });
    expect(old.statusCode).toBe(200);
    expect(await listsOf(id)).toEqual([
      { slug: 'dispatch', frequency: 'daily' },
      { slug: 'weekly', frequency: 'daily' },
    ]);
    const mixed = await t.server.inject({
      method: 'POST',
      url: path,
      headers: FORM,
      payload: form([['lists', 'dispatch'], ['lists', 'weekly'], ['frequency', 'instant'], ['frequency_weekly', 'weekly']]),
    });
    expect(mixed.statusCode).toBe(200);
    expect(await listsOf(id)).toEqual([
      { slug: 'dispatch', frequency: 'instant' },
      { slug: 'weekly', frequency: 'weekly' },
    ]);
  });

  it('refuses a bad frequency with 400 naming the field, and changes nothing', async () => {
    const before: ListChoice[] = [
      { slug: 'dispatch', frequency: 'daily' },
      { slug: 'weekly', frequency: 'weekly' },
    ];
    const { id, path } = await member('bad@example.com', before);
    const refused = await t.server.inject({
      method: 'POST',
      url: path,
      headers: FORM,
      payload: form([['lists', 'dispatch'], ['frequency_dispatch', 'instant'], ['lists', 'weekly'], ['frequency_weekly', 'hourly']]),
    });
    expect(refused.statusCode).toBe(400);
    expect(refused.body).toContain('frequency_weekly: expected one of instant, daily, weekly');
    expect(refused.body).not.toContain('Saved.');
    // The page again, as stored, the message beside the list it names.
    expect(shown(refused.body)).toEqual({ ticked: ['dispatch', 'weekly'], frequency: { dispatch: 'daily', weekly: 'weekly' } });
    expect(refused.body).toMatch(/id="frequency_weekly-error" role="alert"/);
    expect(await listsOf(id)).toEqual(before);

    // A list not ticked is no excuse, nor is a shared field; JSON clients get the message too.
    for (const payload of [
      form([['lists', 'dispatch'], ['frequency_weekly', 'every story']]),
      form([['lists', 'dispatch'], ['frequency', 'sometimes']]),
    ]) {
      const response = await t.server.inject({ method: 'POST', url: path, headers: FORM, payload });
      expect(response.statusCode, payload).toBe(400);
    }
    const json = await t.server.inject({ method: 'POST', url: path, payload: { lists: ['weekly'], frequency_weekly: ['daily', 'weekly'] } });
    expect(json.statusCode).toBe(400);
    expect(json.json().message).toMatch(/^frequency_weekly: expected one of instant, daily, weekly, got \["daily","weekly"\]/);
    expect(await listsOf(id)).toEqual(before);
  });

  it('refuses a list that site.yaml does not have, by `lists` or by a frequency field', async () => {
    const before: ListChoice[] = [{ slug: 'dispatch', frequency: 'weekly' }];
    const { id, path } = await member('unknown@example.com', before);
    const byList = await t.server.inject({ method: 'POST', url: path, headers: FORM, payload: form([['lists', 'dispatch'], ['lists', 'sports'], ['frequency_sports', 'daily']]) });
    expect(byList.statusCode).toBe(400);
    expect(byList.body).toContain('unknown list &quot;sports&quot; (known: dispatch, weekly)');
    expect(byList.body).toMatch(/id="preferences-error" role="alert"/);
    const byField = await t.server.inject({ method: 'POST', url: path, payload: { lists: ['dispatch'], frequency_sports: 'daily' } });
    expect(byField.statusCode).toBe(400);
    expect(byField.json().message).toBe('frequency_sports: unknown list "sports" (known: dispatch, weekly)');
    expect(await listsOf(id)).toEqual(before);
  });

  it('still leaves every list with "Leave all lists", and with every box cleared', async () => {
    const leaver = await member('leave@example.com', [{ slug: 'dispatch', frequency: 'weekly' }]);
    const left = await t.server.inject({ method: 'POST', url: leaver.path, headers: FORM, payload: 'action=leave' });
    expect(left.statusCode).toBe(200);
    expect(left.body).toContain('You are unsubscribed');
    expect(await listsOf(leaver.id)).toEqual([]);

    const clearer = await member('clear@example.com', [{ slug: 'weekly', frequency: 'weekly' }]);
    const cleared = await t.server.inject({ method: 'POST', url: clearer.path, headers: FORM, payload: form([['frequency_dispatch', 'instant'], ['frequency_weekly', 'weekly']]) });
    expect(cleared.statusCode).toBe(200);
    expect(cleared.body).toContain('You are unsubscribed');
    expect((await (await t.app.adapters.subscribers()).findById(clearer.id))).toMatchObject({ status: 'unsubscribed', lists: [] });
  });
});

describe('a frequency per list at subscribe time', () => {
  it('stores each list’s own frequency, says both in the welcome email, and shows both on the preferences page', async () => {
    const subscribed = await t.server.inject({
      method: 'POST',
      url: '/subscribe',
      headers: FORM,
      payload: form([['email', 'per-list@example.com'], ['lists', 'dispatch'], ['frequency_dispatch', 'instant'], ['lists', 'weekly'], ['frequency_weekly', 'weekly']]),
    });
    expect(subscribed.statusCode).toBe(200);
    const stored = await (await t.app.adapters.subscribers()).findByEmail('per-list@example.com');
    expect(stored?.lists).toEqual([
      { slug: 'dispatch', frequency: 'instant' },
      { slug: 'weekly', frequency: 'weekly' },
    ]);
    const confirm = new URL(linkIn((await t.outbox()).find((m) => m.parsed.subject?.startsWith('Confirm'))!, '/confirm'));
    const confirmed = await t.server.inject({ method: 'POST', url: `${confirm.pathname}${confirm.search}`, headers: FORM, payload: '' });
    expect(confirmed.statusCode).toBe(200);
    const welcome = (await t.outbox()).find((m) => m.parsed.subject?.startsWith('Welcome'))!;
    expect((welcome.parsed.text ?? '').replace(/\s+/g, ' ')).toContain('You are now subscribed to The Dispatch (every story) and Weekly Briefing (a weekly digest).');
    const preferences = new URL(linkIn(welcome, '/preferences'));
    const page = await t.server.inject({ method: 'GET', url: `${preferences.pathname}${preferences.search}` });
    expect(shown(page.body)).toEqual({ ticked: ['dispatch', 'weekly'], frequency: { dispatch: 'instant', weekly: 'weekly' } });
  });

  it('refuses a bad per-list frequency on the subscribe form, naming the field', async () => {
    const response = await t.server.inject({
      method: 'POST',
      url: '/subscribe',
      payload: { email: 'bad-sub@example.com', lists: ['weekly'], frequency_weekly: 'hourly' },
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().message).toMatch(/^frequency_weekly: expected one of instant, daily, weekly/);
    expect(await (await t.app.adapters.subscribers()).findByEmail('bad-sub@example.com')).toBeUndefined();
  });
});
