import { createServer } from 'node:net';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';
import { fileBrowser } from './browser.ts';
import { testServer, type TestServer } from './server.ts';

/** The real server a browser test file drives, and the Chromium that drives it. */
export interface ServedSite {
  /** http://127.0.0.1:PORT, which BASE_URL is set to, so every link in the emails leads back here. */
  readonly base: string;
  readonly t: TestServer;
  /** The browser; throws the launcher's message when Chromium could not start. */
  browser(): Browser;
}

/** Starts a server on a free port (BASE_URL pointing at it) and Chromium before the file's tests, and closes both after. */
export function servedSite(): ServedSite {
  let base = '';
  let t: TestServer | undefined;
  const chromium = fileBrowser();
  beforeAll(async () => {
    await chromium.launch();
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    t = await testServer({ env: { BASE_URL: base } });
    await t.server.listen({ port, host: '127.0.0.1' });
  });
  afterAll(async () => {
    await chromium.close();
    await t?.close();
  });
  return {
    get base() {
      return base;
    },
    get t() {
      if (!t) throw new Error('the test server is not started yet (use it inside a test)');
      return t;
    },
    browser: () => chromium.get(),
  };
}

/** A TCP port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}
