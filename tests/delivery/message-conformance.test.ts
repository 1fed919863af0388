import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { simpleParser } from 'mailparser';
import DKIM from 'nodemailer/lib/dkim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMessageSigner } from '../../src/delivery/dkim.ts';
import { writePreview } from '../../src/edition/write-preview.ts';
import { addSubscribers, readers, sendDigest } from '../helpers/delivery-setup.ts';
import { checkMessage, checkMessageRules, headerValues, type ConformanceOptions } from '../helpers/message-conformance.ts';
import { linkIn, type OutboxMessage } from '../helpers/outbox.ts';
import { testServer, type TestServer } from '../helpers/server.ts';

// The project's own bulk-sender checks (tests/helpers/message-conformance.ts), over real messages
// Gazette writes: an edition through the outbox transport, the same DKIM-signed, a preview, the
// confirmation and welcome notices; then each rule shown to fail on a message that breaks it.

const DOMAIN = 'gazette.example.org';
const SELECTOR = 'test';

function rsaKey() {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    pem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    txtRecord: `v=DKIM1; k=rsa; p=${publicKey.export({ type: 'spki', format: 'der' }).toString('base64')}`,
  };
}

const key = rsaKey();
const DKIM_OPTIONS: ConformanceOptions = { dkim: { txtRecord: key.txtRecord, domain: DOMAIN, selector: SELECTOR } };

let keyDir: string;
let plain: TestServer;
let signed: TestServer;
let edition: OutboxMessage[];
let signedEdition: OutboxMessage[];

/** Subscribes `email` through the form, confirms by the emailed link; returns both notices. */
async function subscribeAndConfirm(t: TestServer, email: string): Promise<{ confirmation: OutboxMessage; welcome: OutboxMessage }> {
  const form = { 'content-type': 'application/x-www-form-urlencoded' };
  const subscribed = await t.server.inject({ method: 'POST', url: '/subscribe', headers: form, payload: `email=${encodeURIComponent(email)}&lists=dispatch&frequency=weekly` });
  expect(subscribed.statusCode).toBe(200);
  const to = (m: OutboxMessage) => headerValues(m.raw, 'To').some((v) => v.includes(email));
  const confirmation = (await t.outbox()).find((m) => to(m) && m.parsed.subject?.startsWith('Confirm'));
  expect(confirmation).toBeDefined();
  const link = new URL(linkIn(confirmation!, '/confirm'));
  const confirmed = await t.server.inject({ method: 'POST', url: `${link.pathname}${link.search}`, headers: form, payload: '' });
  expect(confirmed.statusCode).toBe(200);
  const welcome = (await t.outbox()).find((m) => to(m) && m.parsed.subject?.startsWith('Welcome'));
  expect(welcome).toBeDefined();
  return { confirmation: confirmation!, welcome: welcome! };
}

/** A digest to three readers, sent by the worker through the outbox transport. */
async function sendEdition(t: TestServer): Promise<OutboxMessage[]> {
  await addSubscribers(t.app, readers(3));
  const id = await sendDigest(t.app);
  const messages = (await t.outbox()).filter((m) => m.raw.includes(`.e${id}@`));
  expect(messages).toHaveLength(3);
  return messages;
}

beforeAll(async () => {
  keyDir = await mkdtemp(path.join(os.tmpdir(), 'gazette-dkim-'));
  const keyFile = path.join(keyDir, 'dkim.pem');
  await writeFile(keyFile, key.pem);
  plain = await testServer();
  signed = await testServer({ env: { DKIM_DOMAIN: DOMAIN, DKIM_SELECTOR: SELECTOR, DKIM_PRIVATE_KEY_FILE: keyFile } });
  edition = await sendEdition(plain);
  signedEdition = await sendEdition(signed);
});

afterAll(async () => {
  await plain?.close();
  await signed?.close();
  if (keyDir) await rm(keyDir, { recursive: true, force: true });
});

