import { rm } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { App } from '../../src/app.ts';
import { gazette, startGazette, withTimeout } from '../helpers/cli.ts';
import { addSubscribers, deliverAll, FAST, ledger, readers, sendDigest, setup, type Setup } from '../helpers/delivery-setup.ts';
import { startSmtpRecorder, type SmtpRecorderOptions } from '../helpers/smtp-recorder.ts';

// The faults an SMTP server produces, each answered by who is at fault: the recipient (bounce,
// retry), the server refusing us (pause, nobody suppressed), or no server at all (an outage).

async function suppressions(app: App): Promise<string[]> {
  return (await (await app.adapters.store()).db.selectFrom('suppressions').select('email_key').execute()).map((r) => r.email_key);
}

async function editionOf(app: App, id: number) {
  return (await (await app.adapters.editions()).find(id))!;
}

/** Runs a worker until the edition is paused or has nothing queued (or `ms` pass). */
async function deliverUntilSettled(app: App, editionId: number, ms = 30_000): Promise<void> {
  const worker = await app.worker(FAST);
  const deliveries = await app.adapters.deliveries();
  const editions = await app.adapters.editions();
  await worker.run({
    signal: AbortSignal.timeout(ms),
    stopWhenIdle: async () => (await deliveries.counts(editionId)).queued === 0 || (await editions.find(editionId))!.status === 'paused',
  });
}

/** Every delivery still queued and untried: the list is intact for when the server is fixed. */
async function expectIntact(app: App, editionId: number, count: number): Promise<void> {
  const rows = [...(await ledger(app, editionId)).values()];
  expect(rows).toHaveLength(count);
  expect(rows.filter((r) => r.status !== "queued" || r.attempts !== 0)).toEqual([]);
  expect(await suppressions(app)).toEqual([]);
}

describe('the server refuses us: the edition pauses, nobody is suppressed', () => {
  it('550 to MAIL FROM: `send --wait` exits 1 saying why and how to resume; after the fix it delivers everyone once', async () => {
    let refuse = true;
    const s = await setup({ recorder: { mailFrom: () => (refuse ? { code: 550, message: '5.7.1 Sender address rejected: not owned by user' } : undefined) } });
    await addSubscribers(s.app, readers(20));
    const created = await gazette(['edition', 'create', '--digest', '--list', 'dispatch'], s.env);
    expect(created.code, created.stderr).toBe(0);
    const id = created.stdout.trim();

    const paused = await gazette(['send', id, '--wait'], { ...s.env, GAZETTE_CONCURRENCY: '5' });
    expect(paused.code).toBe(1);
    expect(paused.stderr).toMatch(new RegExp(`gazette: edition ${id} is paused because the mail server refuses us: .*550 5\\.7\\.1 Sender address rejected`));
    expect(paused.stderr).toContain('Nobody was suppressed');
    expect(paused.stderr).toContain(`resume with \`gazette send ${id}\``);
    expect(s.recorder.messages).toHaveLength(0);
    await expectIntact(s.app, Number(id), 20);
    expect(await editionOf(s.app, Number(id))).toMatchObject({ status: 'paused', pauseKind: 'refused' });

    const status = await gazette(['status', id], s.env);
    expect(status.code).toBe(1);
    expect(status.stdout).toMatch(/status: {2}paused \(refused\)/);

    refuse = false;
    const resumed = await gazette(['send', id, '--wait'], s.env);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain(`edition ${id}: resumed`);
    expect(s.recorder.messages).toHaveLength(20);
    expect(new Set(s.recorder.messages.map((m) => m.rcpt[0])).size).toBe(20);
    expect((await editionOf(s.app, Number(id))).status).toBe('sent');
  }, 120_000);

  const refusals: [string, SmtpRecorderOptions][] = [
    ['554 5.7.1 Relay access denied at RCPT for everyone', { behaviour: () => ({ code: 554, message: '5.7.1 <x>: Relay access denied', at: 'rcpt' }) }],
    ['554 at DATA for every message', { behaviour: () => ({ code: 554, message: 'Transaction failed', at: 'data' }) }],
    ['550 5.1.1 for many recipients in a row', { behaviour: () => ({ code: 550, message: '5.1.1 Recipient address rejected: User unknown', at: 'rcpt' }) }],
    ['a 554 greeting', { greeting: () => ({ code: 554, message: 'No SMTP service here' }) }],
  ];
  it.each(refusals)('%s: paused as refused, every delivery still queued with no attempt spent', async (_name, recorder) => {
    const s = await setup({ recorder });
    await addSubscribers(s.app, readers(30));
    const id = await sendDigest(s.app);
    await deliverUntilSettled(s.app, id);
    const edition = await editionOf(s.app, id);
    expect(edition).toMatchObject({ status: 'paused', pauseKind: 'refused' });
    expect(edition.lastError).toMatch(/55\d/);
    await expectIntact(s.app, id, 30);
    const subscribers = await (await s.app.adapters.subscribers()).countByStatus();
    expect(subscribers).toMatchObject({ active: 30, bounced: 0 });
  });
});

