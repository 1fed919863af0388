import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { baseUrlWarning } from '../../src/cli/commands/serve.ts';
import { startGazette, withTimeout, type Running } from '../helpers/cli.ts';
import { REPO_CONTENT_DIR } from '../helpers/server.ts';

// Every run starts a Node process that loads the whole app through tsx: seconds each on a busy machine.
const SLOW = 180_000;

/** A port nothing listens on right now (the kernel's pick, released at once). */
async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** Resolves with what stderr holds once `ready` says it has enough, or once the process ended. */
function stderrWhen(run: Running, ready: (stderr: string) => boolean): Promise<string> {
  let stderr = '';
  return new Promise((resolve) => {
    run.child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (ready(stderr)) resolve(stderr);
    });
    run.child.once('close', () => resolve(stderr));
  });
}

describe('gazette serve', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  /** A fresh data folder and the environment of a serve over it and the sample content. */
  async function environment(extra: Record<string, string> = {}): Promise<Record<string, string>> {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'gazette-serve-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    return { GAZETTE_DATA_DIR: dataDir, GAZETTE_CONTENT_DIR: REPO_CONTENT_DIR, GAZETTE_SECRET: 'test-secret-0123456789abcdef', ...extra };
  }

  /** Starts `gazette serve` on `port`; it is stopped (SIGKILL) after the test if the test did not stop it. */
  function serve(port: number, env: Record<string, string>): Running {
    const run = startGazette(['serve', '--port', String(port), '--host', '127.0.0.1'], env);
    cleanups.push(async () => {
      if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
      await run.done.catch(() => undefined);
    });
    return run;
  }

  it('says where its links point, warns when that is not where it listens, and stops on SIGTERM', async () => {
    const port = await freePort();
    const run = serve(port, await environment());
    const stderr = await withTimeout(stderrWhen(run, (s) => /console at .*\n/.test(s)), SLOW, 'serve start-up');
    expect(stderr.split('\n').slice(0, 3)).toEqual([
      'links point at http://localhost:8080 (site.yaml base_url; BASE_URL overrides it)',
      `warning: links point at port 8080, but this server listens on port ${port}: set base_url in site.yaml to http://localhost:${port} so they reach it (BASE_URL=… works too, but only for the processes it is set for: \`gazette edition create\` in another terminal would still use site.yaml's)`,
      `editors' console at http://localhost:${port}/admin (no users yet: add the first with \`gazette users add EMAIL --role admin\`)`,
    ]);
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(await health.json()).toEqual({ ok: true });
    run.child.kill('SIGTERM');
    const done = await withTimeout(run.done, 60_000, 'serve shutdown');
    expect(done.code, done.stderr).toBe(0);
  }, SLOW);

  it('says nothing more when BASE_URL is where it listens', async () => {
    const port = await freePort();
    const run = serve(port, await environment({ BASE_URL: `http://127.0.0.1:${port}` }));
    await withTimeout(stderrWhen(run, (s) => s.includes('links point at')), SLOW, 'serve start-up');
    await fetch(`http://127.0.0.1:${port}/healthz`);
    run.child.kill('SIGTERM');
    const done = await withTimeout(run.done, 60_000, 'serve shutdown');
    expect(done.code).toBe(0);
    expect(done.stderr.split('\n')[0]).toBe(`links point at http://127.0.0.1:${port} (BASE_URL, over site.yaml base_url)`);
    expect(done.stderr).not.toContain('warning');
  }, SLOW);

  it('on a port in use prints one line saying so and exits 1, starting nothing', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => taken.close(() => resolve())));
    const { port } = taken.address() as net.AddressInfo;
    const run = serve(port, await environment());
    const done = await withTimeout(run.done, SLOW, 'serve on a taken port');
    expect(done.code).toBe(1);
    expect(done.stderr).toBe(`gazette: port ${port} is in use: pass --port N or set PORT (and point site.yaml's base_url at that port, so every command's links reach this server)\n`);
    expect(done.stdout).toBe('');
  }, SLOW);
});

describe('baseUrlWarning', () => {
  it('accepts a URL that reaches the port, and https or private hosts (a proxy in front)', () => {
    expect(baseUrlWarning('http://localhost:8080', 8080)).toBeUndefined();
    expect(baseUrlWarning('http://127.0.0.1:3000', 3000)).toBeUndefined();
    expect(baseUrlWarning('https://news.example.org', 8080)).toBeUndefined();
    expect(baseUrlWarning('http://news.example.org:8080', 8080)).toBeUndefined();
    expect(baseUrlWarning('http://gazette.test', 8080)).toBeUndefined();
    expect(baseUrlWarning('http://10.0.0.5', 8080)).toBeUndefined();
  });

  it('warns for a local URL on another port, and plain http on a public host elsewhere', () => {
    expect(baseUrlWarning('http://localhost:8080', 9090)).toBe(
      "links point at port 8080, but this server listens on port 9090: set base_url in site.yaml to http://localhost:9090 so they reach it (BASE_URL=… works too, but only for the processes it is set for: `gazette edition create` in another terminal would still use site.yaml's)",
    );
    expect(baseUrlWarning('http://127.0.0.1', 8080)).toMatch(/^links point at port 80, but this server listens on port 8080: set base_url in site\.yaml to http:\/\/127\.0\.0\.1:8080/);
    expect(baseUrlWarning('http://[::1]:8080', 8081)).toMatch(/set base_url in site\.yaml to http:\/\/\[::1\]:8081 /);
    expect(baseUrlWarning('http://news.example.org', 8080)).toBe(
      'links point at plain http on port 80 of news.example.org, but this server listens on port 8080: unless a proxy there forwards to it, set BASE_URL to the URL readers use (https:// for a public site)',
    );
  });
});
