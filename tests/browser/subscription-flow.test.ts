import type { BrowserContext, Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { linkIn, type OutboxMessage } from '../helpers/outbox.ts';
import { servedSite } from '../helpers/served-site.ts';

// The whole double opt-in life of a subscriber, driven through the real pages in Chromium:
// the home page form, the confirmation link from the .eml in the outbox, the welcome email's
// unsubscribe link and its one button. The stored status is checked after every step.

const EMAIL = 'Browser.User@example.com';
const NAME = 'Browser User';
const SITE_TITLE = 'The Gazette Dispatch';
const STORY_IMAGES = 'https://images.gazette.example.org';

const site = servedSite();

/** What a page did besides rendering: requests to other hosts, CSP complaints, what the stylesheet answered. */
interface Watch {
  offsite: string[];
  cspErrors: string[];
  stylesheetStatus: number[];
}

/**
 * A fresh context of the given width. Every request that leaves the test server is aborted
 * and recorded; so is every console complaint about the Content-Security-Policy.
 */
async function openContext(width: number, options: { javaScriptEnabled?: boolean } = {}): Promise<{ context: BrowserContext; page: Page; watch: Watch }> {
  const context = await site.browser().newContext({ viewport: { width, height: 800 }, deviceScaleFactor: 1, ...options });
  const watch: Watch = { offsite: [], cspErrors: [], stylesheetStatus: [] };
  await context.route('**/*', async (route) => {
    const url = route.request().url();
    if (new URL(url).origin === site.base) return route.continue();
    // The sample stories' own images live on their image host: the home page shows them beside the stories.
    if (new URL(url).origin !== STORY_IMAGES) watch.offsite.push(url);
    return route.abort('blockedbyclient');
  });
  const page = await context.newPage();
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) watch.cspErrors.push(message.text());
  });
  page.on('response', (response) => {
    if (new URL(response.url()).pathname === '/assets/site.css') watch.stylesheetStatus.push(response.status());
  });
  return { context, page, watch };
}

/** The stored subscriber behind EMAIL (looked up by its lower-case key). */
async function stored() {
  return (await site.t.app.adapters.subscribers()).findByEmail(EMAIL.toLowerCase());
}

/** The outbox messages to EMAIL whose subject starts with `subject`. */
async function mailsTo(subject: string): Promise<OutboxMessage[]> {
  return (await site.t.outbox()).filter((m) => m.raw.includes(EMAIL) && (m.parsed.subject ?? '').startsWith(subject));
}

/** The heading a visitor reads first. */
async function heading(page: Page): Promise<string> {
  return ((await page.locator('main h1').first().textContent()) ?? '').trim();
}

/** Checks the stylesheet arrived past the CSP: body text is set in Georgia. */
async function expectStyled(page: Page, watch: Watch, step: string): Promise<void> {
  const fontFamily = await page.locator('body').evaluate((body) => getComputedStyle(body).fontFamily);
  expect.soft(fontFamily, `${step}: /assets/site.css not applied (blocked by the CSP?)`).toMatch(/Georgia/);
  expect.soft(watch.cspErrors, `${step}: Content-Security-Policy violations`).toEqual([]);
}

