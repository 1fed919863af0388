import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InboundMail } from '../../src/inbound/inbound-report.ts';
import { startInboundReceiver, type InboundReceiver } from '../../src/inbound/smtp-receiver.ts';

// STARTTLS on the inbound receiver: offered only with a key and certificate, and then a sender
// that insists on TLS delivers through it; the message arrives as sent.

let dir = '';
let keyFile = '';
let certFile = '';

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'gazette-inbound-tls-'));
  keyFile = path.join(dir, 'key.pem');
  certFile = path.join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function receiver(tls: boolean, mails: InboundMail[]): Promise<InboundReceiver> {
  return startInboundReceiver({
    host: '127.0.0.1',
    port: 0,
    maxBytes: 1024 * 1024,
    tls: tls ? { keyFile, certFile } : undefined,
    accepts: (address) => address.startsWith('bounces'),
    handle: async (mail) => {
      mails.push(mail);
      return { recorded: 1, duplicates: 0, ignored: null };
    },
    log: () => {},
  });
}

const RAW = 'From: MAILER-DAEMON@mx.example.net\r\nSubject: Undelivered Mail\r\n\r\nbody\r\n';

describe('STARTTLS on the inbound receiver', () => {
  it('is offered with a key and certificate, and a sender that requires TLS delivers', async () => {
    const mails: InboundMail[] = [];
    const server = await receiver(true, mails);
    const smtp = nodemailer.createTransport({ host: '127.0.0.1', port: server.port, secure: false, requireTLS: true, tls: { rejectUnauthorized: false } });
    try {
      const info = await smtp.sendMail({ envelope: { from: '', to: ['bounces@gazette.example.org'] }, raw: RAW });
      expect(info.response).toMatch(/^250 .*recorded 1/);
      expect(mails.map((m) => m.raw.toString('latin1'))).toEqual([RAW]);
    } finally {
      smtp.close();
      await server.close();
    }
  });

  it('is not offered without them, so a sender that requires TLS is refused before the envelope', async () => {
    const mails: InboundMail[] = [];
    const server = await receiver(false, mails);
    const smtp = nodemailer.createTransport({ host: '127.0.0.1', port: server.port, secure: false, requireTLS: true });
    try {
      await expect(smtp.sendMail({ envelope: { from: '', to: ['bounces@gazette.example.org'] }, raw: RAW })).rejects.toThrow(/STARTTLS/i);
      expect(mails).toEqual([]);
    } finally {
      smtp.close();
      await server.close();
    }
  });
});