describe('messages Gazette writes conform', () => {
  it('an edition sent through the outbox transport', async () => {
    for (const message of edition) expect(await checkMessage(message.raw), message.file).toEqual([]);
    // No signature configured: the DKIM rules are skipped, not passed.
    expect(await checkMessageRules(edition[0]!.raw)).toContainEqual({ status: 'SKIP', rule: 'dkim-signature present', detail: 'no DKIM-Signature header' });
  });

  it('the same edition DKIM-signed, verified with mailauth against the test key', async () => {
    for (const message of signedEdition) {
      expect(await checkMessage(message.raw, DKIM_OPTIONS), message.file).toEqual([]);
      const rules = await checkMessageRules(message.raw, DKIM_OPTIONS);
      expect(rules.find((r) => r.rule.startsWith('dkim cryptographic verify'))).toMatchObject({ status: 'PASS' });
      expect(rules.find((r) => r.rule.startsWith('dkim h= covers'))).toMatchObject({ status: 'PASS' });
    }
  });

  it('a preview .eml, unsigned and signed', async () => {
    const outDir = await mkdtemp(path.join(os.tmpdir(), 'gazette-preview-'));
    try {
      const app = signed.app;
      const request = { content: await app.content(), templates: await app.adapters.emailTemplates(), tokens: await app.adapters.tokens(), outDir, now: new Date(), digest: true };
      const unsigned = await writePreview({ ...request, signMessage: await createMessageSigner(undefined) });
      const raw = await readFile(unsigned.files.eml, 'utf8');
      expect(await checkMessage(raw)).toEqual([]);
      const keyFile = path.join(keyDir, 'dkim.pem');
      const signedPreview = await writePreview({ ...request, signMessage: await createMessageSigner({ domain: DOMAIN, selector: SELECTOR, privateKeyFile: keyFile }) });
      expect(await checkMessage(await readFile(signedPreview.files.eml, 'utf8'), DKIM_OPTIONS)).toEqual([]);
    } finally {
      await rm(outDir, { recursive: true, force: true });
    }
  });

  it('the confirmation (transactional) and the welcome (a list message), unsigned and signed', async () => {
    const { confirmation, welcome } = await subscribeAndConfirm(plain, 'new-reader@example.com');
    expect(await checkMessage(confirmation.raw, { kind: 'transactional' })).toEqual([]);
    // A confirmation carries no list headers, so as a list message it would not pass.
    expect(await checkMessage(confirmation.raw)).toEqual(expect.arrayContaining([expect.stringMatching(/^list-unsubscribe present/)]));
    expect(await checkMessage(welcome.raw)).toEqual([]);

    const notices = await subscribeAndConfirm(signed, 'signed-reader@example.com');
    expect(await checkMessage(notices.confirmation.raw, { ...DKIM_OPTIONS, kind: 'transactional' })).toEqual([]);
    expect(await checkMessage(notices.welcome.raw, DKIM_OPTIONS)).toEqual([]);
  });
});