describe('the home page in Chromium', () => {
  it('has the site title, feed discovery and the stylesheet, and fits a 375 px phone', async () => {
    const { context, page, watch } = await openContext(375);
    try {
      const response = await page.goto(`${site.base}/`);
      expect(response?.status()).toBe(200);
      expect(await page.title()).toBe(SITE_TITLE);

      const rss = page.locator('link[rel="alternate"][type="application/rss+xml"]');
      expect(await rss.count(), 'RSS autodiscovery links').toBe(1);
      expect(await rss.getAttribute('href')).toBe(`${site.base}/rss.xml`);
      const feed = await page.request.get(`${site.base}/rss.xml`);
      expect(feed.status(), 'the advertised RSS feed').toBe(200);
      expect(feed.headers()['content-type']).toMatch(/xml/);

      await expectStyled(page, watch, 'home');
      expect(watch.stylesheetStatus, '/assets/site.css responses').toEqual([200]);

      const metrics = await page.evaluate(() => ({ scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth }));
      expect.soft(metrics.scrollWidth, 'horizontal overflow at 375px').toBeLessThanOrEqual(metrics.innerWidth);

      // Usable on a phone: every control of the form is visible and inside the viewport; text
      // fields and the button are at least 40 px tall, and the label around each checkbox or radio
      // (its tap target) at least 28 px; text fields use 16 px or more, so iOS Safari does not
      // zoom in on focus. Measured in one round trip, with the lists and frequency disclosure open.
      await page.getByText('Choose lists and frequency').click();
      const controls = await page.locator('form.subscribe-form').evaluate((form) =>
        [...form.querySelectorAll('input:not([type=hidden]), button')].map((el) => {
          const input = el as HTMLInputElement | HTMLButtonElement;
          const target = input.type === 'checkbox' || input.type === 'radio' ? (input.closest('label') ?? input) : input;
          const box = input.getBoundingClientRect();
          const style = getComputedStyle(input);
          const name = (input.labels?.[0]?.textContent ?? input.textContent ?? '').replace(/\s+/g, ' ').trim().split(' — ')[0];
          return {
            what: `${input.tagName.toLowerCase()}[type=${input.type}] "${name}"`,
            text: input.type === 'email' || input.type === 'text',
            visible: box.width > 0 && box.height > 0 && style.visibility !== 'hidden',
            left: box.left,
            right: box.right,
            tapHeight: target.getBoundingClientRect().height,
            fontSize: parseFloat(style.fontSize),
          };
        }),
      );
      expect(controls.map((c) => c.what)).toEqual([
        'input[type=email] "Email address"',
        'input[type=text] "Name (optional)"',
        'input[type=checkbox] "The Dispatch"',
        'input[type=checkbox] "Weekly Briefing"',
        'input[type=radio] "Every story, as it is published"',
        'input[type=radio] "A daily digest"',
        'input[type=radio] "A weekly digest"',
        'button[type=submit] "Subscribe"',
      ]);
      for (const c of controls) {
        expect.soft(c.visible, `${c.what} is hidden`).toBe(true);
        expect.soft(c.left, `${c.what} starts off-screen`).toBeGreaterThanOrEqual(0);
        expect.soft(c.right, `${c.what} ends off-screen`).toBeLessThanOrEqual(375);
        expect.soft(c.tapHeight, `${c.what}: tap target height`).toBeGreaterThanOrEqual(c.text ? 40 : 28);
        if (c.text) expect.soft(c.fontSize, `${c.what}: font size`).toBeGreaterThanOrEqual(16);
      }
      await page.setViewportSize({ width: 1024, height: 800 });
      expect(watch.offsite, 'requests outside the test server').toEqual([]);
    } finally {
      await context.close();
    }
  });
});

