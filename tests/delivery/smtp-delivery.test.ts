import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { AddressObject } from 'mailparser';
import { describe, expect, it } from 'vitest';
import { checkEml } from '../helpers/check-eml.ts';
import { addSubscribers, afterThisTest, BASE_URL, deliverAll, enqueue, FAST, ledger, readers, sendDigest, SENDER, setup } from '../helpers/delivery-setup.ts';
import type { RecordedMessage, SmtpRecorderOptions } from '../helpers/smtp-recorder.ts';

/** Unfolded values of a top-level header, straight from the raw message. */
function rawHeader(raw: string, name: string): string[] {
  const head = raw.split(/\r?\n\r?\n/, 1)[0]!;
  const unfolded = head.replace(/\r?\n[ \t]+/g, ' ');
  return unfolded
    .split(/\r?\n/)
    .filter((line) => line.toLowerCase().startsWith(`${name.toLowerCase()}:`))
    .map((line) => line.slice(name.length + 1).trim());
}

const addressesOf = (field: AddressObject | AddressObject[] | undefined) =>
  (Array.isArray(field) ? field : field ? [field] : []).flatMap((a) => a.value.map((v) => v.address?.toLowerCase()));

async function writeEml(messages: RecordedMessage[]): Promise<string[]> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gazette-eml-'));
  afterThisTest(() => rm(dir, { recursive: true, force: true }));
  return Promise.all(
    messages.map(async (m, i) => {
      const file = path.join(dir, `message-${i + 1}.eml`);
      await writeFile(file, m.raw);
      return file;
    }),
  );
}

function countBy<T>(items: T[], key: (item: T) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return counts;
}