describe('the recipient is at fault: that recipient alone bounces or is retried', () => {
  it('three dead addresses among live ones bounce and are suppressed; everyone else gets one message', async () => {
    const dead = new Set(['reader4@example.com', 'reader11@example.com', 'reader12@example.com']);
    const s = await setup({ recorder: { behaviour: (rcpt) => (dead.has(rcpt) ? { code: 550, message: `5.1.1 <${rcpt}>: User unknown`, at: 'rcpt' } : 'accept') } });
    await addSubscribers(s.app, readers(20));
    const id = await sendDigest(s.app);
    await deliverAll(s.app, id);
    expect((await suppressions(s.app)).sort()).toEqual([...dead].sort());
    expect(s.recorder.messages).toHaveLength(17);
    const rows = [...(await ledger(s.app, id)).values()];
    expect(rows.filter((r) => r.status === 'bounced')).toHaveLength(3);
    expect(rows.filter((r) => r.status === 'sent')).toHaveLength(17);
    expect((await editionOf(s.app, id)).status).toBe('sent');
  });

  it('451 for one recipient every time: failed after its attempts; the edition is incomplete and `send` retries it', async () => {
    let deferFull = true;
    const s = await setup({ recorder: { behaviour: (rcpt) => (rcpt === 'reader2@example.com' && deferFull ? { code: 451, message: '4.2.2 Mailbox busy', at: 'rcpt' } : 'accept') } });
    await addSubscribers(s.app, readers(5));
    const id = await sendDigest(s.app);
    await deliverAll(s.app, id);
    expect(await editionOf(s.app, id)).toMatchObject({ status: 'incomplete' });
    expect((await editionOf(s.app, id)).lastError).toMatch(/1 delivery failed after every retry/);
    deferFull = false;
    const again = await gazette(['send', String(id), '--wait'], s.env);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain(`edition ${id}: 1 failed delivery queued again`);
    expect(s.recorder.byRecipient().get('reader2@example.com')).toHaveLength(1);
    expect((await editionOf(s.app, id)).status).toBe('sent');
  }, 120_000);
});

describe('no server at all: an outage pauses the send and spends no attempt', () => {
  it('the relay is down: `send --wait` stops within seconds; once it is back, `send --wait` delivers everyone exactly once', async () => {
    const s = await setup();
    const port = s.recorder.port;
    await addSubscribers(s.app, readers(25));
    const id = await sendDigest(s.app);
    await s.recorder.close();

    const started = Date.now();
    const down = await gazette(['send', String(id), '--wait'], s.env);
    expect(down.code).toBe(1);
    expect(Date.now() - started, 'send --wait gives up within a couple of minutes of the outage').toBeLessThan(60_000);
    expect(down.stderr).toMatch(new RegExp(`gazette: edition ${id} is paused by an outage: .*ECONNREFUSED`));
    expect(down.stderr).toContain('Nothing was lost and no attempt was spent');
    expect(down.stderr).toContain(`gazette send ${id} --wait`);
    await expectIntact(s.app, id, 25);
    expect(await editionOf(s.app, id)).toMatchObject({ status: 'paused', pauseKind: 'outage' });

    const back = await startSmtpRecorder({ port });
    try {
      const up = await gazette(['send', String(id), '--wait'], s.env);
      expect(up.code, up.stderr).toBe(0);
      expect(back.messages).toHaveLength(25);
      expect([...back.byRecipient().values()].every((list) => list.length === 1)).toBe(true);
      const rows = [...(await ledger(s.app, id)).values()];
      expect(rows.every((r) => r.status === 'sent' && r.attempts === 1)).toBe(true);
    } finally {
      await back.close();
    }
  }, 120_000);

  it('a long-running worker resumes an outage-paused edition by itself once its backoff is over and the server answers', async () => {
    const s = await setup({ env: { GAZETTE_LEASE_SECONDS: '2' } });
    const port = s.recorder.port;
    await addSubscribers(s.app, readers(10));
    const id = await sendDigest(s.app);
    await s.recorder.close();
    const worker = await s.app.worker({ ...FAST, resumeOutages: true });
    const controller = new AbortController();
    const running = worker.run({ signal: controller.signal });
    try {
      const editions = await s.app.adapters.editions();
      await waitFor(async () => (await editions.find(id))!.status === 'paused', 'the outage pause');
      expect((await editions.find(id))!.pauseKind).toBe('outage');
      const back = await startSmtpRecorder({ port });
      try {
        // The backoff (30 s, doubling) is over: as if the time had passed.
        await (await s.app.adapters.store()).db.updateTable('editions').set({ resume_at: new Date(Date.now() - 1000).toISOString() }).where('id', '=', id).execute();
        await waitFor(async () => (await editions.find(id))!.status === 'sent', 'the send to finish after the automatic resume');
        expect(back.messages).toHaveLength(10);
      } finally {
        await back.close();
      }
    } finally {
      controller.abort();
      await running;
    }
  }, 60_000);
});

