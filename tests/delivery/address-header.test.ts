import fc from 'fast-check';
import { simpleParser, type AddressObject } from 'mailparser';
import { describe, expect, it } from 'vitest';
import type { MailingList, Site } from '../../src/model/content.ts';
import { formatAddress, prepareMessageTemplate, renderMessage } from '../../src/delivery/mime-message.ts';
import type { CompiledEdition } from '../../src/render/compile-edition.ts';
import { crlfOnly, dataSection } from '../../src/delivery/smtp-pipeline.ts';
import { recipientValues } from '../../src/render/slots.ts';
import { parseEmailAddress } from '../../src/subscribers/email-address.ts';

const BUG_REPORT_NAME = 'Ü, attacker@evil.example, Mallory <mallory@evil.example>, Bob';

const LIST: MailingList = { slug: 'dispatch', name: 'The Dispatch', description: '' };
const EDITION: CompiledEdition = {
  subject: 'Harbour news — Київ',
  preheader: '',
  html: { parts: ['<p>Hello</p>'], fields: [] },
  text: { parts: ['Hello'], fields: [] },
};

function site(senderName: string, list: MailingList = LIST): Site {
  return {
    title: 'The Gazette',
    description: '',
    baseUrl: 'https://gazette.example.org',
    language: 'en',
    timezone: 'UTC',
    sender: { name: senderName, address: 'news@gazette.example.org', replyTo: undefined },
    postalAddress: '',
    editors: [],
    lists: [list],
    feed: { limit: 10, ttlMinutes: 60 },
    theme: { accent: '#9c2f1f', logoUrl: undefined },
  };
}

/** A whole message with `name` as both the sender's and the recipient's display name. */
function message(name: string, email: string, list: MailingList = LIST): string {
  return renderMessage(prepareMessageTemplate(site(name, list), list, EDITION), {
    email,
    name,
    values: recipientValues({ greeting: '', email, unsubscribe_url: '', preferences_url: '' }),
    unsubscribeUrl: 'https://gazette.example.org/u?t=1',
    unsubscribeMailto: 'mailto:u@gazette.example.org',
    messageKey: 'd1.e1',
    date: new Date('2025-07-10T08:00:00Z'),
  });
}

/**
 * The name a reader sees, by the rule formatAddress implements: CR, LF, tab, U+2028 and U+2029
 * become a space; every other control character (U+0000–U+001F, U+007F–U+009F) is removed;
 * an unpaired surrogate becomes U+FFFD; runs of spaces collapse to one; the ends are trimmed.
 */
function expectedName(name: string): string {
  return name
    .replace(/[\t\r\n\u2028\u2029]/g, ' ')
    .replace(/[\u0000-\u001f\u007f-\u009f]/g, '')
    .replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd')
    .replace(/ {2,}/g, ' ')
    .trim();
}

function headerBlock(raw: string): string {
  return raw.slice(0, raw.indexOf('\r\n\r\n'));
}

function mailboxes(field: AddressObject | AddressObject[] | undefined): { address?: string; name: string }[] {
  return (Array.isArray(field) ? field : field ? [field] : []).flatMap((f) => f.value);
}

async function expectOneMailbox(name: string, email: string): Promise<void> {
  const raw = message(name, email);
  const lines = headerBlock(raw).split('\r\n');
  for (const line of lines) {
    expect(line.length).toBeLessThanOrEqual(998);
    // Split on CRLF, so a bare CR or LF would show up here too.
    expect(line).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/);
  }
  // Exactly one To: and one From: field, however they were folded.
  expect(lines.filter((line) => /^To:/i.test(line))).toHaveLength(1);
  expect(lines.filter((line) => /^From:/i.test(line))).toHaveLength(1);
  const parsed = await simpleParser(raw);
  expect(mailboxes(parsed.to)).toEqual([{ address: email, name: expectedName(name) }]);
  expect(mailboxes(parsed.from)).toEqual([{ address: 'news@gazette.example.org', name: expectedName(name) }]);
}

// Fragments that have broken mail headers before: specials, quoting, address look-alikes,
// encoded-word look-alikes, folding whitespace, controls, non-ASCII and astral characters.
const FRAGMENTS = [
  ' ', '  ', '"', '\\', ',', ';', ':', '.', '@', '<', '>', '(', ')', '[', ']', '=?', '?=', '_', '=',
  '<x@y.example>', 'a@b.example', 'Mallory <m@evil.example>, ', '=?UTF-8?B?QUJD?=', '=?utf-8?q?a_b?=',
  'Ann', 'O\'Brien', 'Ü', 'ë', 'Олена', '中文', '🎉', '👩‍👩‍👧', '\u00a0', '\u3000', '\ufeff',
  '\u0000', '\u000b', '\u000c', '\t', '\r', '\n', '\r\n ', '\u007f', '\u0085', '\u009b', '\u2028', '\u2029',
  '\ud83c', '\udf89',
];

const names = fc.oneof(
  fc.string({ unit: fc.constantFrom(...FRAGMENTS), maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 120 }),
  // Any UTF-16 unit, unpaired surrogates included.
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((n) => String.fromCharCode(n)), maxLength: 80 }),
  fc.string({ unit: 'grapheme-ascii', maxLength: 200 }),
  // Very long names: many encoded-words, or words too long to fold.
  fc.string({ unit: fc.constantFrom(...FRAGMENTS, 'x', 'xyz', 'Ü'), minLength: 200, maxLength: 600 }),
  fc.string({ unit: fc.constantFrom('a', 'b', '"', ','), minLength: 80, maxLength: 1200 }),
);

