import { describe, expect, it } from 'vitest';
import { addSubscribers, deliverAll, FAST, readers, setup } from '../helpers/delivery-setup.ts';
import { gazette } from '../helpers/cli.ts';

describe('pausing a send by hand', () => {
  it('holds every message back until `send` resumes it; then each subscriber gets one copy', async () => {
    const s = await setup();
    await addSubscribers(s.app, readers(6));
    const { edition } = await s.app.editions.create({ list: 'dispatch', digest: true });
    await s.app.editions.send(edition.id);

    const paused = await s.app.editions.pause(edition.id, 'wrong subject');
    expect(paused).toMatchObject({ status: 'paused', pauseKind: 'operator', lastError: 'wrong subject' });
    // A worker running now finds nothing it may send: the queue holds the edition back.
    const worker = await s.app.worker(FAST);
    await worker.run({ signal: AbortSignal.timeout(10_000), stopWhenIdle: async () => (await s.app.backlog()) === 0 });
    expect(s.recorder.messages).toHaveLength(0);
    expect(await s.app.editions.status(edition.id)).toMatchObject({ status: 'paused', pauseKind: 'operator', queued: 6, sent: 0 });

    const resumed = await s.app.editions.send(edition.id);
    expect(resumed).toMatchObject({ resumed: true, added: 0, queued: 6 });
    await deliverAll(s.app, edition.id);
    expect([...s.recorder.byRecipient().values()].map((copies) => copies.length)).toEqual([1, 1, 1, 1, 1, 1]);
    expect((await s.app.editions.status(edition.id)).status).toBe('sent');
  });

  it('refuses editions that are not sending, saying what they are; the CLI says how to resume', async () => {
    const s = await setup();
    await addSubscribers(s.app, readers(2));
    const { edition } = await s.app.editions.create({ list: 'dispatch', digest: true });
    await expect(s.app.editions.pause(edition.id)).rejects.toThrow(`edition ${edition.id} is draft: only a sending edition can be paused`);
    await expect(s.app.editions.pause(999)).rejects.toThrow('no edition 999');
    await s.app.editions.send(edition.id);
    await s.app.close();
    const cli = await gazette(['pause', String(edition.id)], s.env);
    expect(cli.code).toBe(0);
    expect(cli.stderr).toContain(`edition ${edition.id}: paused (paused by an operator: \`gazette send ${edition.id}\` resumes it)`);
    const status = await gazette(['status', String(edition.id)], s.env);
    expect(status.code).toBe(1);
    expect(status.stdout + status.stderr).toMatch(/paused/);
    const again = await gazette(['pause', String(edition.id)], s.env);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`gazette: edition ${edition.id} is paused (operator): only a sending edition can be paused`);
  }, 60_000);
});
