import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { createEdition } from '../src/edition/create-edition.ts';
import { enqueueEdition } from '../src/edition/enqueue-edition.ts';
import { sampleMessage } from '../src/edition/write-preview.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SINK = '/usr/sbin/smtp-sink';
const SOURCE = '/usr/sbin/smtp-source';

/** Delivery benchmarks (issue: editions, queue and delivery). */
export async function benchDelivery(): Promise<string[]> {
  const sizes = (process.env.BENCH_DELIVERY_SIZES ?? '10000,100000').split(',').map(Number);
  const workers = Number(process.env.BENCH_WORKERS ?? 2);
  // Workers run as in production: the compiled dist/, which must match src/.
  await promisify(execFile)('npm', ['run', 'build', '--silent'], { cwd: ROOT });
  const lines: string[] = [];
  for (const size of sizes) lines.push(...(await benchSize(size, workers)));
  return lines;
}

async function benchSize(count: number, workerCount: number): Promise<string[]> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'gazette-bench-'));
  const port = await freePort();
  const sink = spawn(SINK, ['-u', 'nobody', `127.0.0.1:${port}`, '512'], { stdio: 'ignore' });
  try {
    await waitForPort(port);
    const env = {
      GAZETTE_DATA_DIR: dataDir,
      GAZETTE_CONTENT_DIR: path.join(ROOT, 'content'),
      GAZETTE_TEMPLATES_DIR: path.join(ROOT, 'templates'),
      GAZETTE_SECRET: 'bench-secret-0123456789abcdef',
      SMTP_URL: `smtp://127.0.0.1:${port}`,
      GAZETTE_RATE: '1000000',
      GAZETTE_CONCURRENCY: process.env.BENCH_CONCURRENCY ?? '10',
    };
    const app = createApp(loadConfig({ ...process.env, ...env }));
    const repo = await app.adapters.subscribers();
    const now = new Date();
    for (let i = 0; i < count; i += 5000) {
      const batch = Array.from({ length: Math.min(5000, count - i) }, (_, j) => {
        const email = `reader${i + j}@bench.example.org`;
        return { email, emailKey: email, name: (i + j) % 3 ? `Reader ${i + j}` : null, status: 'active' as const, source: 'bench', consentIp: null, lists: [{ slug: 'dispatch', frequency: 'instant' as const }] };
      });
      await repo.insertMany(batch, now);
    }
    const content = await app.content();
    const { id } = await createEdition({ content, templates: await app.adapters.emailTemplates(), editions: await app.adapters.editions(), now }, { list: 'dispatch', digest: true });
    const enqueueStart = performance.now();
    await enqueueEdition({ editions: await app.adapters.editions(), deliveries: await app.adapters.deliveries(), queue: await app.adapters.queue(), now: () => new Date() }, id);
    const enqueueMs = performance.now() - enqueueStart;
    const edition = (await (await app.adapters.editions()).find(id))!;
    const sample = sampleMessage(await app.adapters.tokens(), content.site, content.site.lists[0]!, edition.compiled, now, { id: 1, email: 'reader1@bench.example.org', name: 'Reader 1' }, {});
    const messageBytes = Buffer.byteLength(sample.raw);
    await app.close();

    const sendStart = performance.now();
    const children = Array.from({ length: workerCount }, () => spawnWorker(env));
    const peaks = await Promise.all(children.map((c) => c.done));
    const sendMs = performance.now() - sendStart;
    const check = createApp(loadConfig({ ...process.env, ...env }));
    const counts = await (await check.adapters.deliveries()).counts(id);
    const span = await (await check.adapters.store()).db
      .selectFrom('deliveries')
      .select((eb) => [eb.fn.min('sent_at').as('first'), eb.fn.max('sent_at').as('last')])
      .where('edition_id', '=', id)
      .executeTakeFirstOrThrow();
    await check.close();
    const sustained = counts.sent / Math.max(0.001, (Date.parse(String(span.last)) - Date.parse(String(span.first))) / 1000);

    const yardstick = await smtpSource(port, count, messageBytes);
    const rate = counts.sent / (sendMs / 1000);
    return [
      `delivery ${count.toLocaleString('en')}: enqueue ${(enqueueMs / 1000).toFixed(2)} s   [target 100,000 <= 2 s]`,
      `delivery ${count.toLocaleString('en')}: ${counts.sent.toLocaleString('en')} sent of ${(messageBytes / 1024).toFixed(1)} KB in ${(sendMs / 1000).toFixed(1)} s = ${Math.round(rate).toLocaleString('en')} msgs/s end to end (worker start-up included), ${Math.round(sustained).toLocaleString('en')} msgs/s sustained (first to last send), ${workerCount} worker processes   [target >= 3,000 sustained]`,
      `delivery ${count.toLocaleString('en')}: peak RSS per worker ${peaks.map((p) => `${Math.round(p / 1024)} MB`).join(', ')}   [target <= 150 MB]`,
      `delivery ${count.toLocaleString('en')}: smtp-source yardstick (10 sessions, same size): ${Math.round(yardstick).toLocaleString('en')} msgs/s; Gazette reaches ${Math.round((100 * rate) / yardstick)}%`,
    ];
  } finally {
    sink.kill('SIGTERM');
    await rm(dataDir, { recursive: true, force: true });
  }
}

// A worker process that exits when the queue is drained and reports its peak RSS (KB).
function spawnWorker(env: Record<string, string>): { child: ChildProcess; done: Promise<number> } {
  // The production command (compiled dist/ when built), measured by GNU time.
  const child = spawn('/usr/bin/time', ['-f', 'maxrss=%M', process.execPath, path.join(ROOT, 'bin', 'gazette.js'), 'worker', '--exit-when-idle'], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let out = '';
  child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const done = new Promise<number>((resolve, reject) =>
    child.on('exit', (code) => (code === 0 ? resolve(Number(/maxrss=(\d+)/.exec(out)?.[1] ?? 0)) : reject(new Error(`worker exited ${code}: ${out.slice(-500)}`)))),
  );
  return { child, done };
}

async function smtpSource(port: number, count: number, bytes: number): Promise<number> {
  const start = performance.now();
  await new Promise<void>((resolve, reject) => {
    const source = spawn(SOURCE, ['-s', '10', '-m', String(count), '-l', String(bytes), '-f', 'news@bench.example.org', '-t', 'reader@bench.example.org', `127.0.0.1:${port}`], { stdio: 'ignore' });
    source.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`smtp-source exited ${code}`))));
  });
  return count / ((performance.now() - start) / 1000);
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number): Promise<void> {
  const { connect } = await import('node:net');
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.end();
        resolve(true);
      }).on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`smtp-sink did not start on ${port}`);
}