describe('leases: a slow or stalled worker never causes a duplicate', () => {
  it('a transaction that would outlive its lease is cut off first: with two workers each subscriber gets one copy', async () => {
    // Lease 2 s, so one message's transaction is capped at 1 s; the server stalls 3 s on one recipient.
    const s = await setup({ env: { GAZETTE_LEASE_SECONDS: '2' }, recorder: { rcptDelayMs: (rcpt, attempt) => (rcpt === 'reader3@example.com' && attempt === 1 ? 3_000 : 0) } });
    await addSubscribers(s.app, readers(12));
    const id = await sendDigest(s.app);
    const other = s.anotherApp();
    await Promise.all([deliverAll(s.app, id), deliverAll(other, id)]);
    const copies = s.recorder.byRecipient();
    expect(copies.size).toBe(12);
    expect([...copies.values()].every((list) => list.length === 1)).toBe(true);
    expect(s.recorder.attemptsFor('reader3@example.com')).toBe(2);
    const rows = [...(await ledger(s.app, id)).values()];
    expect(rows.every((r) => r.status === 'sent')).toBe(true);
  }, 60_000);

  it('jobs held longer than a lease (a slow server) stay the holder’s: the heartbeat renews them', async () => {
    // Each message takes 0.45 s (well under the 1 s cap); the first worker takes all eight at once:
    // 3.6 s of work, nearly twice the lease.
    const s = await setup({ env: { GAZETTE_LEASE_SECONDS: '2' }, recorder: { rcptDelayMs: () => 450 } });
    await addSubscribers(s.app, readers(8));
    const id = await sendDigest(s.app);
    const first = deliverAll(s.app, id, { ...FAST, concurrency: 1 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const second = deliverAll(s.anotherApp(), id, { ...FAST, concurrency: 1 });
    await Promise.all([first, second]);
    expect(s.recorder.messages).toHaveLength(8);
    expect([...s.recorder.byRecipient().values()].every((list) => list.length === 1)).toBe(true);
  }, 60_000);
});

describe('the database going away is loud', () => {
  it('deleted mid-send: `send --wait` stops with a clear error and exit 1; later commands do not make a new empty one', async () => {
    let s: Setup | undefined;
    let deleted = false;
    s = await setup({
      recorder: {
        parse: false,
        onMessage: (_message, count) => {
          if (count === 40 && s && !deleted) {
            deleted = true;
            void rm(path.join(s.dataDir, 'gazette.db'), { force: true });
          }
        },
      },
    });
    await addSubscribers(s.app, readers(600));
    const id = await sendDigest(s.app);
    await s.app.close();
    const send = startGazette(['send', String(id), '--wait'], { ...s.env, GAZETTE_RATE: '200' });
    const finished = await withTimeout(send.done, 90_000, 'gazette send --wait', () => send.child.kill('SIGKILL'));
    expect(deleted).toBe(true);
    expect(finished.code).toBe(1);
    expect(finished.stderr).toMatch(/gazette: the database file .*gazette\.db was deleted while Gazette was running/);
    expect(s.recorder.messages.length).toBeLessThan(600);
    const status = await gazette(['status', String(id)], s.env);
    expect(status.code).toBe(1);
    expect(status.stderr).toMatch(/gazette: no database at .*gazette\.db: run `gazette migrate`/);
  }, 120_000);
});

async function waitFor(check: () => Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`waited ${ms} ms for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
