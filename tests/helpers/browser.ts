import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/** The system Chromium browser tests drive; CI installs it. Nothing ever downloads a browser. */
export const CHROMIUM_PATH = '/usr/bin/chromium';

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/**
 * Launches the system Chromium, headless. Throws (so the calling suite fails, never skips)
 * when the browser is not installed.
 */
export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `browser tests need Chromium at ${CHROMIUM_PATH}, and it is not there ` +
        '(install it with `apt-get install chromium`; playwright-core never downloads browsers)',
    );
  }
  try {
    return await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
  } catch (cause) {
    throw new Error(`could not launch Chromium at ${CHROMIUM_PATH}: ${(cause as Error).message}`, { cause });
  }
}

/** A test file's Chromium: launched in its beforeAll, closed in its afterAll. */
export interface FileBrowser {
  /** Launches Chromium; a failure is kept and thrown by get(), never here. */
  launch(): Promise<void>;
  /** The browser; throws the launcher's message when Chromium could not start. */
  get(): Browser;
  close(): Promise<void>;
}

/**
 * The browser of one test file. A missing Chromium fails every test with the launcher's message:
 * a throw in beforeAll would only fail the file and list its tests as skipped.
 */
export function fileBrowser(): FileBrowser {
  let browser: Browser | undefined;
  let launchError: unknown;
  return {
    async launch() {
      try {
        browser = await launchBrowser();
      } catch (error) {
        launchError = error;
      }
    },
    get() {
      if (!browser) throw launchError;
      return browser;
    },
    async close() {
      await browser?.close();
    },
  };
}
