import { afterEach, describe, expect, it } from 'vitest';
import type { OutgoingMessage, Transport } from '../../src/delivery/transport.ts';
import { testServer, type TestServer } from '../helpers/server.ts';

let t: TestServer | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

/** A transport that holds every message until let go, so a test can act while messages are in flight. */
function heldTransport() {
  const sent: OutgoingMessage[] = [];
  const waiting: (() => void)[] = [];
  let arrived: () => void = () => {};
  let holding = true;
  const transport: Transport = {
    name: 'held',
    async send(message) {
      arrived();
      if (holding) await new Promise<void>((resolve) => waiting.push(resolve));
      sent.push(message);
    },
    async probe() {},
    async close() {},
  };
  return {
    transport,
    sent,
    inFlight: () => new Promise<void>((resolve) => (arrived = resolve)),
    release: () => {
      holding = false;
      waiting.splice(0).forEach((go) => go());
    },
  };
}

describe('cancelling an edition', () => {
  it('skips what has not gone out, keeps what a worker was sending, and cannot be sent again', async () => {
    const held = heldTransport();
    t = await testServer({ transport: held.transport });
    const list = (await t.app.content()).site.lists[0]!.slug;
    for (let i = 1; i <= 6; i++) await t.app.subscribers.add({ email: `r${i}@example.com`, confirmed: true, source: 'cli' });
    const { edition } = await t.app.editions.create({ list, digest: true });
    await t.app.editions.send(edition.id);

    const worker = await t.app.worker({ concurrency: 1, pollMs: 5 });
    const inFlight = held.inFlight();
    const running = worker.run({ signal: AbortSignal.timeout(10_000), stopWhenIdle: async () => (await t!.app.backlog()) === 0 });
    await inFlight;
    const cancelled = await t.app.editions.cancel(edition.id, 'cancelled in a test');
    expect(cancelled).toMatchObject({ status: 'cancelled', lastError: 'cancelled in a test' });
    held.release();
    await running;

    const report = await t.app.editions.status(edition.id);
    // The one in flight went out and says so; every other one is skipped; none is left queued.
    expect(report.sent).toBe(held.sent.length);
    expect(report.sent).toBeGreaterThanOrEqual(1);
    expect(report.sent + report.skipped).toBe(6);
    expect(report.queued).toBe(0);
    expect(report.status).toBe('cancelled');
    await expect(t.app.editions.send(edition.id)).rejects.toThrow(`edition ${edition.id} was cancelled: it cannot be sent`);
    await expect(t.app.editions.cancel(edition.id)).rejects.toThrow('only a draft, a send in progress or a paused send can be cancelled');
    expect(await t.app.backlog()).toBe(0);
  });

  it('cancels a draft for good', async () => {
    t = await testServer();
    const list = (await t.app.content()).site.lists[0]!.slug;
    const { edition } = await t.app.editions.create({ list, digest: true });
    await t.app.editions.cancel(edition.id);
    expect((await t.app.editions.find(edition.id)).status).toBe('cancelled');
    await expect(t.app.editions.revise(edition.id, { subject: 'x' })).rejects.toThrow('only a draft can be edited');
  });
});
