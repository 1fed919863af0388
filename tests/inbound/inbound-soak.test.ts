import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import nodemailer from 'nodemailer';
import { expect, it } from 'vitest';
import { startInbound } from '../../src/inbound/start-inbound.ts';
import { addSubscribers, afterThisTest, readers, setup } from '../helpers/delivery-setup.ts';
import { sendWithBounces } from '../helpers/editions.ts';

// 10,000 bounce reports through the real receiver: every one recorded, and the process's live
// heap no larger at the end than after the first thousand (give or take the V8 noise).

const REPORTS = 10_000;
const FIXTURE = fileURLToPath(new URL('../fixtures/inbound/mail/postfix-hard.eml', import.meta.url));

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const liveHeapMb = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 1024 / 1024;
};

it(`records ${REPORTS.toLocaleString('en')} reports through the SMTP receiver with memory flat`, { timeout: 240_000 }, async () => {
  const { app } = await setup();
  await addSubscribers(app, readers(REPORTS));
  const db = (await app.adapters.store()).db;
  const { deliveryOf } = await sendWithBounces(db, [], app.now());
  const tokens = await app.adapters.deliveryTokens();
  const controller = new AbortController();
  const inbound = await startInbound(app, { port: 0, host: '127.0.0.1', mailboxUrl: undefined, log: () => {}, signal: controller.signal });
  const smtp = nodemailer.createTransport({ host: '127.0.0.1', port: inbound.receiver!.port, secure: false, ignoreTLS: true, pool: true, maxConnections: 4, maxMessages: Infinity });
  afterThisTest(async () => {
    smtp.close();
    controller.abort();
    await inbound.done;
  });
  const raw = await readFile(FIXTURE, 'utf8');
  const ids = [...deliveryOf.values()];
  expect(ids).toHaveLength(REPORTS);

  let answered = 0;
  let heapAfterFirst = 0;
  for (let i = 0; i < ids.length; i += 50) {
    const batch = ids.slice(i, i + 50);
    const infos = await Promise.all(batch.map((id) => smtp.sendMail({ envelope: { from: '', to: [`bounces+${tokens.sign(id)}@gazette.example.org`] }, raw })));
    answered += infos.filter((info) => /recorded 1/.test(info.response)).length;
    if (i + 50 === 1000) heapAfterFirst = liveHeapMb();
  }
  const heapAtEnd = liveHeapMb();

  expect(answered).toBe(REPORTS);
  const count = async (table: 'subscriber_events' | 'suppressions') => Number((await db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
  expect(await count('subscriber_events')).toBe(REPORTS);
  expect(await count('suppressions')).toBe(REPORTS);
  console.log(`inbound soak: ${REPORTS} reports, live heap ${heapAfterFirst.toFixed(1)} MB after 1,000, ${heapAtEnd.toFixed(1)} MB after ${REPORTS}`);
  expect(heapAtEnd - heapAfterFirst).toBeLessThan(25);
});
