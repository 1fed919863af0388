import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readReport, type ReadMail } from '../../src/inbound/read-report.ts';

const FIXTURES = new URL('../fixtures/inbound/mail/', import.meta.url);

function fixture(name: string): Buffer {
  return readFileSync(new URL(name, FIXTURES));
}

async function read(name: string): Promise<ReadMail> {
  return readReport(fixture(name));
}

function expectKind<K extends ReadMail['kind']>(mail: ReadMail, kind: K): Extract<ReadMail, { kind: K }> {
  expect(mail.kind).toBe(kind);
  return mail as Extract<ReadMail, { kind: K }>;
}

const OURS = {
  messageId: '<d123.e7@example.com>',
  gazetteDelivery: 'd3f-0123456789abcdef0123',
  to: 'reader@example.net',
  from: 'news@example.com',
};

/** A multipart/report around one report part, its MIME headers and body given as lines. */
function report(partHeaders: string[], body: string[], topType = 'multipart/report; report-type=delivery-status'): Buffer {
  return Buffer.from(
    [
      'From: MAILER-DAEMON@mail.example.com',
      'To: bounce@example.com',
      'Subject: Undelivered Mail Returned to Sender',
      'Message-ID: <inline@mail.example.com>',
      'MIME-Version: 1.0',
      `Content-Type: ${topType}; boundary="b1"`,
      '',
      '--b1',
      'Content-Type: text/plain',
      '',
      'Your message could not be delivered.',
      '',
      '--b1',
      ...partHeaders,
      '',
      ...body,
      '',
      '--b1--',
      '',
    ].join('\r\n'),
  );
}

/** A single-part text mail with the given extra headers. */
function plain(headers: string[], text: string): Buffer {
  return Buffer.from([...headers, 'Content-Type: text/plain; charset=utf-8', '', text, ''].join('\r\n'));
}

const DSN_LINES = [
  'Reporting-MTA: dns; mail.example.com',
  '',
  'Final-Recipient: rfc822; reader@example.net',
  'Action: failed',
  'Status: 5.1.1',
  'Diagnostic-Code: smtp; 550 5.1.1 <reader@example.net>: User unknown',
];

