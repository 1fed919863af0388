import { freePort } from './served-site.ts';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';
import type { WorkerSettings } from '../../src/app.ts';
import type { RunningScheduler } from '../../src/schedule/schedule-use-cases.ts';
import { fileBrowser } from './browser.ts';
import { testServer, type TestServer } from './server.ts';
import { startSmtpRecorder, type SmtpRecorder } from './smtp-recorder.ts';

// The console as an editor meets it in production: a real server on a free 127.0.0.1 port (BASE_URL
// pointing at it, so the session cookie is not Secure), a real SMTP server as the transport, and,
// in this process, a worker and a scheduler running in the background as `gazette serve` runs them.

/** Options of consoleSite(). */
export interface ConsoleSiteOptions {
  /** Settings of the background worker (default: fast polls); `false` runs none. */
  worker?: WorkerSettings | false;
  /** Run a scheduler (default true); `pollMs` is how often it re-reads the schedules table. */
  scheduler?: { pollMs?: number } | false;
}

/** What consoleSite() started. */
export interface ConsoleSite {
  /** http://127.0.0.1:PORT, which BASE_URL is set to. */
  readonly base: string;
  readonly t: TestServer;
  /** The SMTP server SMTP_URL points at: every message the app sends lands here. */
  readonly recorder: SmtpRecorder;
  /** What the scheduler logged (fires, warnings, errors), for failure messages. */
  readonly schedulerLog: string[];
  /** The browser; throws the launcher's message when Chromium could not start. */
  browser(): Browser;
  /** Throws when the background worker stopped with an error. */
  workerHealthy(): void;
}

/** Starts Chromium, an SMTP recorder, the server (listening), a worker and a scheduler before the file's tests; stops all after. */
export function consoleSite(options: ConsoleSiteOptions = {}): ConsoleSite {
  let base = '';
  let t: TestServer | undefined;
  let recorder: SmtpRecorder | undefined;
  const chromium = fileBrowser();
  let scheduler: RunningScheduler | undefined;
  const stopWorker = new AbortController();
  let workerRun: Promise<void> | undefined;
  let workerError: unknown;
  const schedulerLog: string[] = [];

  beforeAll(async () => {
    await chromium.launch();
    recorder = await startSmtpRecorder();
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    // The recorder offers no STARTTLS, so plain smtp:// needs no TLS options.
    t = await testServer({ env: { BASE_URL: base, SMTP_URL: recorder.url } });
    await t.server.listen({ port, host: '127.0.0.1' });
    if (options.worker !== false) {
      const worker = await t.app.worker({ pollMs: 50, retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 50 }, ...options.worker });
      workerRun = worker.run({ signal: stopWorker.signal }).catch((error: unknown) => {
        workerError = error;
      });
    }
    if (options.scheduler !== false) {
      const log = (level: string) => (message: string) => void schedulerLog.push(`${level}: ${message}`);
      scheduler = await t.app.schedules.start({ pollMs: options.scheduler?.pollMs ?? 250, log: { info: log('info'), warn: log('warn'), error: log('error') } });
    }
  });

  afterAll(async () => {
    // The browser first (its event streams hold the server open), then what writes to the store, then the store.
    await chromium.close();
    await scheduler?.stop();
    stopWorker.abort();
    await workerRun;
    await t?.close();
    await recorder?.close();
  });

  return {
    get base() {
      return base;
    },
    get t() {
      if (!t) throw new Error('the console site is not started yet (use it inside a test)');
      return t;
    },
    get recorder() {
      if (!recorder) throw new Error('the SMTP recorder is not started yet (use it inside a test)');
      return recorder;
    },
    schedulerLog,
    browser: () => chromium.get(),
    workerHealthy() {
      if (workerError) throw new Error(`the background worker stopped: ${(workerError as Error).message}`, { cause: workerError });
    },
  };
}