describe('each rule fails on a message that breaks it', () => {
  const good = () => edition[0]!.raw;
  const problems = (raw: string, options?: ConformanceOptions) => checkMessage(raw, options);

  const headerCases: [string, (raw: string) => string, RegExp][] = [
    ['two List-Unsubscribe fields', (raw) => raw.replace(/^List-Unsubscribe: (<[^>]+>),\r\n (<[^>]+>)/m, 'List-Unsubscribe: $1\r\nList-Unsubscribe: $2'), /^list-unsubscribe single field/],
    ['no List-Unsubscribe', (raw) => raw.replace(/^List-Unsubscribe: .*\r\n .*\r\n/m, ''), /^list-unsubscribe present/],
    ['only a mailto: List-Unsubscribe', (raw) => raw.replace(/^List-Unsubscribe: <https:[^>]+>,\r\n /m, 'List-Unsubscribe: '), /^list-unsubscribe has https URI/],
    ['a List-Unsubscribe URI outside <>', (raw) => raw.replace(/^List-Unsubscribe: <(https:[^>]+)>,\r\n (<[^>]+>)/m, 'List-Unsubscribe: $1'), /^list-unsubscribe syntax/],
    ['no List-Unsubscribe-Post', (raw) => raw.replace(/^List-Unsubscribe-Post: .*\r\n/m, ''), /^list-unsubscribe-post = List-Unsubscribe=One-Click/],
    ['List-Unsubscribe-Post of another value', (raw) => raw.replace(/^List-Unsubscribe-Post: .*$/m, 'List-Unsubscribe-Post: List-Unsubscribe=one-click\r'), /^list-unsubscribe-post/],
    ['two From fields', (raw) => raw.replace(/^From: /m, 'From: other@example.net\r\nFrom: '), /^from: /],
    ['no From', (raw) => raw.replace(/^From: .*\r\n/m, ''), /^from: From: \(missing\)/],
    ['a Date without its zone', (raw) => raw.replace(/^(Date: .*?) [+-]\d{4}\r$/m, '$1\r'), /^date: /],
    ['a Date in an unknown zone (-0000)', (raw) => raw.replace(/^(Date: .*?) [+-]\d{4}\r$/m, '$1 -0000\r'), /^date: /],
    ['no Message-ID', (raw) => raw.replace(/^Message-ID: .*\r\n/m, ''), /^message-id: /],
    ['a Message-ID without a domain', (raw) => raw.replace(/^Message-ID: <([^@>]+)@[^>]+>/m, 'Message-ID: <$1>'), /^message-id: /],
    ['no MIME-Version', (raw) => raw.replace(/^MIME-Version: 1\.0\r\n/m, ''), /^mime-version: /],
    ['two Subject fields', (raw) => raw.replace(/^Subject: /m, 'Subject: Another\r\nSubject: '), /^single-instance-headers/],
    ['a line over 998 characters', (raw) => raw.replace(/^MIME-Version: 1\.0/m, `X-Long: ${'x'.repeat(1000)}\r\nMIME-Version: 1.0`), /^line-length<=998/],
    ['HTML before text', swapAlternativeParts, /^text\/plain before text\/html/],
    ['no multipart/alternative', (raw) => raw.replace(/^Content-Type: multipart\/alternative;/m, 'Content-Type: multipart/mixed;'), /^multipart\/alternative with text\/plain \+ text\/html/],
  ];
  it.each(headerCases)('%s', async (_name, breakIt, problem) => {
    const broken = breakIt(good());
    expect(broken).not.toBe(good());
    expect(await problems(broken)).toEqual(expect.arrayContaining([expect.stringMatching(problem)]));
  });

  const htmlCases: [string, (html: string) => string, RegExp][] = [
    ['a <script>', (html) => html.replace('</body>', '<script>alert(1)</script></body>'), /^no <script>/],
    ['a javascript: link', (html) => html.replace('</body>', '<a href="javascript:alert(1)">x</a></body>'), /^no <script> \/ javascript: URLs/],
    ['an image without alt', (html) => html.replace('</body>', '<img src="https://img.example.org/x.png"></body>'), /^every <img> has alt/],
    ['an image with a relative src', (html) => html.replace('</body>', '<img src="/x.png" alt="x"></body>'), /^img src absolute/],
    ['no viewport meta', (html) => html.replace(/<meta[^>]*name="viewport"[^>]*>/gi, ''), /^viewport meta/],
    ['no visible unsubscribe link', (html) => html.replace(/<a\b[^>]*>(?:(?!<\/a>)[\s\S])*?(?:unsub|opt.?out)[\s\S]*?<\/a>|<a\b[^>]*(?:unsub|opt.?out)[^>]*>[\s\S]*?<\/a>/gi, ''), /^visible unsubscribe link/],
    ['HTML over 102 KiB', (html) => html.replace('</body>', `<p>${'x'.repeat(105 * 1024)}</p></body>`), /^html size < Gmail clip/],
  ];
  it('rewrites the HTML part faithfully (the unbroken rewrite conforms)', async () => {
    expect(await problems(await withHtml(good(), (html) => html))).toEqual([]);
  });
  it.each(htmlCases)('%s', async (_name, breakIt, problem) => {
    expect(await problems(await withHtml(good(), breakIt))).toEqual(expect.arrayContaining([expect.stringMatching(problem)]));
  });

  it('a signed header changed in transit fails the DKIM verification', async () => {
    const raw = signedEdition[0]!.raw;
    expect(await problems(raw, DKIM_OPTIONS)).toEqual([]);
    const tampered = raw.replace('<https://gazette.test/unsubscribe?', '<https://evil.example.net/unsubscribe?');
    expect(tampered).not.toBe(raw);
    expect(await problems(tampered, DKIM_OPTIONS)).toEqual([expect.stringMatching(/^dkim cryptographic verify \(mailauth\): fail/)]);
    const resubjected = raw.replace(/^Subject: .*$/m, 'Subject: Something else\r');
    expect(await problems(resubjected, DKIM_OPTIONS)).toEqual([expect.stringMatching(/^dkim cryptographic verify/)]);
  });

  it('a signature made with another key fails, and an unsigned message fails when DKIM is configured', async () => {
    const other = rsaKey();
    const options = { dkim: { txtRecord: other.txtRecord, domain: DOMAIN, selector: SELECTOR } };
    expect(await problems(signedEdition[0]!.raw, options)).toEqual([expect.stringMatching(/^dkim cryptographic verify/)]);
    expect(await problems(good(), DKIM_OPTIONS)).toEqual([expect.stringMatching(/^dkim-signature present/)]);
  });

  it('a valid signature whose h= leaves out List-Unsubscribe-Post, or of a domain not aligned with From, fails', async () => {
    const narrow = await sign(good(), DOMAIN, 'from:to:subject:date:message-id:list-unsubscribe');
    const narrowProblems = await problems(narrow, DKIM_OPTIONS);
    expect(narrowProblems).toEqual([expect.stringMatching(/^dkim h= covers from, list-unsubscribe\(-post\).*missing\/under-counted: list-unsubscribe-post/)]);

    const elsewhere = await sign(good(), 'elsewhere.example.net', 'from:to:subject:date:message-id:list-unsubscribe:list-unsubscribe-post');
    const elsewhereOptions = { dkim: { txtRecord: key.txtRecord, domain: 'elsewhere.example.net', selector: SELECTOR } };
    expect(await problems(elsewhere, elsewhereOptions)).toEqual([expect.stringMatching(/^dkim d= aligned with From domain/)]);
  });

  it('a signature whose h= counts one List-Unsubscribe while the message has two fails', async () => {
    const twoFields = good().replace(/^List-Unsubscribe: (<[^>]+>),\r\n (<[^>]+>)/m, 'List-Unsubscribe: $1\r\nList-Unsubscribe: $2');
    const signedTwo = await sign(twoFields, DOMAIN, 'from:to:subject:date:message-id:list-unsubscribe:list-unsubscribe-post');
    expect(await problems(signedTwo, DKIM_OPTIONS)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^list-unsubscribe single field/), expect.stringMatching(/^dkim h= covers.*list-unsubscribe/)]),
    );
  });
});

