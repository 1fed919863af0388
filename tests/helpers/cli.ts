import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

/** The repository root, where `bin/gazette.js` is. */
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** How a CLI run ended. */
export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A running `gazette` process and its end. */
export interface Running {
  child: ChildProcess;
  done: Promise<Finished>;
}

/**
 * Starts `node bin/gazette.js ARGS` in the repository with exactly `env` (plus PATH and HOME),
 * as a user runs it: nothing of the test process's environment leaks in.
 */
export function startGazette(args: string[], env: Record<string, string>, stdin?: string): Running {
  const child = spawn(process.execPath, ['bin/gazette.js', ...args], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? os.tmpdir(), ...env },
    stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  if (stdin !== undefined) child.stdin!.end(stdin);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<Finished>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done };
}

/** Runs `gazette ARGS` to its end (`stdin`, when given, piped in); a run still going after `timeoutMs` is killed and rejected. */
export async function gazette(args: string[], env: Record<string, string>, timeoutMs = 150_000, stdin?: string): Promise<Finished> {
  const run = startGazette(args, env, stdin);
  return withTimeout(run.done, timeoutMs, `gazette ${args.join(' ')}`, () => run.child.kill('SIGKILL'));
}

/** Rejects when `promise` takes longer than `ms`, after calling `onTimeout`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string, onTimeout: () => void = () => {}): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<T>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(new Error(`${what}: no end after ${ms} ms`));
    }, ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