describe('SMTP delivery through the worker', () => {
  it('sends each of 50 subscribers exactly one well-formed message with their own unsubscribe link', async () => {
    const { app, recorder } = await setup();
    const people = readers(50);
    const ids = await addSubscribers(app, people);
    const started = Date.now();
    const editionId = await sendDigest(app);
    await deliverAll(app, editionId);
    const finished = Date.now();

    const edition = (await (await app.adapters.editions()).find(editionId))!;
    expect(edition.status).toBe('sent');
    const rows = await ledger(app, editionId);
    expect(rows.size).toBe(50);
    for (const row of rows.values()) expect(row).toMatchObject({ status: 'sent', attempts: 1, last_error: null });

    expect(recorder.messages).toHaveLength(50);
    const byRecipient = recorder.byRecipient();
    expect([...byRecipient.keys()].sort()).toEqual(people.map((p) => p.email).sort());
    for (const list of byRecipient.values()) expect(list).toHaveLength(1);

    const tokens = await app.adapters.tokens();
    const deliveryTokens = await app.adapters.deliveryTokens();
    const returnPaths = new Set<number>();
    for (const message of recorder.messages) {
      const [rcpt] = message.rcpt;
      const subscriberId = ids.get(rcpt!)!;
      const person = people.find((p) => p.email === rcpt)!;
      const parsed = message.parsed!;
      expect(message.rcpt).toHaveLength(1);
      // The return path is VERP: bounces+<signed delivery>@ the sender's domain, and X-Gazette-Delivery says the same.
      const verp = deliveryTokens.parse(message.from, 'gazette.example.org');
      expect(verp?.role).toBe('bounces');
      expect(verp?.deliveryId).toEqual(expect.any(Number));
      expect(verp?.deliveryId).toBe(rows.get(subscriberId)!.id);
      returnPaths.add(verp!.deliveryId!);
      const deliveryToken = deliveryTokens.sign(verp!.deliveryId!);
      expect(rawHeader(message.raw, 'X-Gazette-Delivery')).toEqual([deliveryToken]);

      // One From (the site's sender), To = this subscriber, the edition's subject, a Date of now.
      expect(rawHeader(message.raw, 'From')).toHaveLength(1);
      expect(parsed.from?.value).toEqual([{ address: SENDER, name: 'The Gazette Dispatch' }]);
      expect(addressesOf(parsed.to)).toEqual([rcpt]);
      const to = Array.isArray(parsed.to) ? parsed.to[0]! : parsed.to!;
      expect(to.value[0]!.name).toBe(person.name ?? '');
      expect(parsed.subject).toBe(edition.subject);
      expect(rawHeader(message.raw, 'Date')).toHaveLength(1);
      expect(rawHeader(message.raw, 'Date')[0]).toMatch(/^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}$/);
      expect(parsed.date!.getTime()).toBeGreaterThanOrEqual(Math.floor(started / 1000) * 1000);
      expect(parsed.date!.getTime()).toBeLessThanOrEqual(finished);

      // Message-ID: stable per delivery, in the sender's domain.
      expect(parsed.messageId).toBe(`<d${rows.get(subscriberId)!.id}.e${editionId}@gazette.example.org>`);

      // List headers (RFC 2369, RFC 8058).
      expect(rawHeader(message.raw, 'List-Id')).toEqual(['The Dispatch <dispatch.gazette.example.org>']);
      expect(rawHeader(message.raw, 'List-Unsubscribe-Post')).toEqual(['List-Unsubscribe=One-Click']);
      const unsubscribe = rawHeader(message.raw, 'List-Unsubscribe');
      expect(unsubscribe).toHaveLength(1);
      const uris = [...unsubscribe[0]!.matchAll(/<([^>]+)>/g)].map((m) => m[1]!);
      const https = uris.find((u) => u.startsWith('https://'))!;
      const mailto = uris.find((u) => u.startsWith('mailto:'))!;
      expect(https).toMatch(new RegExp(`^${BASE_URL.replace(/\./g, '\\.')}/unsubscribe\\?token=`));
      const token = new URL(https).searchParams.get('token')!;
      const check = tokens.verify(token, 'unsubscribe', new Date());
      expect(check).toMatchObject({ ok: true, subscriberId });
      // The mailto: names the delivery (so its list) in the address and the subject.
      expect(mailto).toBe(`mailto:unsubscribe+${deliveryToken}@gazette.example.org?subject=unsubscribe%20${deliveryToken}`);

      // The bodies carry the same link: text and HTML (a visible <a href>).
      expect(parsed.text).toContain(https);
      expect(parsed.html).toContain(`href="${https}"`);
      // No other subscriber's token slipped in.
      expect(String(parsed.html).match(/unsubscribe\?token=[^"&\s]+/g)!.every((m) => m === `unsubscribe?token=${token}`)).toBe(true);

      // multipart/alternative: text/plain, then text/html.
      expect(rawHeader(message.raw, 'Content-Type')[0]).toMatch(/^multipart\/alternative;/);
      expect(rawHeader(message.raw, 'MIME-Version')).toEqual(['1.0']);
      const textAt = message.raw.indexOf('Content-Type: text/plain');
      const htmlAt = message.raw.indexOf('Content-Type: text/html');
      expect(textAt).toBeGreaterThan(0);
      expect(htmlAt).toBeGreaterThan(textAt);
    }
    expect(returnPaths.size).toBe(people.length);

    const files = await writeEml(recorder.messages.slice(0, 3));
    const result = await checkEml(files);
    expect(result.output).not.toMatch(/^\s*FAIL/m);
    expect(result.code, result.output).toBe(0);
    expect(result.output.match(/RESULT: PASS/g)).toHaveLength(3);
  }, 90_000);

  it('signs with DKIM: h= covers From and both List-Unsubscribe fields, and the signature verifies offline', async () => {
    const keyDir = await mkdtemp(path.join(os.tmpdir(), 'gazette-dkim-'));
    afterThisTest(() => rm(keyDir, { recursive: true, force: true }));
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const keyFile = path.join(keyDir, 'dkim.pem');
    await writeFile(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const txtFile = path.join(keyDir, 'test._domainkey.gazette.example.org.txt');
    await writeFile(txtFile, `v=DKIM1; k=rsa; p=${publicKey.export({ type: 'spki', format: 'der' }).toString('base64')}`);

    const { app, recorder } = await setup({
      env: { DKIM_DOMAIN: 'gazette.example.org', DKIM_SELECTOR: 'test', DKIM_PRIVATE_KEY_FILE: keyFile },
    });
    await addSubscribers(app, readers(5));
    const editionId = await sendDigest(app);
    await deliverAll(app, editionId);
    expect(recorder.messages).toHaveLength(5);

    for (const message of recorder.messages) {
      const signatures = rawHeader(message.raw, 'DKIM-Signature');
      expect(signatures).toHaveLength(1);
      const tags = Object.fromEntries(
        signatures[0]!.split(';').map((part) => {
          const [key, ...value] = part.split('=');
          return [key!.trim(), value.join('=').replace(/\s+/g, '')];
        }),
      );
      expect(tags.d).toBe('gazette.example.org');
      expect(tags.s).toBe('test');
      const signed = tags.h!.toLowerCase().split(':');
      expect(signed).toEqual(expect.arrayContaining(['from', 'to', 'subject', 'date', 'message-id', 'list-unsubscribe', 'list-unsubscribe-post']));
    }

    const files = await writeEml(recorder.messages);
    const result = await checkEml(files, { dkimTxt: txtFile });
    expect(result.code, result.output).toBe(0);
    expect(result.output.match(/PASS dkim cryptographic verify/g)).toHaveLength(5);
    expect(result.output.match(/PASS dkim h= covers from, list-unsubscribe\(-post\)/g)).toHaveLength(5);

    // The verification is real: a message whose List-Unsubscribe URL was changed in transit fails it.
    const tampered = recorder.messages[0]!.raw.replace('<https://gazette.example.org/unsubscribe?', '<https://evil.example.net/unsubscribe?');
    expect(tampered).not.toBe(recorder.messages[0]!.raw);
    const [tamperedFile] = await writeEml([{ ...recorder.messages[0]!, raw: tampered }]);
    const bad = await checkEml([tamperedFile!], { dkimTxt: txtFile });
    expect(bad.code).toBe(1);
    expect(bad.output).toMatch(/FAIL dkim cryptographic verify/);
  }, 90_000);

  describe('temporary failures are retried; each recipient gets one message', () => {
    const cases: [string, SmtpRecorderOptions['behaviour']][] = [
      ['421 at RCPT TO', (rcpt, attempt) => (rcpt === 'flaky@example.com' && attempt === 1 ? { code: 421, message: 'Try again later', at: 'rcpt' } : 'accept')],
      ['451 at RCPT TO', (rcpt, attempt) => (rcpt === 'flaky@example.com' && attempt === 1 ? { code: 451, message: 'Greylisted', at: 'rcpt' } : 'accept')],
      ['451 after DATA', (rcpt, attempt) => (rcpt === 'flaky@example.com' && attempt === 1 ? { code: 451, message: 'Local error in processing', at: 'data' } : 'accept')],
      ['a dropped connection', (rcpt, attempt) => (rcpt === 'flaky@example.com' && attempt === 1 ? 'drop' : 'accept')],
    ];
    it.each(cases)('%s, then success: sent on attempt 2', async (_name, behaviour) => {
      const { app, recorder } = await setup({ recorder: { behaviour } });
      const ids = await addSubscribers(app, [{ email: 'flaky@example.com' }, ...readers(4)]);
      const editionId = await sendDigest(app);
      await deliverAll(app, editionId);

      const counts = countBy(recorder.messages, (m) => m.rcpt.join(','));
      expect(counts.get('flaky@example.com')).toBe(1);
      expect(recorder.attemptsFor('flaky@example.com')).toBe(2);
      expect(recorder.messages).toHaveLength(5);
      for (const n of counts.values()) expect(n).toBe(1);

      const rows = await ledger(app, editionId);
      expect(rows.get(ids.get('flaky@example.com')!)).toMatchObject({ status: 'sent', attempts: 2, last_error: null });
      for (const [subscriberId, row] of rows) {
        if (subscriberId !== ids.get('flaky@example.com')) expect(row).toMatchObject({ status: 'sent', attempts: 1 });
      }
      expect((await (await app.adapters.editions()).find(editionId))!.status).toBe('sent');
    });
  });

  it('550 at RCPT TO: bounced, suppressed, subscriber marked bounced, never retried', async () => {
    const { app, recorder } = await setup({
      recorder: { behaviour: (rcpt) => (rcpt === 'gone@example.com' ? { code: 550, message: 'No such user here', at: 'rcpt' } : 'accept') },
    });
    const ids = await addSubscribers(app, [...readers(3), { email: 'Gone@Example.com' }]);
    const editionId = await sendDigest(app);
    await deliverAll(app, editionId);

    expect(recorder.attemptsFor('gone@example.com')).toBe(1);
    expect(recorder.byRecipient().has('gone@example.com')).toBe(false);
    expect(recorder.messages).toHaveLength(3);

    const goneId = ids.get('gone@example.com')!;
    const row = (await ledger(app, editionId)).get(goneId)!;
    expect(row.status).toBe('bounced');
    expect(row.attempts).toBe(1);
    expect(row.last_error).toMatch(/550/);
    expect(row.last_error).toMatch(/No such user here/);

    const db = (await app.adapters.store()).db;
    const suppression = await db.selectFrom('suppressions').selectAll().where('email_key', '=', 'gone@example.com').executeTakeFirst();
    expect(suppression).toMatchObject({ email_key: 'gone@example.com', reason: 'bounced' });
    expect((await (await app.adapters.subscribers()).findById(goneId))!.status).toBe('bounced');
    expect((await (await app.adapters.editions()).find(editionId))!.status).toBe('sent');
  });

  it('451 on every attempt: failed after maxAttempts, with the last error kept', async () => {
    const { app, recorder } = await setup({
      recorder: { behaviour: (rcpt) => (rcpt === 'full@example.com' ? { code: 451, message: 'Mailbox busy', at: 'rcpt' } : 'accept') },
    });
    const ids = await addSubscribers(app, [{ email: 'full@example.com' }, ...readers(2)]);
    const editionId = await sendDigest(app);
    await deliverAll(app, editionId);

    expect(recorder.attemptsFor('full@example.com')).toBe(3);
    expect(recorder.byRecipient().has('full@example.com')).toBe(false);
    const row = (await ledger(app, editionId)).get(ids.get('full@example.com')!)!;
    expect(row.status).toBe('failed');
    expect(row.attempts).toBe(3);
    expect(row.last_error).toMatch(/451/);
    expect(row.last_error).toMatch(/Mailbox busy/);
    // A temporary failure does not suppress the address or change the subscriber.
    expect((await (await app.adapters.subscribers()).findById(ids.get('full@example.com')!))!.status).toBe('active');
    expect(await (await app.adapters.store()).db.selectFrom('suppressions').selectAll().execute()).toEqual([]);
  });

  it('535 at AUTH: the edition is paused with the reason, and the list is not burned through', async () => {
    const { app, recorder } = await setup({
      recorder: { auth: 'reject' },
      smtpUrl: (r) => `smtp://gazette:wrong-password@127.0.0.1:${r.port}`,
    });
    await addSubscribers(app, readers(50));
    const editionId = await sendDigest(app);

    const worker = await app.worker(FAST);
    const editions = await app.adapters.editions();
    const controller = new AbortController();
    const running = worker.run({ signal: controller.signal });
    const deadline = Date.now() + 10_000;
    let edition = await editions.find(editionId);
    while (edition!.status !== 'paused' && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      edition = await editions.find(editionId);
    }
    // Let the worker go on a little: a paused edition must stay untouched.
    await new Promise((resolve) => setTimeout(resolve, 300));
    controller.abort();
    await running;

    edition = await editions.find(editionId);
    expect(edition!.status).toBe('paused');
    expect(edition!.lastError).toMatch(/authentication failed/i);
    expect(edition!.lastError).toMatch(/535/);
    expect(recorder.messages).toHaveLength(0);
    // About one attempt per connection in flight, not one per subscriber.
    expect(recorder.authAttempts).toBeGreaterThan(0);
    expect(recorder.authAttempts).toBeLessThanOrEqual(FAST.concurrency!);

    // Nobody was failed, bounced or suppressed: everyone is still queued for when the server is fixed.
    const rows = await ledger(app, editionId);
    expect(rows.size).toBe(50);
    for (const row of rows.values()) expect(row.status).toBe('queued');
    expect(await (await app.adapters.store()).db.selectFrom('suppressions').selectAll().execute()).toEqual([]);
  });

  it('send twice and two workers at once: 200 subscribers each get exactly one message', async () => {
    const { app, recorder, anotherApp } = await setup();
    const people = readers(200);
    await addSubscribers(app, people);
    const editionId = await sendDigest(app);
    const again = await enqueue(app, editionId);
    expect(again.added).toBe(0);
    const other = anotherApp();
    expect((await enqueue(other, editionId)).added).toBe(0);

    await Promise.all([deliverAll(app, editionId), deliverAll(other, editionId)]);

    expect(recorder.messages).toHaveLength(200);
    const counts = countBy(recorder.messages, (m) => m.rcpt.join(','));
    expect([...counts.keys()].sort()).toEqual(people.map((p) => p.email).sort());
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
    const messageIds = new Set(recorder.messages.map((m) => m.parsed!.messageId));
    expect(messageIds.size).toBe(200);

    const rows = await ledger(app, editionId);
    expect(rows.size).toBe(200);
    for (const row of rows.values()) expect(row).toMatchObject({ status: 'sent', attempts: 1 });
    expect((await (await app.adapters.editions()).find(editionId))!.status).toBe('sent');
  }, 90_000);
});
