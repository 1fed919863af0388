import Fastify from 'fastify';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { LiveStreams } from '../../src/console/live-streams.ts';

const servers: { close(): Promise<unknown> }[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

/** A real server with one event stream at /live, reading every 5 ms; `state` decides what it sends and whether the viewer may go on. */
async function streamServer(state: { n: number; allowed: boolean; failRead?: boolean }) {
  const live = new LiveStreams();
  const server = Fastify();
  server.get('/live', async (request, reply) => {
    live.stream(request, reply, async () => {
      if (state.failRead) throw new Error('database said something private');
      return { n: ++state.n };
    }, async () => state.allowed, 5);
    return reply;
  });
  server.addHook('preClose', async () => live.closeAll());
  await server.listen({ port: 0, host: '127.0.0.1' });
  servers.push(server);
  return `http://127.0.0.1:${(server.server.address() as AddressInfo).port}/live`;
}

/** Reads the stream's text until it ends (or `until` is seen), at most `ms`. */
async function readStream(url: string, ms: number, until?: (text: string) => boolean): Promise<{ text: string; ended: boolean }> {
  const response = await fetch(url, { signal: AbortSignal.timeout(ms) });
  expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
  const reader = response.body!.getReader();
  let text = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { text, ended: true };
      text += new TextDecoder().decode(value);
      if (until?.(text)) {
        await reader.cancel();
        return { text, ended: false };
      }
    }
  } catch {
    return { text, ended: false };
  }
}

describe('live streams', () => {
  it('sends a reading at once and then at each interval, as Server-Sent Events', async () => {
    const url = await streamServer({ n: 0, allowed: true });
    const { text } = await readStream(url, 5000, (t) => t.includes('"n":3'));
    expect(text.startsWith('retry: 3000\n\n')).toBe(true);
    expect(text).toContain('data: {"n":1}\n\n');
    expect(text).toContain('data: {"n":2}\n\n');
  });

  it('ends the stream once the viewer may no longer watch (signed out, removed)', async () => {
    const state = { n: 0, allowed: true };
    const url = await streamServer(state);
    setTimeout(() => (state.allowed = false), 30);
    const { ended } = await readStream(url, 5000);
    expect(ended).toBe(true);
  });

  it('says a reading failed without passing on what the error said, and goes on', async () => {
    const state = { n: 0, allowed: true, failRead: true };
    const url = await streamServer(state);
    setTimeout(() => (state.failRead = false), 20);
    const { text } = await readStream(url, 5000, (t) => t.includes('"n":1'));
    expect(text).toContain('event: error\ndata: {"message":"reading the progress failed; trying again"}');
    expect(text).not.toContain('private');
  });
});