describe('readReport on the fixtures', () => {
  it('reads a Postfix hard bounce, Auto-Submitted and all, as a delivery status', async () => {
    const raw = fixture('postfix-hard.eml');
    expect(raw.toString()).toContain('Auto-Submitted: auto-replied');
    const mail = expectKind(await readReport(raw), 'delivery-status');
    expect(mail.messageId).toBe('<20240514091244.4Vf2Lq1Zb8z9tB@mail.example.com>');
    expect(mail.reportingMta).toBe('mail.example.com');
    expect(mail.recipients).toEqual([
      {
        finalRecipient: 'reader@example.net',
        originalRecipient: 'reader@example.net',
        action: 'failed',
        status: '5.1.1',
        diagnosticCode: '550 5.1.1 <reader@example.net>: Recipient address rejected: User unknown in virtual mailbox table',
        remoteMta: 'mx1.example.net',
      },
    ]);
    expect(mail.original).toEqual({ ...OURS, subject: 'Your weekly Gazette' });
  });

  it('reads a Postfix delay warning as delayed 4.4.1', async () => {
    const mail = expectKind(await read('postfix-delayed.eml'), 'delivery-status');
    expect(mail.recipients).toHaveLength(1);
    expect(mail.recipients[0]).toMatchObject({ action: 'delayed', status: '4.4.1', remoteMta: null });
    expect(mail.recipients[0]!.diagnosticCode).toBe('connect to mx1.example.net[192.0.2.25]:25: Connection timed out');
    expect(mail.original).toMatchObject(OURS);
  });

  it('reads Gmail: a comment in Remote-MTA, a multi-line reply, the original as message/rfc822', async () => {
    const mail = expectKind(await read('gmail-hard.eml'), 'delivery-status');
    expect(mail.reportingMta).toBe('googlemail.com');
    const [recipient] = mail.recipients;
    expect(recipient).toMatchObject({ finalRecipient: 'reader@example.net', action: 'failed', status: '5.1.1' });
    expect(recipient!.remoteMta).toBe('gmail-smtp-in.l.google.com.');
    expect(recipient!.diagnosticCode).toMatch(/^550 5\.1\.1 The email account that you tried to reach does not exist\. Please try double-checking/);
    expect(recipient!.diagnosticCode).not.toContain('550-5.1.1');
    expect(mail.original).toEqual({ ...OURS, subject: 'Your weekly Gazette' });
  });

  it('reads an Exchange Online NDR with 5.1.10 and decodes the original subject', async () => {
    const mail = expectKind(await read('outlook-hard.eml'), 'delivery-status');
    expect(mail.recipients).toEqual([
      expect.objectContaining({
        finalRecipient: 'reader@example.net',
        action: 'failed',
        status: '5.1.10',
        diagnosticCode: '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient reader@example.net not found by SMTP address lookup',
      }),
    ]);
    expect(mail.original).toEqual({ ...OURS, subject: 'Your weekly Gazette — Harbour news' });
  });

  it("reads Exim's bare 5.0.0 Status refined by the remote's 550 5.1.1", async () => {
    const mail = expectKind(await read('exim-hard.eml'), 'delivery-status');
    expect(mail.reportingMta).toBe('mail.example.org');
    expect(mail.recipients).toEqual([expect.objectContaining({ finalRecipient: 'reader@example.net', action: 'failed', status: '5.1.1' })]);
    expect(mail.original).toMatchObject(OURS);
  });

  it('keeps a full mailbox at 5.2.2 as the MTA said it', async () => {
    const mail = expectKind(await read('dovecot-mailbox-full.eml'), 'delivery-status');
    expect(mail.recipients[0]).toMatchObject({ action: 'failed', status: '5.2.2' });
    expect(mail.recipients[0]!.diagnosticCode).toBe('552 5.2.2 <reader@example.net> Quota exceeded (mailbox for user is full)');
    expect(mail.original).toMatchObject(OURS);
  });

  it('reads both recipients of a Sendmail DSN, upper-case types and all', async () => {
    const mail = expectKind(await read('sendmail-two-recipients.eml'), 'delivery-status');
    expect(mail.recipients.map((r) => [r.finalRecipient, r.action, r.status, r.remoteMta])).toEqual([
      ['reader@example.net', 'failed', '5.1.1', 'mx.example.net'],
      ['editor@example.net', 'failed', '5.2.1', 'mx.example.net'],
    ]);
    expect(mail.original).toMatchObject(OURS);
  });

  it('reads the RFC 3464 example: comments in Status, a folded Diagnostic-Code, a delayed recipient', async () => {
    const mail = expectKind(await read('rfc3464-example.eml'), 'delivery-status');
    expect(mail.reportingMta).toBe('cs.utk.edu');
    expect(mail.recipients).toEqual([
      {
        finalRecipient: 'arathib@vnet.ibm.com',
        originalRecipient: 'arathib@vnet.ibm.com',
        action: 'failed',
        status: '5.0.0',
        diagnosticCode: "550 'arathib@vnet.IBM.COM' is not a registered gateway user",
        remoteMta: 'vnet.ibm.com',
      },
      {
        finalRecipient: 'johnh@hpnjld.njd.hp.com',
        originalRecipient: 'johnh@hpnjld.njd.hp.com',
        action: 'delayed',
        status: '4.0.0',
        diagnosticCode: null,
        remoteMta: null,
      },
      {
        finalRecipient: 'wsnell@sdcc13.ucsd.edu',
        originalRecipient: 'wsnell@sdcc13.ucsd.edu',
        action: 'failed',
        status: '5.0.0',
        diagnosticCode: '550 user unknown',
        remoteMta: 'sdcc13.ucsd.edu',
      },
    ]);
    // The RFC's "[original message goes here]" holds no header.
    expect(mail.original).toBeNull();
  });

  it('reads a Yahoo ARF abuse report with our original attached', async () => {
    const mail = expectKind(await read('yahoo-arf-abuse.eml'), 'feedback');
    expect(mail).toMatchObject({
      feedbackType: 'abuse',
      userAgent: 'Yahoo!-Mail-Feedback/2.0',
      originalRcptTo: ['reader@example.net'],
      originalMailFrom: 'bounce@example.com',
    });
    expect(mail.arrivalDate?.toISOString()).toBe('2024-05-14T09:12:43.000Z');
    expect(mail.original).toEqual({ ...OURS, subject: 'Your weekly Gazette' });
  });

  it('reads the RFC 5965 example', async () => {
    const mail = expectKind(await read('rfc5965-example.eml'), 'feedback');
    expect(mail).toMatchObject({
      messageId: null,
      feedbackType: 'abuse',
      userAgent: 'SomeGenerator/1.0',
      originalRcptTo: ['user@example.com'],
      originalMailFrom: 'somespammer@example.net',
    });
    expect(mail.arrivalDate?.toISOString()).toBe('2005-03-08T18:00:00.000Z');
    expect(mail.original).toMatchObject({ messageId: '<8787KJKJ3K4J3K4J3K4J3.mail@example.net>', gazetteDelivery: null, subject: 'Earn money' });
  });

  it('reads a Sieve vacation reply as an auto-reply', async () => {
    const mail = expectKind(await read('sieve-vacation.eml'), 'auto-reply');
    expect(mail.why).toBe('Auto-Submitted: auto-replied');
    expect(mail.messageId).toBe('<dovecot-sieve-1715677969-812734-0@mail.example.net>');
  });

  it("reads Outlook's Automatic reply, which has no Auto-Submitted, as an auto-reply", async () => {
    const raw = fixture('outlook-automatic-reply.eml');
    expect(raw.toString()).not.toMatch(/auto-submitted/i);
    const mail = expectKind(await readReport(raw), 'auto-reply');
    expect(mail.why).toMatch(/X-Auto-Response-Suppress/);
  });

  it('guesses a plain-text bounce and finds the original quoted in its text', async () => {
    const mail = expectKind(await read('qmail-plain-bounce.eml'), 'other');
    expect(mail.bounceGuess).toEqual({
      status: '5.1.1',
      diagnostic: 'Remote host said: 550 5.1.1 <reader@example.net>: Recipient address rejected: User unknown',
    });
    expect(mail.original).toEqual({ ...OURS, subject: 'Your weekly Gazette' });
    expect(mail).toMatchObject({ subject: 'failure notice', from: 'MAILER-DAEMON@mx.example.org' });
    expect(mail.headers).toEqual({ deliveredTo: ['bounce@example.com'], to: ['bounce@example.com'] });
  });
});