describe('subscribing in Chromium', () => {
  it('subscribes from the form, confirms from the email, unsubscribes from the welcome email', async () => {
    // A phone, with JavaScript off: the forms must work as plain HTML forms.
    const { context, page, watch } = await openContext(375, { javaScriptEnabled: false });
    try {
      // 1. The form on the home page.
      await page.goto(`${site.base}/`);
      expect(await page.title()).toBe(SITE_TITLE);
      await page.getByLabel('Email address').fill(EMAIL);
      // The name, lists and frequency wait behind a disclosure, which opens without JavaScript too.
      await page.getByText('Choose lists and frequency').click();
      await page.getByLabel(/^Name/).fill(NAME);
      await expect(page.getByRole('checkbox', { name: /The Dispatch/ }).isChecked(), 'the first list is ticked by default').resolves.toBe(true);
      await page.getByRole('checkbox', { name: /Weekly Briefing/ }).check();
      await page.getByRole('radio', { name: 'A weekly digest' }).check();
      await Promise.all([page.waitForURL(`${site.base}/subscribe`), page.getByRole('button', { name: 'Subscribe' }).click()]);
      expect(await heading(page)).toBe('Check your inbox');
      expect(await page.title()).toBe(`Check your inbox · ${SITE_TITLE}`);
      await expectStyled(page, watch, 'check-your-inbox page');
      expect(await stored(), 'after the form').toMatchObject({
        email: EMAIL,
        name: NAME,
        status: 'pending',
        source: 'form',
        consentIp: '127.0.0.1',
        lists: [
          { slug: 'dispatch', frequency: 'weekly' },
          { slug: 'weekly', frequency: 'weekly' },
        ],
      });
      // 2. The confirmation link in the .eml.
      const confirmations = await mailsTo('Confirm');
      expect(confirmations, 'confirmation emails').toHaveLength(1);
      const confirm = linkIn(confirmations[0]!, '/confirm');
      expect(confirm.startsWith(`${site.base}/confirm?token=`), confirm).toBe(true);
      expect(await mailsTo('Welcome'), 'no welcome before confirming').toHaveLength(0);
      // Opening the link only asks; the button (a plain form POST to the same URL) confirms.
      const asked = await page.goto(confirm);
      expect(asked?.status()).toBe(200);
      expect(await heading(page)).toBe('Confirm your subscription');
      expect((await stored())?.status, 'after only opening the link').toBe('pending');
      await expectStyled(page, watch, 'confirm page');
      await Promise.all([
        page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/confirm'),
        page.getByRole('button', { name: 'Yes, subscribe me' }).click(),
      ]);
      await page.getByRole('heading', { level: 1, name: 'You are subscribed' }).waitFor({ timeout: 10_000 });
      expect(await heading(page)).toBe('You are subscribed');
      await expect(page.locator('main').textContent()).resolves.toContain(`emails will come to ${EMAIL}`);
      await expectStyled(page, watch, 'confirmation page');
      expect((await stored())?.status, 'after confirming').toBe('active');
      // 3. The welcome email: its List-Unsubscribe header and its visible footer link agree.
      const welcomes = await mailsTo('Welcome');
      expect(welcomes, 'welcome emails').toHaveLength(1);
      const welcome = welcomes[0]!;
      const header = /^List-Unsubscribe: <([^>]+)>/m.exec(welcome.raw)?.[1];
      expect(header, 'List-Unsubscribe header with a URL').toBeDefined();
      const unsubscribe = header!;
      expect(unsubscribe.startsWith(`${site.base}/unsubscribe?token=`), unsubscribe).toBe(true);
      expect(welcome.raw).toMatch(/^List-Unsubscribe-Post: List-Unsubscribe=One-Click/m);
      const footerLinks = [...(welcome.parsed.html || '').matchAll(/<a\b[^>]*\bhref="([^"]*)"[^>]*>\s*Unsubscribe\s*<\/a>/gi)].map((m) =>
        m[1]!.replaceAll('&amp;', '&'),
      );
      expect(footerLinks, 'the visible Unsubscribe link(s) of the welcome HTML').toEqual([unsubscribe]);
      expect(linkIn(welcome, '/unsubscribe'), 'the text part').toBe(unsubscribe);
      // 4. Following the link shows one button; the GET itself changes nothing.
      const shown = await page.goto(unsubscribe);
      expect(shown?.status()).toBe(200);
      expect(await heading(page)).toBe('Unsubscribe');
      await expect(page.locator('main').textContent()).resolves.toContain(EMAIL);
      expect(await page.locator('main button').count(), 'buttons on the unsubscribe page').toBe(1);
      await expectStyled(page, watch, 'unsubscribe page');
      expect((await stored())?.status, 'after opening the unsubscribe link').toBe('active');
      // 5. The button.
      const [posted] = await Promise.all([
        page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/unsubscribe'),
        page.getByRole('button', { name: 'Unsubscribe' }).click(),
      ]);
      expect(posted.status()).toBe(200);
      expect(posted.request().postData()).toBe('List-Unsubscribe=One-Click');
      // The URL stays the same: wait for the new document's heading rather than a URL change.
      await page.getByRole('heading', { level: 1, name: 'You are unsubscribed' }).waitFor({ timeout: 10_000 });
      expect(await heading(page)).toBe('You are unsubscribed');
      await expectStyled(page, watch, 'unsubscribed page');
      const gone = await stored();
      expect(gone?.status, 'after pressing Unsubscribe').toBe('unsubscribed');
      expect(gone?.lists).toEqual([]);
      expect(gone?.unsubscribedAt).toBeTruthy();
      expect(watch.offsite, 'requests outside the test server').toEqual([]);
    } finally {
      await context.close();
    }
  }, 120_000); // a real browser and a real server, on 2 cores shared with the rest of the suite
});
