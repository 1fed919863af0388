import { mkdtemp, rm, writeFile, cp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createApp, type App } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { createEdition } from '../src/edition/create-edition.ts';
import type { SendQueue } from '../src/delivery/send-queue.ts';
import type { FireDeps } from '../src/schedule/fire-schedule.ts';
import { addSchedule } from '../src/schedule/manage-schedules.ts';
import { Scheduler } from '../src/schedule/scheduler.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const quiet = { info: () => {}, warn: (m: string) => process.stderr.write(`bench: ${m}\n`), error: (m: string) => process.stderr.write(`bench: ${m}\n`) };

/**
 * Scheduler benchmarks (issue: the scheduler): fire lag, from the scheduled instant to the edition's
 * jobs being queued, with two schedulers racing over one SQLite database.
 * A: many one-offs at near instants (BENCH_SCHEDULE_ONE_OFFS, default 200, 25 ms apart).
 * B: a per-second digest ("* * * * * *") with a story published every second (BENCH_SCHEDULE_SECONDS, default 15).
 */
export async function benchSchedule(): Promise<string[]> {
  const oneOffs = Number(process.env.BENCH_SCHEDULE_ONE_OFFS ?? 200);
  const seconds = Number(process.env.BENCH_SCHEDULE_SECONDS ?? 15);
  const subscribers = Number(process.env.BENCH_SCHEDULE_SUBSCRIBERS ?? 1000);
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'gazette-bench-schedule-'));
  const contentDir = path.join(dataDir, 'content');
  await cp(path.join(ROOT, 'content'), contentDir, { recursive: true });
  const env = { GAZETTE_DATA_DIR: dataDir, GAZETTE_CONTENT_DIR: contentDir, GAZETTE_TEMPLATES_DIR: path.join(ROOT, 'templates'), GAZETTE_SECRET: 'bench-secret-0123456789abcdef' };
  const apps = [0, 1].map(() => createApp(loadConfig({ ...process.env, ...env })));
  try {
    await addSubscribers(apps[0]!, subscribers);
    const queued = new Map<number, number>();
    const deps = await Promise.all(apps.map(async (app) => stamped(await app.adapters.fireDeps(quiet), queued)));
    const a = await benchOneOffs(apps[0]!, deps, queued, oneOffs);
    const b = await benchPerSecond(deps, queued, contentDir, seconds);
    return [
      `schedule one-offs: ${a.lags.length} fires (${oneOffs} one-offs 25 ms apart, ${subscribers.toLocaleString('en')} subscribers, 2 schedulers racing): lag p50 ${ms(a.lags, 50)}, p99 ${ms(a.lags, 99)}, max ${ms(a.lags, 100)}; ${a.duplicates} fired twice   [target p99 <= 1 s]`,
      `schedule per-second digest: ${b.lags.length} fires with jobs of ${b.fires} fires ("* * * * * *", a new story each second): lag p50 ${ms(b.lags, 50)}, p99 ${ms(b.lags, 99)}, max ${ms(b.lags, 100)}; ${b.duplicates} fired twice   [target p99 <= 1 s]`,
    ];
  } finally {
    for (const app of apps) await app.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** Fire deps whose queue notes when each edition's jobs were last queued. */
function stamped(deps: FireDeps, queued: Map<number, number>): FireDeps {
  const queue: SendQueue = {
    ...deps.queue,
    async enqueue(jobs) {
      const added = await deps.queue.enqueue(jobs);
      for (const job of jobs) queued.set(job.editionId, Date.now());
      return added;
    },
  };
  return { ...deps, queue };
}

async function benchOneOffs(app: App, deps: FireDeps[], queued: Map<number, number>, count: number) {
  const [d] = deps;
  const content = await app.content();
  const slug = content.stories.find((s) => !s.draft)!.slug;
  const { id } = await createEdition({ content, templates: await app.adapters.emailTemplates(), editions: d!.editions, now: new Date() }, { list: content.site.lists[0]!.slug, story: slug });
  const model = (await d!.editions.find(id))!;
  const copies = [id];
  // Copies of one rendered edition: the lag measured is the scheduler's, not MJML's.
  while (copies.length < count) copies.push(await d!.editions.insert({ listSlug: model.listSlug, kind: model.kind, audience: model.audience, storySlugs: model.storySlugs, compiled: model.compiled, origin: model.origin!, htmlBytes: model.htmlBytes, coversUntil: new Date(model.coversUntil) }, new Date()));
  const schedulers = deps.map((x) => new Scheduler(x, { graceMs: 3_600_000 }));
  await Promise.all(schedulers.map((s) => s.start()));
  // Added while the schedulers run, as an editor would: they pick them up by polling.
  const start = Date.now() + 5000;
  const schedules = [];
  for (const [i, copy] of copies.entries()) {
    const at = new Date(start + i * 25);
    schedules.push({ copy, at, row: await addSchedule({ schedules: d!.schedules, editions: d!.editions, content: async () => content, now: new Date() }, { edition: copy, at: at.toISOString() }) });
  }
  if (Date.now() > start - 2500) process.stderr.write('bench: adding the one-offs took too long; the first ones may be picked up late\n');
  await sleep(start + count * 25 + 1500 - Date.now());
  await Promise.all(schedulers.map((s) => s.stop()));
  const lags = schedules.filter((s) => queued.has(s.copy)).map((s) => queued.get(s.copy)! - s.at.getTime());
  let duplicates = 0;
  for (const s of schedules) duplicates += Math.max(0, (await d!.schedules.fires(s.row.id)).length - 1);
  return { lags, duplicates };
}

async function benchPerSecond(deps: FireDeps[], queued: Map<number, number>, contentDir: string, seconds: number) {
  const [d] = deps;
  const row = await addSchedule({ schedules: d!.schedules, editions: d!.editions, content: d!.content, now: new Date() }, { list: 'dispatch', cron: '* * * * * *', tz: 'UTC', digest: true });
  const schedulers = deps.map((x) => new Scheduler(x, { graceMs: 3_600_000 }));
  await Promise.all(schedulers.map((s) => s.start()));
  // A story is published half a second before each fire, so every digest has one to send.
  const first = Math.ceil(Date.now() / 1000) * 1000 + 1000;
  for (let i = 0; i < seconds; i++) {
    const nextSecond = first + i * 1000;
    await sleep(nextSecond - 500 - Date.now());
    const date = new Date(nextSecond - 500).toISOString();
    await writeFile(path.join(contentDir, 'stories', `bench-${i}.md`), `---\ntitle: "Bench story ${i}"\ndate: ${date}\nauthor: "Bench"\nsummary: "Published by the benchmark."\ntags: [Bench]\n---\nBody ${i}.\n\n## Section\n\nMore.\n`);
    await sleep(nextSecond - Date.now());
  }
  await sleep(1500);
  await Promise.all(schedulers.map((s) => s.stop()));
  const fires = await d!.schedules.fires(row.id, 10_000);
  const lags = fires.filter((f) => f.editionId !== null && queued.has(f.editionId)).map((f) => queued.get(f.editionId!)! - new Date(f.fireAt).getTime());
  const instants = fires.map((f) => f.fireAt);
  return { lags, fires: fires.length, duplicates: instants.length - new Set(instants).size };
}

async function addSubscribers(app: App, count: number): Promise<void> {
  const repo = await app.adapters.subscribers();
  const batch = Array.from({ length: count }, (_, i) => {
    const email = `reader${i}@bench.example.org`;
    return { email, emailKey: email, name: null, status: 'active' as const, source: 'bench', consentIp: null, lists: [{ slug: 'dispatch', frequency: 'instant' as const }] };
  });
  await repo.insertMany(batch, new Date());
}

function ms(values: number[], percentile: number): string {
  if (values.length === 0) return 'n/a';
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.ceil((percentile / 100) * sorted.length) - 1);
  return `${Math.round(sorted[Math.max(0, index)]!)} ms`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}
