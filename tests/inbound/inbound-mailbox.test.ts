import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readMailboxOnce } from '../../src/inbound/mailbox-reader.ts';
import { inboundDomains } from '../../src/inbound/start-inbound.ts';
import { DOVECOT_AVAILABLE, startDovecot } from '../helpers/dovecot.ts';
import { addSubscribers, afterThisTest, deliverAll, readers, sendDigest, setup } from '../helpers/delivery-setup.ts';

// Reports read from a real IMAP mailbox (Dovecot) onto the real handler and store: the mailbox
// has no envelope, so the VERP address comes from Delivered-To, or the delivery from the original.

const FIXTURES = fileURLToPath(new URL('../fixtures/inbound/mail/', import.meta.url));

describe.runIf(DOVECOT_AVAILABLE)('bounces read from an IMAP mailbox', () => {
  it('a DSN delivered to bounces+TOKEN@ and an ARF report act on their subscribers; an auto-reply changes nothing', async () => {
    const dovecot = await startDovecot();
    afterThisTest(() => dovecot.stop());
    const { app } = await setup();
    await addSubscribers(app, readers(3));
    const editionId = await sendDigest(app);
    await deliverAll(app, editionId);
    const tokens = await app.adapters.deliveryTokens();
    const rows = await (await app.adapters.store()).db.selectFrom('deliveries').innerJoin('subscribers', 'subscribers.id', 'deliveries.subscriber_id').select(['deliveries.id', 'email_key']).execute();
    const token = (email: string) => tokens.sign(Number(rows.find((r) => r.email_key === email)!.id));

    // What the bounce domain's MTA files: Delivered-To names the VERP address it was sent to.
    const dsn = (await readFile(`${FIXTURES}postfix-hard.eml`, 'utf8')).replace(/^Delivered-To: .*$/m, `Delivered-To: bounces+${token('reader1@example.com')}@gazette.example.org`);
    await dovecot.append(dsn);
    const arf = (await readFile(`${FIXTURES}yahoo-arf-abuse.eml`, 'utf8')).replace(/X-Gazette-Delivery: \S+/g, `X-Gazette-Delivery: ${token('reader2@example.com')}`);
    await dovecot.append(arf);
    await dovecot.append(await readFile(`${FIXTURES}sieve-vacation.eml`));

    const handle = await app.inboundMail(await inboundDomains(app));
    expect(await readMailboxOnce({ url: dovecot.url(), after: 'flag', handle })).toEqual({ processed: 3, failed: 0 });
    expect(await app.subscribers.find('reader1@example.com')).toMatchObject({ status: 'bounced', suppression: { reason: 'bounced' } });
    expect(await app.subscribers.find('reader2@example.com')).toMatchObject({ status: 'complained', lists: [] });
    expect(await app.subscribers.find('reader3@example.com')).toMatchObject({ status: 'active', events: [] });
    // All three are marked processed: a second read hands over nothing and records nothing more.
    expect(await readMailboxOnce({ url: dovecot.url(), after: 'flag', handle })).toEqual({ processed: 0, failed: 0 });
    expect((await app.subscribers.find('reader1@example.com')).events).toHaveLength(1);
  });
});
