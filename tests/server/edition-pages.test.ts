import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createEdition } from '../../src/edition/create-edition.ts';
import { enqueueEdition } from '../../src/edition/enqueue-edition.ts';
import { linkIn } from '../helpers/outbox.ts';
import { testServer, type TestServer } from '../helpers/server.ts';

let t: TestServer;
beforeEach(async () => {
  t = await testServer();
});
afterEach(async () => t.close());

async function digest(): Promise<number> {
  const { id } = await createEdition(
    { content: await t.app.content(), templates: await t.app.adapters.emailTemplates(), editions: await t.app.adapters.editions(), now: t.app.now() },
    { list: 'dispatch', digest: true },
  );
  return id;
}

describe('GET /editions/:id, the web version of an edition', () => {
  it('is where a digest’s "view in browser" leads, and shows that digest as it was mailed', async () => {
    const id = await digest();
    await (await t.app.adapters.subscribers()).insertMany(
      [{ email: 'reader@example.com', emailKey: 'reader@example.com', name: null, status: 'active', source: 'test', consentIp: null, lists: [{ slug: 'dispatch', frequency: 'instant' }] }],
      t.app.now(),
    );
    await enqueueEdition({ editions: await t.app.adapters.editions(), deliveries: await t.app.adapters.deliveries(), queue: await t.app.adapters.queue(), now: t.app.now }, id);
    const [mail] = await t.outbox();
    expect(linkIn(mail!, '/editions/')).toBe(`https://gazette.test/editions/${id}`);
    const html = String(mail!.parsed.html);
    expect(html).toContain(`href="https://gazette.test/editions/${id}"`);

    const page = await t.server.inject({ url: `/editions/${id}` });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    // The same stories as the email; no subscriber's token in it.
    const edition = (await (await t.app.adapters.editions()).find(id))!;
    for (const slug of edition.storySlugs) expect(page.body).toContain(`/stories/${slug}`);
    expect(page.body).not.toMatch(/token=/);
    // Its inline styles are allowed on this page alone; it still may not run scripts or post forms.
    expect(page.headers['content-security-policy']).toContain("style-src 'unsafe-inline'");
    expect(page.headers['content-security-policy']).toContain("default-src 'none'");
    expect(page.headers['x-frame-options']).toBe('DENY');
    expect((await t.server.inject({ url: '/' })).headers['content-security-policy']).toContain("style-src 'self';");
    // Its footer links, with no token for nobody in particular, lead to pages that say where the personal link is.
    for (const url of ['/unsubscribe', '/preferences']) {
      const help = await t.server.inject({ url });
      expect(help.statusCode, url).toBe(200);
      expect(help.body).toContain('use the link at the bottom of any email we sent you');
    }
  });

  it('answers 404 for a draft, an unknown id and a malformed one', async () => {
    const draft = await digest();
    for (const url of [`/editions/${draft}`, '/editions/999', '/editions/01', '/editions/x', '/editions/1e3']) {
      const response = await t.server.inject({ url });
      expect(response.statusCode, url).toBe(404);
    }
  });
});
