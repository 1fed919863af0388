// The delivery bench's child processes and what it must undo: each child leads a process group of
// its own (so GNU time and the program it runs are stopped together), and every scope still open
// is undone when the bench is interrupted or fails.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';

const TIME = '/usr/bin/time';

/** What GNU time measured of one process. */
export interface Timed {
  /** Spawn to exit, as the bench saw it. */
  wallMs: number;
  /** Peak resident set size, KB (%M). */
  maxRssKb: number;
  /** User + system CPU (%U + %S), ms; GNU time reports it to 10 ms. */
  cpuMs: number;
  /** The end of its stderr, for messages. */
  stderrTail: string;
}

/** A started child and its outcome. */
export interface Running<T> {
  child: ChildProcess;
  done: Promise<T>;
}

const live = new Set<ChildProcess>();
const openScopes = new Set<Scope>();
let interrupted = false;

/** True once SIGINT/SIGTERM/SIGHUP arrived: nothing new should start. */
export function wasInterrupted(): boolean {
  return interrupted;
}

/** Starts `command` as the leader of a new process group; stdout is dropped, stderr piped. */
export function spawnGroup(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): ChildProcess {
  if (interrupted) throw new Error('interrupted');
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  live.add(child);
  child.once('close', () => live.delete(child));
  child.once('error', () => live.delete(child));
  return child;
}

/** Signals a child's whole process group (it and what it started), if it still runs. */
export function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || !live.has(child)) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the child has closed. */
export async function stopGroup(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (!live.has(child)) return;
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  signalGroup(child, 'SIGTERM');
  const timer = setTimeout(() => signalGroup(child, 'SIGKILL'), graceMs);
  await closed;
  clearTimeout(timer);
}

/**
 * Runs `command args` under `/usr/bin/time -o timeFile -f '%M %U %S'`. Rejects when it exits
 * non-zero or outlives `timeoutMs` (then its group is killed), naming `label`.
 */
export function runTimed(
  label: string,
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; timeFile: string; timeoutMs: number },
): Running<Timed> {
  const started = performance.now();
  const child = spawnGroup(TIME, ['-o', options.timeFile, '-f', '%M %U %S', command, ...args], { env: options.env, cwd: options.cwd });
  let tail = '';
  child.stderr!.on('data', (chunk: Buffer) => (tail = (tail + chunk.toString()).slice(-4000)));
  const done = new Promise<Timed>((resolve, reject) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      void stopGroup(child);
    }, options.timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`${label}: could not start ${TIME} ${command}: ${error.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const wallMs = performance.now() - started;
      const said = tail.trim() ? `; its stderr ended with:\n${indent(tail.trim().slice(-1500))}` : '';
      if (timedOut) return reject(new Error(`${label} was still running after ${Math.round(options.timeoutMs / 1000)} s: killed${said}`));
      if (code !== 0) return reject(new Error(`${label} exited with ${code ?? signal}${said}`));
      readFile(options.timeFile, 'utf8').then(
        (text) => {
          const last = text.trim().split('\n').pop() ?? '';
          const match = /^(\d+) ([\d.]+) ([\d.]+)$/.exec(last);
          if (!match) return reject(new Error(`${label}: unexpected ${TIME} output ${JSON.stringify(text)}`));
          resolve({ wallMs, maxRssKb: Number(match[1]), cpuMs: (Number(match[2]) + Number(match[3])) * 1000, stderrTail: tail });
        },
        (error: Error) => reject(new Error(`${label}: no ${TIME} output: ${error.message}`)),
      );
    });
  });
  return { child, done };
}

/** Things to undo, last first. Every scope still open is also undone when the bench is interrupted. */
export class Scope {
  private readonly undo: { what: string; fn: () => unknown }[] = [];
  private closed = false;

  constructor() {
    if (interrupted) throw new Error('interrupted');
    openScopes.add(this);
  }

  /** Runs `fn` when the scope closes (at once if it has closed already: interrupted meanwhile); `what` names it if it fails. */
  defer(what: string, fn: () => unknown): void {
    if (!this.closed) this.undo.push({ what, fn });
    else {
      const late = attempt(what, fn).finally(() => lateUndos.delete(late));
      lateUndos.add(late);
    }
  }

  /** Undoes everything deferred, last first; a failure is reported and the rest still run. */
  async close(): Promise<void> {
    this.closed = true;
    openScopes.delete(this);
    for (const { what, fn } of this.undo.splice(0).reverse()) await attempt(what, fn);
  }
}

const lateUndos = new Set<Promise<void>>();

async function attempt(what: string, fn: () => unknown): Promise<void> {
  try {
    await fn();
  } catch (error) {
    process.stderr.write(`bench delivery: cleaning up ${what} failed: ${(error as Error).message}\n`);
  }
}

/** Runs `fn` with a scope that is closed afterwards, whatever happens. */
export async function scoped<T>(fn: (scope: Scope) => Promise<T>): Promise<T> {
  const scope = new Scope();
  try {
    return await fn(scope);
  } finally {
    await scope.close();
  }
}

/**
 * On SIGINT/SIGTERM/SIGHUP: kills every child's group, undoes the open scopes (at most 20 s), and
 * exits. A signal again more than 2 s later exits at once (one Ctrl-C often arrives twice: from
 * the terminal and relayed by tsx). At exit, any child left is killed. Returns the uninstaller.
 */
export function cleanUpOnInterrupt(): () => void {
  let firstAt = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    const code = 128 + (signal === 'SIGINT' ? 2 : signal === 'SIGHUP' ? 1 : 15);
    if (interrupted) {
      if (Date.now() - firstAt > 2000) process.exit(code);
      return;
    }
    interrupted = true;
    firstAt = Date.now();
    process.stderr.write(`bench delivery: ${signal}: stopping the children and cleaning up\n`);
    for (const child of live) signalGroup(child, 'SIGKILL');
    const undoAll = async () => {
      while (openScopes.size > 0 || lateUndos.size > 0) {
        for (const scope of [...openScopes].reverse()) await scope.close();
        await Promise.all([...lateUndos]);
      }
    };
    void Promise.race([undoAll(), new Promise((resolve) => setTimeout(resolve, 20_000))]).finally(() => {
      process.stderr.write('bench delivery: cleaned up\n');
      process.exit(code);
    });
  };
  const onExit = () => {
    for (const child of live) signalGroup(child, 'SIGKILL');
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const signal of signals) process.on(signal, onSignal);
  process.on('exit', onExit);
  return () => {
    for (const signal of signals) process.off(signal, onSignal);
    process.off('exit', onExit);
  };
}

function indent(text: string): string {
  return text.replace(/^/gm, '    ');
}