describe('readReport on delivery-status bodies', () => {
  it('unfolds fields, drops comments and reads names in any case', async () => {
    const mail = expectKind(
      await readReport(
        report(
          ['Content-Type: message/delivery-status'],
          [
            'reporting-mta: dns;',
            '  mail.example.com (Postfix 3.8)',
            '',
            'FINAL-RECIPIENT: rfc822; (the final one) reader@example.net',
            'ACTION: Failed (really)',
            'status: 5.1.1 (bad destination mailbox address)',
            'Diagnostic-Code: smtp; 550 5.1.1 <reader@example.net>: Recipient',
            '\taddress rejected (in reply to RCPT TO command)',
          ],
        ),
      ),
      'delivery-status',
    );
    expect(mail.reportingMta).toBe('mail.example.com');
    expect(mail.recipients).toEqual([
      {
        finalRecipient: 'reader@example.net',
        originalRecipient: null,
        action: 'failed',
        status: '5.1.1',
        // Diagnostic text keeps its parentheses: they are words, not comments.
        diagnosticCode: '550 5.1.1 <reader@example.net>: Recipient address rejected (in reply to RCPT TO command)',
        remoteMta: null,
      },
    ]);
  });

  it('decodes a base64 report part', async () => {
    const body = Buffer.from(DSN_LINES.join('\r\n') + '\r\n').toString('base64').replace(/.{76}/g, '$&\r\n');
    const mail = expectKind(
      await readReport(report(['Content-Type: message/delivery-status', 'Content-Transfer-Encoding: base64'], [body])),
      'delivery-status',
    );
    expect(mail.recipients).toEqual([expect.objectContaining({ finalRecipient: 'reader@example.net', status: '5.1.1', action: 'failed' })]);
  });

  it('decodes a quoted-printable report part with soft line breaks', async () => {
    const mail = expectKind(
      await readReport(
        report(
          ['Content-Type: message/delivery-status', 'Content-Transfer-Encoding: quoted-printable'],
          [
            'Reporting-MTA: dns; mail.example.com',
            '',
            'Final-Recipient: rfc822; reader=40example.net',
            'Action: failed',
            'Status: 5.7.1',
            'Diagnostic-Code: smtp; 550 5.7.1 Message rejected as spam by Content Filt=',
            'ering',
          ],
        ),
      ),
      'delivery-status',
    );
    expect(mail.recipients).toEqual([
      expect.objectContaining({ finalRecipient: 'reader@example.net', status: '5.7.1', diagnosticCode: '550 5.7.1 Message rejected as spam by Content Filtering' }),
    ]);
  });

  it('reads a message/global-delivery-status part and its utf-8 addresses', async () => {
    const mail = expectKind(
      await readReport(
        report(
          ['Content-Type: message/global-delivery-status'],
          ['Reporting-MTA: dns; mail.example.com', '', 'Final-Recipient: utf-8; j\\x{00F6}rg@example.net', 'Original-Recipient: utf-8;jörg@example.net', 'Action: failed', 'Status: 5.1.1'],
          'multipart/report; report-type=global-delivery-status',
        ),
      ),
      'delivery-status',
    );
    expect(mail.recipients[0]).toMatchObject({ finalRecipient: 'jörg@example.net', originalRecipient: 'jörg@example.net', status: '5.1.1' });
  });

  it('tolerates a delivery-status part without the right report-type', async () => {
    const mail = await readReport(report(['Content-Type: message/delivery-status'], DSN_LINES, 'multipart/mixed'));
    expect(expectKind(mail, 'delivery-status').recipients).toHaveLength(1);
  });

  it('reads recipient groups even when the per-message group is missing', async () => {
    const mail = await readReport(report(['Content-Type: message/delivery-status'], DSN_LINES.slice(2)));
    const dsn = expectKind(mail, 'delivery-status');
    expect(dsn.reportingMta).toBeNull();
    expect(dsn.recipients[0]).toMatchObject({ finalRecipient: 'reader@example.net', status: '5.1.1' });
  });

  it.each([
    ['missing', [], 'smtp; 550 5.1.1 user unknown', '5.1.1'],
    ['malformed', ['Status: 5.1'], 'smtp; 550-5.1.1 user unknown', '5.1.1'],
    ['missing, bare reply code', [], 'smtp; 550 user unknown', '5.0.0'],
    ['missing, temporary', [], 'smtp; 452 too many recipients', '4.0.0'],
  ])('takes the code from the diagnostic when Status is %s', async (_, status, diagnostic, expected) => {
    const mail = await readReport(
      report(['Content-Type: message/delivery-status'], ['Reporting-MTA: dns; mail.example.com', '', 'Final-Recipient: rfc822; reader@example.net', 'Action: failed', ...status, `Diagnostic-Code: ${diagnostic}`]),
    );
    expect(expectKind(mail, 'delivery-status').recipients[0]!.status).toBe(expected);
  });

  it('infers a missing Action from the status class', async () => {
    const mail = await readReport(report(['Content-Type: message/delivery-status'], ['Final-Recipient: rfc822; reader@example.net', 'Status: 4.4.7']));
    expect(expectKind(mail, 'delivery-status').recipients[0]!.action).toBe('delayed');
  });

  it('keeps a specific Status even when the diagnostic names another code', async () => {
    const mail = await readReport(
      report(['Content-Type: message/delivery-status'], ['Final-Recipient: rfc822; reader@example.net', 'Action: failed', 'Status: 5.7.1', 'Diagnostic-Code: smtp; 550 5.1.1 no']),
    );
    expect(expectKind(mail, 'delivery-status').recipients[0]!.status).toBe('5.7.1');
  });

  it('reads a feedback report whose fields are folded and commented', async () => {
    const mail = await readReport(
      report(
        ['Content-Type: message/feedback-report'],
        ['Feedback-Type: Abuse (a complaint)', 'User-Agent: Example-FBL/1.0 (beta)', 'Version: 1', 'Original-Rcpt-To: <reader@example.net>', 'Original-Rcpt-To:', '  <second@example.net>', 'Arrival-Date: Tue, 14 May 2024', ' 09:12:43 +0000 (UTC)'],
        'multipart/report; report-type=feedback-report',
      ),
    );
    const feedback = expectKind(mail, 'feedback');
    expect(feedback).toMatchObject({ feedbackType: 'abuse', userAgent: 'Example-FBL/1.0 (beta)', originalRcptTo: ['reader@example.net', 'second@example.net'], originalMailFrom: null });
    expect(feedback.arrivalDate?.toISOString()).toBe('2024-05-14T09:12:43.000Z');
  });
});

