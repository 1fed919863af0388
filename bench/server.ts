import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const run = promisify(execFile);

/** Server benchmarks (issue: subscribers and the web). The load comes from separate processes. */
export async function benchServer(): Promise<string[]> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'gazette-bench-server-'));
  const port = 18000 + Math.floor(Math.random() * 1000);
  const env = {
    ...process.env,
    GAZETTE_DATA_DIR: dataDir,
    GAZETTE_CONTENT_DIR: path.join(ROOT, 'content'),
    GAZETTE_TEMPLATES_DIR: path.join(ROOT, 'templates'),
    GAZETTE_SECRET: 'bench-secret-0123456789abcdef',
    GAZETTE_BENCH_SUBSCRIBE_LIMIT: '100000000',
    LOG_LEVEL: 'silent',
  };
  const server = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench', 'serve-for-bench.ts'), String(port)], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      server.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('listening') && resolve());
      server.on('exit', (code) => reject(new Error(`bench server exited ${code}`)));
    });
    const url = `http://127.0.0.1:${port}`;
    const head = await fetch(`${url}/rss.xml`);
    const etag = head.headers.get('etag')!;
    const ok = await autocannon(['-c', '50', '-d', '10', `${url}/rss.xml`]);
    const notModified = await autocannon(['-c', '50', '-d', '10', '-H', `If-None-Match=${etag}`, `${url}/rss.xml`]);
    lines.push(`server: cached /rss.xml 200 (${(Number(head.headers.get('content-length')) / 1024).toFixed(1)} KB): ${Math.round(ok.requests.average).toLocaleString('en')} req/s, p99 ${ok.latency.p99} ms   [target >= 15,000]`);
    lines.push(`server: cached /rss.xml 304 (If-None-Match): ${Math.round(notModified.requests.average).toLocaleString('en')} req/s, p99 ${notModified.latency.p99} ms   [target >= 15,000]`);
    const subscribe = await autocannon(['-c', '20', '-d', '10', '-m', 'POST', '-H', 'content-type=application/x-www-form-urlencoded', '-b', 'email=bench-[<id>]@example.org&lists=dispatch', '--idReplacement', `${url}/subscribe`]);
    lines.push(`server: POST /subscribe (new addresses, confirmation email to the outbox each): ${Math.round(subscribe.requests.average).toLocaleString('en')} req/s, p99 ${subscribe.latency.p99} ms, ${subscribe.non2xx} non-2xx`);
  } finally {
    server.kill('SIGTERM');
  }
  lines.push(await benchCsvImport(dataDir, env));
  await rm(dataDir, { recursive: true, force: true });
  return lines;
}

interface AutocannonResult {
  requests: { average: number };
  latency: { p99: number };
  non2xx: number;
}

async function autocannon(args: string[]): Promise<AutocannonResult> {
  const { stdout } = await run(path.join(ROOT, 'node_modules', '.bin', 'autocannon'), ['-j', ...args], { maxBuffer: 64 * 1024 * 1024 });
  return JSON.parse(stdout) as AutocannonResult;
}

async function benchCsvImport(dataDir: string, env: NodeJS.ProcessEnv): Promise<string> {
  const file = path.join(dataDir, 'subscribers.csv');
  const rows = ['email,name,frequency'];
  for (let i = 0; i < 100_000; i++) rows.push(`reader${i}@import.example.org,Reader ${i},${['instant', 'daily', 'weekly'][i % 3]}`);
  await writeFile(file, `${rows.join('\n')}\n`);
  const importDir = path.join(dataDir, 'import');
  const start = performance.now();
  const { stderr } = await run('/usr/bin/time', ['-f', 'maxrss_kb=%M', process.execPath, path.join(ROOT, 'bin', 'gazette.js'), 'subscribers', 'import', file, '--confirmed'], {
    env: { ...env, GAZETTE_DATA_DIR: importDir },
    maxBuffer: 64 * 1024 * 1024,
  });
  const seconds = (performance.now() - start) / 1000;
  const rss = Number(/maxrss_kb=(\d+)/.exec(stderr)?.[1] ?? 0) / 1024;
  return `import: 100,000-row CSV through \`gazette subscribers import\` (whole process, start-up included): ${seconds.toFixed(1)} s, peak RSS ${Math.round(rss)} MB   [target <= 5 s, <= 200 MB]`;
}
