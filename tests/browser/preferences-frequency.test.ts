import type { Locator, Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { recipientLinks } from '../../src/links/recipient-links.ts';
import type { ListChoice } from '../../src/model/subscriber.ts';
import { servedSite } from '../helpers/served-site.ts';

// The preferences page in Chromium: each list has its own box and its own "How often", the
// choices survive a save and a fresh visit, and the page works with the keyboard alone.

const site = servedSite();

/** A confirmed subscriber on `lists`, and their preferences link as the emails carry it. */
async function member(email: string, lists: ListChoice[]): Promise<{ id: number; link: string }> {
  const app = site.t.app;
  const added = await app.subscribers.add({ email, lists: lists.map((l) => l.slug), confirmed: true, source: 'api' });
  await (await app.adapters.subscribers()).replaceLists(added.id, lists, new Date());
  const link = recipientLinks((await app.content()).site, await app.adapters.tokens(), added.id).preferencesUrl;
  expect(link.startsWith(`${site.base}/preferences?token=`), link).toBe(true);
  return { id: added.id, link };
}

async function listsOf(id: number): Promise<ListChoice[] | undefined> {
  return (await (await site.t.app.adapters.subscribers()).findById(id))?.lists;
}

/** A fresh page; JavaScript off unless asked, since the form must work as plain HTML. */
async function openPage(javaScriptEnabled = false): Promise<Page> {
  const context = await site.browser().newContext({ viewport: { width: 800, height: 900 }, javaScriptEnabled });
  return context.newPage();
}

/** The fieldset of one list, found by its legend. */
const list = (page: Page, name: string): Locator => page.getByRole('group', { name, exact: true });

/** What the page shows for each list: ticked or not, and the frequency checked. */
async function shownChoices(page: Page): Promise<Record<string, { ticked: boolean; frequency: string | undefined }>> {
  return page.locator('form').first().evaluate((form) =>
    Object.fromEntries(
      [...form.querySelectorAll<HTMLInputElement>('input[name=lists]')].map((box) => [
        box.value,
        { ticked: box.checked, frequency: form.querySelector<HTMLInputElement>(`input[name="frequency_${box.value}"]:checked`)?.value },
      ]),
    ),
  );
}

describe('the preferences page in Chromium', () => {
  it('labels every control and groups each list in a fieldset with a legend', async () => {
    const { link } = await member('labels@example.com', [{ slug: 'dispatch', frequency: 'daily' }]);
    const page = await openPage();
    try {
      expect((await page.goto(link))?.status()).toBe(200);
      const controls = await page.locator('main form').first().evaluate((form) =>
        [...form.querySelectorAll<HTMLInputElement | HTMLButtonElement>('input:not([type=hidden]), select, button')].map((el) => ({
          name: el.getAttribute('name'),
          type: el.type,
          label: el instanceof HTMLButtonElement ? (el.textContent ?? '').trim() : [...(el.labels ?? [])].map((l) => (l.textContent ?? '').trim()).join(' '),
          groups: (() => {
            const legends: string[] = [];
            for (let f = el.closest('fieldset'); f; f = f.parentElement?.closest('fieldset') ?? null) legends.unshift((f.querySelector(':scope > legend')?.textContent ?? '').trim());
            return legends;
          })(),
        })),
      );
      const radios = (slug: string, legend: string) =>
        ['Every story, as it is published', 'A daily digest', 'A weekly digest'].map((label) => ({ name: `frequency_${slug}`, type: 'radio', label, groups: [legend, 'How often'] }));
      expect(controls).toEqual([
        { name: 'lists', type: 'checkbox', label: 'Send me The Dispatch', groups: ['The Dispatch'] },
        ...radios('dispatch', 'The Dispatch'),
        { name: 'lists', type: 'checkbox', label: 'Send me Weekly Briefing', groups: ['Weekly Briefing'] },
        ...radios('weekly', 'Weekly Briefing'),
        { name: null, type: 'submit', label: 'Save', groups: [] },
      ]);
      expect(await shownChoices(page)).toEqual({ dispatch: { ticked: true, frequency: 'daily' }, weekly: { ticked: false, frequency: 'daily' } });
      await expect(page.getByRole('button', { name: 'Leave all lists' }).isVisible()).resolves.toBe(true);
    } finally {
      await page.context().close();
    }
  }, 60_000);

  it('keeps a frequency per list: Weekly Briefing weekly, The Dispatch every story, after saving and after opening the link again', async () => {
    const { id, link } = await member('per-list@example.com', [{ slug: 'dispatch', frequency: 'daily' }]);
    const page = await openPage();
    try {
      await page.goto(link);
      await list(page, 'Weekly Briefing').getByRole('checkbox', { name: 'Send me Weekly Briefing' }).check();
      await list(page, 'Weekly Briefing').getByRole('radio', { name: 'A weekly digest' }).check();
      await list(page, 'The Dispatch').getByRole('radio', { name: 'Every story, as it is published' }).check();
      await Promise.all([
        page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/preferences'),
        page.getByRole('button', { name: 'Save' }).click(),
      ]);
      await page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor({ timeout: 10_000 });
      const saved = { dispatch: { ticked: true, frequency: 'instant' }, weekly: { ticked: true, frequency: 'weekly' } };
      expect(await shownChoices(page), 'the page after saving').toEqual(saved);
      expect(await listsOf(id)).toEqual([
        { slug: 'dispatch', frequency: 'instant' },
        { slug: 'weekly', frequency: 'weekly' },
      ]);
      // Opening the link again (a GET, not a re-POST) shows what is stored.
      await page.goto(link);
      expect(await page.getByText('Saved.').count()).toBe(0);
      expect(await shownChoices(page), 'the page opened again').toEqual(saved);
    } finally {
      await page.context().close();
    }
  }, 60_000);

  it('works with the keyboard alone: Tab to a list’s frequency, change it with the arrows, save with Enter', async () => {
    const { id, link } = await member('keyboard@example.com', [
      { slug: 'dispatch', frequency: 'instant' },
      { slug: 'weekly', frequency: 'weekly' },
    ]);
    const page = await openPage(true);
    try {
      await page.goto(link);
      const focused = () =>
        page.evaluate(() => {
          const el = document.activeElement as HTMLInputElement | null;
          return el ? `${el.tagName.toLowerCase()}:${el.getAttribute('name') ?? ''}:${el.value ?? ''}:${(el.textContent ?? '').trim()}` : '';
        });
      /** Presses Tab until `want` has the focus; fails after 30 presses. */
      const tabTo = async (want: string) => {
        for (let i = 0; i < 30; i++) {
          await page.keyboard.press('Tab');
          if ((await focused()) === want) return;
        }
        throw new Error(`Tab never reached ${want} (last: ${await focused()})`);
      };
      // A radio group takes one Tab stop, at its checked radio.
      await tabTo('input:frequency_weekly:weekly:');
      await page.keyboard.press('ArrowUp');
      expect(await focused()).toBe('input:frequency_weekly:daily:');
      await tabTo('button:::Save');
      await Promise.all([
        page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/preferences'),
        page.keyboard.press('Enter'),
      ]);
      await page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor({ timeout: 10_000 });
      expect(await shownChoices(page)).toEqual({ dispatch: { ticked: true, frequency: 'instant' }, weekly: { ticked: true, frequency: 'daily' } });
      expect(await listsOf(id)).toEqual([
        { slug: 'dispatch', frequency: 'instant' },
        { slug: 'weekly', frequency: 'daily' },
      ]);
    } finally {
      await page.context().close();
    }
  }, 60_000);
});
