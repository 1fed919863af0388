import { mkdtemp, readFile, writeFile, cp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadContent } from '../../src/content/load-content.ts';
import type { Content } from '../../src/content/model.ts';
import { createMessageSigner } from '../../src/delivery/dkim.ts';
import { prepareMessageTemplate, renderMessage } from '../../src/delivery/mime-message.ts';
import { composeEdition } from '../../src/edition/compose-edition.ts';
import { writePreview } from '../../src/edition/write-preview.ts';
import { RenderError } from '../../src/errors.ts';
import { recipientLinks } from '../../src/links/recipient-links.ts';
import { TokenSigner } from '../../src/links/tokens.ts';
import { compileEdition } from '../../src/render/compile-edition.ts';
import { loadEmailTemplates, type EmailTemplates } from '../../src/render/email-templates.ts';
import { escapeValuesForHtml, fillSlots, recipientValues, type RecipientValues } from '../../src/render/slots.ts';
import { checkEml } from '../helpers/check-eml.ts';
import { storyFile, tempContentDir, TEMPLATES_DIR } from '../helpers/content-dir.ts';

const NOW = new Date('2025-07-10T08:00:00Z');
const signer = new TokenSigner('test-secret-0123456789abcdef');
let content: Content;
let templates: EmailTemplates;

beforeAll(async () => {
  content = await loadContent(await tempContentDir({}, { withGolden: true }));
  templates = await loadEmailTemplates(TEMPLATES_DIR);
});

function valuesFor(id: number, name: string, email: string): RecipientValues {
  const links = recipientLinks(content.site, signer, id);
  return recipientValues({ greeting: `Hello ${name},`, email, unsubscribe_url: links.unsubscribeUrl, preferences_url: links.preferencesUrl });
}

async function goldenEdition(kind: 'story' | 'digest') {
  const list = content.site.lists[0]!;
  return compileEdition(templates, composeEdition(content.site, list, kind, content.stories, NOW));
}

describe('the golden story through the email renderer', () => {
  it('renders the full story HTML and text with every feature, escaped', async () => {
    const edition = await goldenEdition('story');
    const html = fillSlots(edition.html, escapeValuesForHtml(valuesFor(7, 'Ann', 'ann@example.com')));
    // Text from stories is escaped; the body's hostile HTML never survives.
    expect(html).not.toMatch(/<script|onclick|never reaches a reader/);
    expect(html).toContain('Tom &amp; Jerry &lt;script&gt;');
    expect(html).toContain('Привіт, світе 🎉');
    expect(html).toContain('<h2>First section: lists &amp; quotes</h2>');
    expect(html).toContain('Does &lt;markup&gt; in a question stay text?');
    expect(html).toContain('alt="A golden test card with &lt;angle&gt; brackets &amp; an ampersand"');
    expect(html).toContain(content.site.postalAddress);
    expect(html).toContain('name="viewport"');
    const text = fillSlots(edition.text, valuesFor(7, 'Ann', 'ann@example.com'));
    expect(text).toContain('Tom & Jerry <script>alert("x")</script> say “hello”'.toLocaleUpperCase());
    expect(text).toContain('FREQUENTLY ASKED QUESTIONS');
    expect(text).toContain('Що з кирилицею?');
    expect(text).toContain('Unsubscribe: https://gazette.example.org/unsubscribe?token=');
    expect(text).toMatchSnapshot('golden-story.txt');
    expect(edition.html.parts.join('\n--slot--\n')).toMatchSnapshot('golden-story.html');
  });

  it('fills each recipient with their own signed links, and escapes their values', async () => {
    const edition = await goldenEdition('digest');
    const ann = valuesFor(1, 'Ann <b>bold</b>', 'ann@example.com');
    const bob = valuesFor(2, 'Bob', 'bob@example.com');
    const annHtml = fillSlots(edition.html, escapeValuesForHtml(ann));
    const bobHtml = fillSlots(edition.html, escapeValuesForHtml(bob));
    expect(annHtml).toContain(`href="${ann.unsubscribe_url}"`);
    expect(annHtml).not.toContain(bob.unsubscribe_url);
    expect(bobHtml).toContain(`href="${bob.unsubscribe_url}"`);
    expect(annHtml).toContain('Hello Ann &lt;b&gt;bold&lt;/b&gt;,');
    const token = new URL(ann.unsubscribe_url).searchParams.get('token')!;
    expect(signer.verify(token, 'unsubscribe', NOW)).toMatchObject({ ok: true, subscriberId: 1 });
    expect(annHtml).not.toMatch(/%%gz/);
  });

  it('keeps a 10-story digest under Gmail\'s 102 KB clip', async () => {
    const stories: Record<string, string> = {};
    for (let i = 0; i < 10; i++) {
      const image = `'{url: "https://img.example.org/${i}.jpg", alt: "Picture ${i}", width: 1200, height: 600}'`;
      stories[`s${i}.md`] = storyFile(
        { slug: `story-${i}`, title: `"Story ${i}: ${'a rather long headline '.repeat(3)}"`, summary: `"${'A summary sentence that runs on. '.repeat(6)}"`, image: image.slice(1, -1) },
        `${'Paragraph text. '.repeat(80)}\n\n## Part\n\n${'More text. '.repeat(80)}\n`,
      );
    }
    const big = await loadContent(await tempContentDir(stories));
    const edition = await compileEdition(templates, composeEdition(big.site, big.site.lists[0]!, 'digest', big.stories, NOW));
    const html = fillSlots(edition.html, escapeValuesForHtml(valuesFor(1, 'Ann', 'a@example.com')));
    expect(big.stories).toHaveLength(10);
    expect(Buffer.byteLength(html)).toBeLessThan(102 * 1024);
    expect(html.match(/<img /g)).toHaveLength(10);
  });

  it('names the template and line of a template error', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'gazette-templates-'));
    await cp(TEMPLATES_DIR, dir, { recursive: true });
    const file = path.join(dir, 'email', 'partials', 'footer.mjml.hbs');
    await writeFile(file, `${await readFile(file, 'utf8')}\n{{#if broken}}\n`);
    const error = await loadEmailTemplates(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RenderError);
    expect((error as RenderError).message).toMatch(/templates\/email\/partials\/footer\.mjml\.hbs:\d+: /);
    await rm(dir, { recursive: true, force: true });
  });
});