// Addresses the subscribe form and CSV import accept (ASCII ones: see the report on IDN domains).
const addresses = fc.emailAddress().filter((email) => email.length <= 254 && !('error' in parseEmailAddress(email)));

describe('To: and From: with hostile display names', () => {
  it('keeps the bug report\'s name one mailbox, encoded whole', async () => {
    await expectOneMailbox(BUG_REPORT_NAME, 'bob@example.com');
    const to = formatAddress('bob@example.com', BUG_REPORT_NAME);
    // No comma, angle bracket or at sign outside the address.
    expect(to.slice(0, to.lastIndexOf(' <'))).toMatch(/^=\?UTF-8\?Q\?[A-Za-z0-9!*+\-/=_]+\?=( =\?UTF-8\?Q\?[A-Za-z0-9!*+\-/=_]+\?=)*$/);
    expect(to.endsWith(' <bob@example.com>')).toBe(true);
  });

  it('keeps NUL, VT and FF out of the header', async () => {
    await expectOneMailbox('Ann\u0000\u000b\u000cBob', 'ann@example.com');
    expect(formatAddress('ann@example.com', 'Ann\u0000\u000b\u000c Bob')).toBe('Ann Bob <ann@example.com>');
    expect(formatAddress('ann@example.com', 'Ann\r\nBcc: x@evil.example')).toBe('"Ann Bcc: x@evil.example" <ann@example.com>');
  });

  it('writes atoms bare, quotes other ASCII, and encodes the rest', () => {
    expect(formatAddress('a@example.com', 'The Gazette Dispatch')).toBe('The Gazette Dispatch <a@example.com>');
    expect(formatAddress('a@example.com', 'Smith, J. "Jo" \\o/')).toBe('"Smith, J. \\"Jo\\" \\\\o/" <a@example.com>');
    expect(formatAddress('a@example.com', '=?UTF-8?B?QUJD?=')).toBe('=?UTF-8?Q?=3D=3FUTF-8=3FB=3FQUJD=3F=3D?= <a@example.com>');
    expect(formatAddress('a@example.com', 'Zoë')).toBe('=?UTF-8?Q?Zo=C3=AB?= <a@example.com>');
    expect(formatAddress('a@example.com', ' \r\n ')).toBe('a@example.com');
    expect(formatAddress('a@example.com')).toBe('a@example.com');
  });

  it('splits a long name into encoded-words of at most 75 characters, never inside a character', async () => {
    const name = `${'Ünal 🎉 '.repeat(30)}end`;
    const words = formatAddress('a@example.com', name).split(' ').slice(0, -1);
    expect(words.length).toBeGreaterThan(5);
    for (const word of words) {
      expect(word.length).toBeLessThanOrEqual(75);
      // Each word decodes to valid UTF-8 on its own (RFC 2047 §5: whole characters only).
      const bytes = Buffer.from(word.slice('=?UTF-8?Q?'.length, -2).replace(/_/g, ' ').replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))), 'latin1');
      expect(new TextDecoder('utf-8', { fatal: true }).decode(bytes)).not.toContain('\ufffd');
    }
    await expectOneMailbox(name, 'a@example.com');
  });

  it('gives List-Id the same phrase rules', () => {
    const raw = message('Ann', 'a@example.com', { slug: 'news', name: 'News, Views <x@y.example>', description: '' });
    expect(headerBlock(raw)).toContain('\r\nList-Id: "News, Views <x@y.example>" <news.gazette.example.org>\r\n');
  });

  it('always parses back as exactly the one given mailbox, with the name as given (property)', async () => {
    await fc.assert(
      fc.asyncProperty(names, addresses, async (name, email) => {
        await expectOneMailbox(name, email);
      }),
      { numRuns: 300 },
    );
  });

  it('builds a canonical message for any name and values, as the fast SMTP path trusts: 7-bit ASCII, CRLF line ends only (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 80 }), fc.string({ unit: 'binary', maxLength: 200 }), (name, greeting) => {
        const email = 'reader@example.com';
        const raw = renderMessage(prepareMessageTemplate(site(name), LIST, { ...EDITION, text: { parts: ['A\n', '\n.B\r\n'], fields: ['greeting'] }, html: { parts: ['<p>', '</p>'], fields: ['greeting'] } }), {
          email,
          name,
          values: recipientValues({ greeting, email, unsubscribe_url: '', preferences_url: '' }),
          unsubscribeUrl: 'https://gazette.example.org/u?t=1',
          unsubscribeMailto: 'mailto:u@gazette.example.org',
          messageKey: 'd1.e1',
          date: new Date('2025-07-10T08:00:00Z'),
        });
        expect(raw).toMatch(/^[\x00-\x7f]*$/);
        expect(crlfOnly(raw)).toBe(true);
        // Written as canonical or checked, the data section is the same.
        expect(dataSection(raw, true)).toBe(dataSection(raw, false));
      }),
      { numRuns: 300 },
    );
  });
});