describe('readReport on mails that are not reports', () => {
  it.each([
    [['Subject: Abwesenheitsnotiz: Your weekly Gazette'], /subject/],
    [['Subject: Out of Office: Your weekly Gazette'], /subject/],
    [['Subject: Re: Your weekly Gazette', 'X-Autoreply: yes'], /X-Autoreply/],
    [['Subject: Re: Your weekly Gazette', 'X-Autorespond: Your weekly Gazette'], /X-Autorespond/],
    [['Subject: Thanks', 'Precedence: auto_reply'], /Precedence/],
    [['Subject: Re: Your weekly Gazette', 'Auto-Submitted: auto-generated'], /auto-generated/],
  ])('reads %j as an auto-reply', async (headers, why) => {
    const mail = await readReport(plain(['From: reader@example.net', ...headers], 'I will be back next week.'));
    expect(expectKind(mail, 'auto-reply').why).toMatch(why);
  });

  it('reads a human reply as other, without a bounce guess', async () => {
    const mail = await readReport(
      plain(
        ['Delivered-To: news@example.com', 'X-Original-To: letters@example.com', 'From: Rita <reader@example.net>', 'To: Gazette <news@example.com>', 'Subject: Re: Your weekly Gazette', 'Auto-Submitted: no', 'X-Auto-Response-Suppress: All'],
        'Lovely issue, thanks!',
      ),
    );
    const other = expectKind(mail, 'other');
    expect(other).toMatchObject({ subject: 'Re: Your weekly Gazette', from: 'reader@example.net', bounceGuess: null, original: null });
    expect(other.text).toContain('Lovely issue');
    expect(other.headers).toEqual({ deliveredTo: ['news@example.com', 'letters@example.com'], to: ['news@example.com'] });
  });

  it('derives 5.0.0 from a bare 550 in a failure notice, even with Auto-Submitted set', async () => {
    const mail = await readReport(
      plain(['From: postmaster@example.org', 'Subject: Undeliverable: Your weekly Gazette', 'Auto-Submitted: auto-replied'], 'Your message could not be delivered.\n\n  550 Requested action not taken: mailbox unavailable\n'),
    );
    expect(expectKind(mail, 'other').bounceGuess).toEqual({ status: '5.0.0', diagnostic: '550 Requested action not taken: mailbox unavailable' });
  });

  it('guesses nothing without both a failure phrase and a code', async () => {
    const noCode = await readReport(plain(['Subject: Returned mail'], 'Your message could not be delivered.'));
    expect(expectKind(noCode, 'other').bounceGuess).toBeNull();
    const noPhrase = await readReport(plain(['Subject: Server upgrade'], 'We moved to 5.1.1 of the software, see 192.0.2.5.'));
    expect(expectKind(noPhrase, 'other').bounceGuess).toBeNull();
  });

  it('keeps only the first 64 KiB of text', async () => {
    const mail = await readReport(plain(['Subject: long'], 'x'.repeat(200_000)));
    expect(expectKind(mail, 'other').text.length).toBe(64 * 1024);
  });
});

