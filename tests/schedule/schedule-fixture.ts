import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createApp, type App } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import type { FireDeps, ScheduleLog } from '../../src/schedule/fire-schedule.ts';
import { Scheduler, type SchedulerOptions } from '../../src/schedule/scheduler.ts';
import type { Frequency } from '../../src/model/subscriber.ts';
import { tempContentDir, TEMPLATES_DIR, storyFile } from '../helpers/content-dir.ts';
import { freshDatabase, type TestDatabase } from '../helpers/databases.ts';

/** A log that keeps its lines, for assertions and for printing when a test fails. */
export function memoryLog(): ScheduleLog & { lines: string[] } {
  const lines: string[] = [];
  return { lines, info: (m) => lines.push(`info ${m}`), warn: (m) => lines.push(`warn ${m}`), error: (m) => lines.push(`error ${m}`) };
}

/** A story file dated at an instant, with a title. */
export function datedStory(title: string, date: string): string {
  return storyFile({ title: JSON.stringify(title), date });
}

/** An App over a fresh database and a temp content folder, with subscribers of each frequency on `dispatch`. */
export interface ScheduleFixture {
  app: App;
  database: TestDatabase;
  contentDir: string;
  deps: FireDeps;
  log: ReturnType<typeof memoryLog>;
  /** Another App (another "process") over the same database and content. */
  otherApp(): App;
  /** A scheduler over an App of its own, as a second process would have. */
  scheduler(options?: Partial<SchedulerOptions>, app?: App): Promise<Scheduler>;
  addStory(name: string, text: string): Promise<void>;
  close(): Promise<void>;
}

export async function scheduleFixture(
  backend: 'sqlite' | 'postgres',
  options: { stories?: Record<string, string>; now?: () => Date } = {},
): Promise<ScheduleFixture> {
  const database = await freshDatabase(backend);
  const contentDir = await tempContentDir(options.stories ?? {});
  const config = loadConfig({
    GAZETTE_CONTENT_DIR: contentDir,
    GAZETTE_DATA_DIR: database.dataDir,
    GAZETTE_TEMPLATES_DIR: TEMPLATES_DIR,
    DATABASE_URL: database.url,
    GAZETTE_SECRET: 'test-secret-0123456789abcdef',
    BASE_URL: 'https://gazette.test',
  });
  const apps: App[] = [];
  const makeApp = () => {
    const app = createApp(config, { now: options.now });
    apps.push(app);
    return app;
  };
  const app = makeApp();
  const log = memoryLog();
  const subscribers = await app.adapters.subscribers();
  const frequencies: Frequency[] = ['instant', 'instant', 'daily', 'weekly'];
  for (const [i, frequency] of frequencies.entries()) {
    const email = `reader${i}@example.com`;
    await subscribers.insert({ email, emailKey: email, name: null, status: 'active', source: 'test', consentIp: null, lists: [{ slug: 'dispatch', frequency }] }, new Date('2025-01-01T00:00:00Z'));
  }
  const schedulers: Scheduler[] = [];
  return {
    app,
    database,
    contentDir,
    deps: await app.adapters.fireDeps(log),
    log,
    otherApp: makeApp,
    async scheduler(settings = {}, own = makeApp()) {
      const scheduler = new Scheduler(await own.adapters.fireDeps(log), { graceMs: 3_600_000, ...settings });
      schedulers.push(scheduler);
      return scheduler;
    },
    async addStory(name, text) {
      await writeFile(path.join(contentDir, 'stories', name), text);
    },
    async close() {
      for (const s of schedulers) await s.stop();
      for (const a of apps) await a.close();
      await database.drop();
      await rm(contentDir, { recursive: true, force: true });
      await rm(database.dataDir, { recursive: true, force: true });
    },
  };
}
