import { createHmac, generateKeyPairSync, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { buildServer } from '../../src/server/server.ts';
import { addSubscribers, deliverAll, readers, sendDigest, setup } from '../helpers/delivery-setup.ts';

// Provider webhooks through the whole server onto the real report handler and store: a verified
// event acts on the subscriber it names, a replay counts once, a bad signature changes nothing.

const MAILGUN_KEY = 'key-0123456789abcdef0123456789abcdef';

describe('provider webhooks on a running Gazette', () => {
  it('a Mailgun permanent failure and a SendGrid spam report act on their subscribers, once', async () => {
    const sendgrid = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const { app } = await setup({
      env: { GAZETTE_MAILGUN_SIGNING_KEY: MAILGUN_KEY, GAZETTE_SENDGRID_PUBLIC_KEY: sendgrid.publicKey.export({ format: 'der', type: 'spki' }).toString('base64') },
    });
    await addSubscribers(app, readers(3));
    const editionId = await sendDigest(app);
    await deliverAll(app, editionId);
    const rows = await (await app.adapters.store()).db.selectFrom('deliveries').innerJoin('subscribers', 'subscribers.id', 'deliveries.subscriber_id').select(['deliveries.id', 'email_key']).execute();
    const deliveryOf = new Map(rows.map((r) => [r.email_key, Number(r.id)]));
    const server = await buildServer(app);
    try {
      const timestamp = String(Math.floor(Date.now() / 1000));
      const mailgun = (token: string, key = MAILGUN_KEY) => ({
        signature: { timestamp, token, signature: createHmac('sha256', key).update(timestamp + token).digest('hex') },
        'event-data': {
          id: 'mg-event-1',
          timestamp: Number(timestamp),
          event: 'failed',
          severity: 'permanent',
          reason: 'bounce',
          recipient: 'reader1@example.com',
          'delivery-status': { code: 550, 'enhanced-code': '5.1.1', message: '5.1.1 no such user' },
          // Mailgun drops the Message-ID's angle brackets.
          message: { headers: { 'message-id': `d${deliveryOf.get('reader1@example.com')}.e${editionId}@gazette.example.org`, to: 'reader1@example.com' } },
        },
      });
      const forged = await server.inject({ method: 'POST', url: '/webhooks/mailgun', payload: mailgun('token-forged-0001', 'not-the-key') });
      expect(forged.statusCode).toBe(403);
      expect((await app.subscribers.find('reader1@example.com')).status).toBe('active');

      const first = await server.inject({ method: 'POST', url: '/webhooks/mailgun', payload: mailgun('token-0001') });
      expect(first.statusCode).toBe(200);
      expect(first.json()).toMatchObject({ recorded: 1 });
      // Mailgun sends an event again when it did not hear back: a new token, the same event.
      const again = await server.inject({ method: 'POST', url: '/webhooks/mailgun', payload: mailgun('token-0002') });
      expect(again.json()).toMatchObject({ recorded: 0, duplicate: 1 });
      const reader1 = await app.subscribers.find('reader1@example.com');
      expect(reader1).toMatchObject({ status: 'bounced', suppression: { reason: 'bounced', editionId } });
      expect(reader1.events).toEqual([expect.objectContaining({ type: 'hard-bounce', source: 'mailgun', deliveryId: deliveryOf.get('reader1@example.com'), status: '5.1.1' })]);

      const body = JSON.stringify([{ email: 'reader2@example.com', timestamp: Number(timestamp), event: 'spamreport', sg_event_id: 'sg-spam-1', sg_message_id: 'x.filter0001' }]);
      const signature = sign('sha256', Buffer.from(timestamp + body), sendgrid.privateKey).toString('base64');
      const spam = await server.inject({
        method: 'POST',
        url: '/webhooks/sendgrid',
        headers: { 'content-type': 'application/json', 'X-Twilio-Email-Event-Webhook-Signature': signature, 'X-Twilio-Email-Event-Webhook-Timestamp': timestamp },
        payload: body,
      });
      expect(spam.statusCode).toBe(200);
      expect(await app.subscribers.find('reader2@example.com')).toMatchObject({ status: 'complained', lists: [], suppression: { reason: 'complained' } });
      expect((await app.subscribers.find('reader3@example.com')).status).toBe('active');

      // The edition's status counts the bounce that came back.
      const status = await app.editions.status(editionId);
      expect(status).toMatchObject({ bounced: 1, sent: 2, cameBack: { hardBounces: 1, complaints: 0 } });
    } finally {
      await server.close();
    }
  });
});