describe('readReport on garbage', () => {
  it.each([
    ['empty input', Buffer.alloc(0)],
    ['a single newline', Buffer.from('\r\n')],
    ['binary noise', randomBytes(4096)],
    ['2 MB of random bytes', randomBytes(2 * 1024 * 1024)],
    ['2 MB of one header line', Buffer.from('Subject: ' + 'a'.repeat(2 * 1024 * 1024))],
    ['a report cut off before its status part', fixture('gmail-hard.eml').subarray(0, 3000)],
    ['an unclosed nested boundary', Buffer.from('Content-Type: multipart/report; report-type=delivery-status; boundary=a\r\n\r\n--a\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n')],
    ['too many parts', Buffer.from('Content-Type: multipart/mixed; boundary=b\r\n\r\n' + '--b\r\nContent-Type: text/plain\r\n\r\nx\r\n'.repeat(1500) + '--b--\r\n')],
  ])('returns kind other for %s', async (_, raw) => {
    const mail = await readReport(raw);
    expect(mail.kind).toBe('other');
  });

  it('reads what arrived of a report cut off inside its status part', async () => {
    const raw = fixture('gmail-hard.eml');
    const cut = raw.indexOf('Remote-MTA:');
    const mail = expectKind(await readReport(raw.subarray(0, cut)), 'delivery-status');
    expect(mail.recipients).toEqual([expect.objectContaining({ finalRecipient: 'reader@example.net', status: '5.1.1', diagnosticCode: null })]);
  });

  it('never rejects on random bytes or on fixtures cut and spliced at random', async () => {
    const names = ['postfix-hard.eml', 'gmail-hard.eml', 'outlook-hard.eml', 'yahoo-arf-abuse.eml', 'qmail-plain-bounce.eml'];
    const sources = names.map(fixture);
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 2048 }).map((bytes) => Buffer.from(bytes)),
          fc
            .tuple(fc.nat(sources.length - 1), fc.nat(), fc.nat(), fc.uint8Array({ maxLength: 64 }))
            .map(([i, a, b, noise]) => {
              const source = sources[i]!;
              const cut = a % source.length;
              return Buffer.concat([source.subarray(0, cut), Buffer.from(noise), source.subarray(cut + (b % 200))]);
            }),
        ),
        async (raw) => {
          const mail = await readReport(raw);
          expect(['delivery-status', 'feedback', 'auto-reply', 'other']).toContain(mail.kind);
        },
      ),
      { numRuns: 150 },
    );
  });
});
