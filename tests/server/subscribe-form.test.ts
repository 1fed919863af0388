import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { testServer, type TestServer } from '../helpers/server.ts';

let t: TestServer;
beforeEach(async () => {
  t = await testServer({ now: () => new Date('2026-01-05T10:00:00Z') });
});
afterEach(async () => t.close());

const encode = (fields: Record<string, string | string[]>) =>
  Object.entries(fields)
    .flatMap(([key, value]) => (Array.isArray(value) ? value : [value]).map((v) => `${encodeURIComponent(key)}=${encodeURIComponent(v)}`))
    .join('&');

/** POSTs the subscribe form as a browser does (urlencoded, asking for HTML). */
function post(fields: Record<string, string | string[]>) {
  return t.server.inject({
    method: 'POST',
    url: '/subscribe',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html,application/xhtml+xml,*/*;q=0.8' },
    payload: encode(fields),
  });
}

/** The opening tag of the element with this id. */
const tagWithId = (html: string, id: string) => new RegExp(`<[a-z]+ id="${id}"[^>]*>`).exec(html)?.[0] ?? '';
/** The opening tag of the `name` input with this value. */
const choice = (html: string, name: string, value: string) => new RegExp(`<input type="(?:checkbox|radio)" name="${name}" value="${value}"[^>]*>`).exec(html)?.[0] ?? '';

describe('the subscribe form after a refused post', () => {
  it('shows the home page again, status 400, with the email error beside the field and the typed values kept', async () => {
    const res = await post({ email: 'not-an-email', name: 'Ann', lists: 'weekly', frequency: 'daily' });
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    const html = res.body;
    // The home page, not the generic error page.
    expect(html).toContain('<form method="post" action="/subscribe" class="subscribe-form">');
    expect(html).toContain('<h2>Latest stories</h2>');
    expect(html).not.toContain('That did not work');
    const email = tagWithId(html, 'email');
    expect(email).toContain('value="not-an-email"');
    expect(email).toContain('aria-invalid="true"');
    expect(email).toContain('aria-describedby="email-error"');
    expect(html).toContain('<p class="field-error" id="email-error" role="alert"><strong>email: &quot;not-an-email&quot; is not a valid email address</strong></p>');
    // The error sits right after its field, before the next one.
    expect(html.indexOf('id="email-error"')).toBeGreaterThan(html.indexOf('id="email"'));
    expect(html.indexOf('id="email-error"')).toBeLessThan(html.indexOf('for="name"'));
    const name = tagWithId(html, 'name');
    expect(name).toContain('value="Ann"');
    expect(name).not.toContain('aria-invalid');
    expect(choice(html, 'lists', 'weekly')).toContain(' checked');
    expect(choice(html, 'lists', 'dispatch')).not.toContain(' checked');
    expect(choice(html, 'frequency', 'daily')).toContain(' checked');
    expect(choice(html, 'frequency', 'instant')).not.toContain(' checked');
    expect(html.match(/aria-invalid/g)).toHaveLength(1);
    expect(await (await t.app.adapters.subscribers()).findByEmail('not-an-email')).toBeUndefined();
  });

  it('escapes what was typed', async () => {
    const res = await post({ email: '"><script>alert(1)</script>@x', name: '<b>Ann</b> "O\'Brien"' });
    expect(res.statusCode).toBe(400);
    expect(res.body).not.toContain('<script>alert(1)');
    expect(res.body).not.toContain('<b>Ann</b>');
    expect(tagWithId(res.body, 'email')).toContain('value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;@x"');
    expect(tagWithId(res.body, 'name')).toContain('value="&lt;b&gt;Ann&lt;/b&gt; &quot;O&#x27;Brien&quot;"');
    expect(res.body).toContain('email: &quot;&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;@x&quot; is not a valid email address');
  });

  it('puts a name, list or frequency error beside that field', async () => {
    const name = await post({ email: 'ann@example.com', name: 'A'.repeat(101) });
    expect(name.statusCode).toBe(400);
    expect(tagWithId(name.body, 'name')).toContain('aria-describedby="name-error"');
    expect(name.body).toMatch(/id="name-error" role="alert"><strong>name: at most 100 characters \(got 101\)<\/strong>/);
    expect(tagWithId(name.body, 'email')).toContain('value="ann@example.com"');
    expect(tagWithId(name.body, 'email')).not.toContain('aria-invalid');

    const lists = await post({ email: 'ann@example.com', lists: 'nope' });
    expect(lists.statusCode).toBe(400);
    expect(lists.body).toMatch(/id="lists-error" role="alert"><strong>lists: unknown list &quot;nope&quot; \(known: dispatch, weekly\)<\/strong>/);
    for (const slug of ['dispatch', 'weekly']) {
      expect(choice(lists.body, 'lists', slug)).toContain('aria-invalid="true" aria-describedby="lists-error"');
      expect(choice(lists.body, 'lists', slug)).not.toContain(' checked');
    }

    const frequency = await post({ email: 'ann@example.com', lists: ['dispatch', 'weekly'], frequency: 'hourly' });
    expect(frequency.statusCode).toBe(400);
    expect(frequency.body).toMatch(/id="frequency-error" role="alert"><strong>frequency: expected one of instant, daily, weekly, got &quot;hourly&quot;<\/strong>/);
    expect(choice(frequency.body, 'frequency', 'weekly')).toContain('aria-describedby="frequency-error"');
    expect(choice(frequency.body, 'lists', 'dispatch')).toContain(' checked');
    expect(choice(frequency.body, 'lists', 'weekly')).toContain(' checked');
  });

  it('keeps the JSON answer as it was', async () => {
    const res = await t.server.inject({ method: 'POST', url: '/subscribe', headers: { 'content-type': 'application/json' }, payload: { email: 'not-an-email' } });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({ error: 'bad_request', message: 'email: "not-an-email" is not a valid email address' });
  });

  it('leaves the plain home page as it was: first list and instant ticked, nothing invalid', async () => {
    const html = (await t.server.inject({ url: '/' })).body;
    expect(html).toContain('<input id="email" name="email" type="email" required maxlength="254" autocomplete="email" placeholder="you@example.com">');
    expect(html).toContain('<input id="name" name="name" type="text" maxlength="100" autocomplete="name">');
    expect(choice(html, 'lists', 'dispatch')).toContain(' checked');
    expect(choice(html, 'lists', 'weekly')).not.toContain(' checked');
    expect(choice(html, 'frequency', 'instant')).toContain(' checked');
    expect(html).not.toMatch(/aria-invalid|field-error|autofocus/);
  });
});