/** Signs `raw` with the test key for `domain`, covering exactly `headers`. */
async function sign(raw: string, domain: string, headers: string): Promise<string> {
  const signer = new DKIM({ domainName: domain, keySelector: SELECTOR, privateKey: key.pem, headerFieldNames: headers });
  const chunks: Buffer[] = [];
  for await (const chunk of signer.sign(raw)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** The top-level boundary and the parts between its delimiters. */
function partsOf(raw: string): { boundary: string; head: string; parts: string[] } {
  const boundary = /boundary="([^"]+)"/.exec(raw)![1]!;
  const [head, ...rest] = raw.split(`--${boundary}`);
  return { boundary, head: head!, parts: rest.slice(0, -1) };
}

/** The message with its text/plain and text/html parts in the other order. */
function swapAlternativeParts(raw: string): string {
  const { boundary, head, parts } = partsOf(raw);
  const text = parts.find((p) => /^\r\nContent-Type: text\/plain/.test(p))!;
  const html = parts.find((p) => /^\r\nContent-Type: text\/html/.test(p))!;
  // Each part keeps the CRLF that precedes the next delimiter.
  const withBreak = (part: string) => (part.endsWith('\r\n') ? part : `${part}\r\n`);
  return `${head}--${boundary}${withBreak(html)}--${boundary}${withBreak(text)}--${boundary}--\r\n`;
}

/** The message with its HTML part rewritten by `edit` (re-encoded as base64). */
async function withHtml(raw: string, edit: (html: string) => string): Promise<string> {
  const html = (await simpleParser(raw)).html;
  if (typeof html !== 'string') throw new Error('no HTML part to edit');
  const { boundary, head, parts } = partsOf(raw);
  const encoded = Buffer.from(edit(html), 'utf8').toString('base64').replace(/.{76}/g, '$&\r\n');
  const rewritten = parts.map((part) =>
    /^\r\nContent-Type: text\/html/.test(part) ? `\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n${encoded}\r\n` : part,
  );
  return `${head}${rewritten.map((part) => `--${boundary}${part}`).join('')}--${boundary}--\r\n`;
}