describe('the message builder', () => {
  it('builds a message that passes the bulk-sender checks (check-eml.py)', async () => {
    const outDir = await mkdtemp(path.join(os.tmpdir(), 'gazette-preview-'));
    const result = await writePreview({
      content,
      templates,
      tokens: signer,
      signMessage: await createMessageSigner(undefined),
      outDir,
      now: NOW,
      digest: true,
    });
    const report = await checkEml([result.files.eml]);
    expect(report.output).toMatch(/RESULT: PASS/);
    expect(report.code).toBe(0);
    const eml = await readFile(result.files.eml, 'utf8');
    expect(eml).toMatch(/^List-Unsubscribe: <https:\/\/gazette\.example\.org\/unsubscribe\?token=[^>]+>,\r\n <mailto:/m);
    expect(eml.match(/^List-Unsubscribe:/gm)).toHaveLength(1);
    expect(eml).toMatch(/^List-Unsubscribe-Post: List-Unsubscribe=One-Click\r$/m);
    expect(eml).toMatch(/^Subject: The Gazette Dispatch: Tom & Jerry\r\n =\?UTF-8\?Q\?=3Cscript/m);
    await rm(outDir, { recursive: true, force: true });
  });

  it('splices recipient values into quoted-printable without breaking lines', async () => {
    const edition = await goldenEdition('story');
    const template = prepareMessageTemplate(content.site, content.site.lists[0]!, edition);
    const values = valuesFor(99, 'Zoë “Z” Ünal', 'zoe@example.com');
    const raw = renderMessage(template, {
      email: 'zoe@example.com',
      name: 'Zoë “Z” Ünal',
      values,
      unsubscribeUrl: values.unsubscribe_url,
      unsubscribeMailto: 'mailto:u@example.org',
      messageKey: 'd99.e1',
      date: NOW,
    });
    for (const line of raw.split('\r\n')) expect(line.length).toBeLessThanOrEqual(998);
    const body = raw.slice(raw.indexOf('\r\n\r\n'));
    for (const line of body.split('\r\n')) expect(line.length).toBeLessThanOrEqual(76);
    expect(raw).toContain('Date: Thu, 10 Jul 2025 08:00:00 +0000');
    expect(raw).toContain('Message-ID: <d99.e1@gazette.example.org>');
    expect(raw).toMatch(/^To: =\?UTF-8\?Q\?Zo=C3=AB/m);
    const { simpleParser } = await import('mailparser');
    const parsed = await simpleParser(raw);
    expect(parsed.text).toContain('Hello Zoë “Z” Ünal,');
    expect(parsed.html).toContain(`href="${values.unsubscribe_url}"`);
    expect(parsed.html).toBe(fillSlots(edition.html, escapeValuesForHtml(values)));
  });
});
