import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ImapFlow } from 'imapflow';
import { SERVICES_REQUIRED } from './services.ts';

// A real Dovecot IMAP server per test file, everything it writes (config, sockets, state, log,
// maildirs) inside one temp dir that stop() removes. Nothing of the system's Dovecot is used.

/** The Dovecot binary of the Debian package dovecot-imapd (this machine and CI); env TEST_DOVECOT. */
export const DOVECOT_BIN = process.env.TEST_DOVECOT || '/usr/sbin/dovecot';

const missingLine = SERVICES_REQUIRED
  ? `${DOVECOT_BIN} not found: GAZETTE_TEST_SERVICES=required, so the IMAP mailbox suites fail; install dovecot-imapd or set TEST_DOVECOT`
  : `${DOVECOT_BIN} not found: skipping the IMAP mailbox suites; install dovecot-imapd or set TEST_DOVECOT (GAZETTE_TEST_SERVICES=required fails instead)`;

/** Whether Dovecot can be started here: `describe.runIf(DOVECOT_AVAILABLE)`. Prints the one skip line, or throws under GAZETTE_TEST_SERVICES=required. */
export const DOVECOT_AVAILABLE: boolean = (() => {
  if (existsSync(DOVECOT_BIN)) return true;
  if (SERVICES_REQUIRED) throw new Error(missingLine);
  console.warn(missingLine);
  return false;
})();

/** How the test server is set up. */
export interface DovecotOptions {
  /** Also listen for imaps and offer STARTTLS, with a certificate for 127.0.0.1 made by the openssl CLI. */
  tls?: boolean;
  /** Advertise no IDLE, to test polling; default false. */
  noIdle?: boolean;
}

/** A running test Dovecot with one user. */
export interface TestDovecot {
  user: string;
  password: string;
  host: string;
  /** Plain IMAP port (STARTTLS offered when started with tls). */
  port: number;
  /** Port of imaps when started with tls. */
  imapsPort: number | undefined;
  /** PEM of the test certificate when started with tls, for `tls: { ca }`. */
  ca: string | undefined;
  /** imap://user:password@127.0.0.1:port/MAILBOX, the mailbox URL-encoded; imaps with `{ imaps: true }`. */
  url(mailbox?: string, options?: { password?: string; imaps?: boolean }): string;
  /** Creates a mailbox besides INBOX. */
  createMailbox(mailbox: string): Promise<void>;
  /** Appends one message, as a second client would deliver it. */
  append(raw: Buffer | string, mailbox?: string): Promise<void>;
  /** The messages of a mailbox with their flags, by uid; \Recent left out. */
  list(mailbox?: string): Promise<{ uid: number; flags: string[] }[]>;
  /** Stops the server but keeps its mail, as a server that goes away. */
  down(): Promise<void>;
  /** Starts it again on the same ports with the same mail. */
  up(): Promise<void>;
  /** Stops the server and removes everything it wrote. */
  stop(): Promise<void>;
}

const USER = 'gazette';
const PASSWORD = 'bounce-reader-secret';

/** Starts a Dovecot in a fresh temp dir and waits until it answers. */
export async function startDovecot(options: DovecotOptions = {}): Promise<TestDovecot> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gazette-dovecot-'));
  let child: ChildProcess | undefined;
  // A worker that exits without afterAll (killed run, crash) still leaves nothing running or in tmp.
  const killOnExit = () => {
    if (child?.pid) signalGroup(child.pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', killOnExit);
  try {
    const port = await freePort();
    const imapsPort = options.tls ? await freePort() : undefined;
    const ca = options.tls ? await makeCertificate(dir) : undefined;
    await writeConfig(dir, port, imapsPort, options);
    const config = path.join(dir, 'dovecot.conf');
    const start = async () => {
      child = await runDovecot(config, port, path.join(dir, 'dovecot.log'));
    };
    await start();
    const connect = async () => {
      const client = new ImapFlow({ host: '127.0.0.1', port, secure: false, doSTARTTLS: false, auth: { user: USER, pass: PASSWORD }, logger: false });
      client.on('error', () => {});
      await client.connect();
      return client;
    };
    const withClient = async <T>(work: (client: ImapFlow) => Promise<T>): Promise<T> => {
      const client = await connect();
      try {
        return await work(client);
      } finally {
        await client.logout().catch(() => client.close());
      }
    };
    return {
      user: USER,
      password: PASSWORD,
      host: '127.0.0.1',
      port,
      imapsPort,
      ca,
      url: (mailbox = 'INBOX', opts = {}) =>
        `${opts.imaps ? 'imaps' : 'imap'}://${USER}:${encodeURIComponent(opts.password ?? PASSWORD)}@127.0.0.1:${opts.imaps ? imapsPort : port}/${encodeURIComponent(mailbox)}`,
      createMailbox: (mailbox) => withClient(async (client) => void (await client.mailboxCreate(mailbox))),
      append: (raw, mailbox = 'INBOX') =>
        withClient(async (client) => {
          if (!(await client.append(mailbox, raw))) throw new Error(`APPEND to ${mailbox} failed`);
        }),
      list: (mailbox = 'INBOX') =>
        withClient(async (client) => {
          const lock = await client.getMailboxLock(mailbox, { readOnly: true });
          try {
            const messages = await client.fetchAll('1:*', { uid: true, flags: true });
            return messages
              .map((m) => ({ uid: m.uid, flags: [...(m.flags ?? [])].filter((f) => f !== '\\Recent').sort() }))
              .sort((a, b) => a.uid - b.uid);
          } finally {
            lock.release();
          }
        }),
      down: async () => {
        await terminate(child);
        child = undefined;
      },
      up: start,
      stop: async () => {
        await terminate(child);
        child = undefined;
        process.off('exit', killOnExit);
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await terminate(child);
    process.off('exit', killOnExit);
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

async function writeConfig(dir: string, port: number, imapsPort: number | undefined, options: DovecotOptions): Promise<void> {
  // As root (CI), Dovecot drops to its own users for its services and refuses to run mail as root:
  // mail belongs to `nobody`, so the temp dir must be traversable. Otherwise everything runs as us.
  const root = process.getuid?.() === 0;
  const me = os.userInfo();
  const mailUid = root ? 65534 : me.uid;
  const mailGid = root ? 65534 : me.gid;
  const home = path.join(dir, 'home');
  await chmod(dir, 0o755);
  await mkdir(home);
  if (root) await chown(home, mailUid, mailGid);
  // Readable by Dovecot's auth process, which runs as its internal user.
  await writeFile(path.join(dir, 'passwd'), `${USER}:{PLAIN}${PASSWORD}:${mailUid}:${mailGid}::${home}::\n`);
  const lines = [
    `base_dir = ${path.join(dir, 'run')}`,
    `state_dir = ${path.join(dir, 'state')}`,
    `instance_name = ${path.basename(dir)}`,
    `log_path = ${path.join(dir, 'dovecot.log')}`,
    'protocols = imap',
    'listen = 127.0.0.1',
    'disable_plaintext_auth = no',
    'auth_mechanisms = plain login',
    // Tests of a wrong password would otherwise wait two seconds each.
    'auth_failure_delay = 0',
    // Without inotify Dovecot looks for new mail during IDLE only every 30 s.
    'mailbox_idle_check_interval = 1 secs',
    root ? 'default_internal_user = dovecot' : `default_internal_user = ${me.username}`,
    root ? 'default_login_user = dovenull' : `default_login_user = ${me.username}`,
    ...(root ? [] : [`default_internal_group = ${(await promisify(execFile)('id', ['-gn'])).stdout.trim()}`]),
    `first_valid_uid = ${Math.min(mailUid, 500)}`,
    `first_valid_gid = ${Math.min(mailGid, 1)}`,
    `passdb {\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u ${path.join(dir, 'passwd')}\n}`,
    `userdb {\n  driver = passwd-file\n  args = username_format=%u ${path.join(dir, 'passwd')}\n}`,
    'mail_location = maildir:~/Maildir',
    ...(options.tls
      ? ['ssl = yes', `ssl_cert = <${path.join(dir, 'cert.pem')}`, `ssl_key = <${path.join(dir, 'key.pem')}`]
      : ['ssl = no']),
    ...(options.noIdle ? ['imap_capability = IMAP4rev1 LITERAL+ SASL-IR ID ENABLE UIDPLUS NAMESPACE'] : []),
    // Off, Dovecot's documented way: else every login from 127.0.0.1 after a wrong password waits seconds.
    'service anvil {\n  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n}',
    'service imap-login {',
    `  inet_listener imap {\n    address = 127.0.0.1\n    port = ${port}\n  }`,
    `  inet_listener imaps {\n    address = 127.0.0.1\n    port = ${imapsPort ?? 0}\n  }`,
    ...(root ? [] : ['  chroot =']),
    '}',
  ];
  await writeFile(path.join(dir, 'dovecot.conf'), `${lines.join('\n')}\n`);
}

async function makeCertificate(dir: string): Promise<string> {
  const cert = path.join(dir, 'cert.pem');
  await promisify(execFile)('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-keyout', path.join(dir, 'key.pem'), '-out', cert,
  ]);
  return readFile(cert, 'utf8');
}

// Starts `dovecot -F` and resolves once the port accepts connections; rejects with its own words if it exits first.
async function runDovecot(config: string, port: number, logFile: string): Promise<ChildProcess> {
  // Its own process group, so stopping it reaches every process it forked (see terminate()).
  const child = spawn(DOVECOT_BIN, ['-F', '-c', config], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  let exited: string | undefined;
  child.once('exit', (code, signal) => (exited = `exited with ${signal ?? code}`));
  child.once('error', (error) => (exited = error.message));
  const deadline = Date.now() + 10_000;
  while (!(await answers(port))) {
    if (exited !== undefined || Date.now() > deadline) {
      const log = await readFile(logFile, 'utf8').catch(() => '');
      await terminate(child);
      throw new Error(`dovecot ${exited ?? 'did not answer within 10 s'}:\n${stderr}${log}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return child;
}

// SIGTERM goes to the whole process group (what a server shutting down looks like to a client):
// the master alone would leave an imap process serving its client for some ten seconds. Once the
// master is gone, SIGKILL sweeps the group; waiting until it is empty would wait for PID 1 to reap
// the zombies, which in some containers takes seconds.
async function terminate(child: ChildProcess | undefined): Promise<void> {
  const group = child?.pid;
  if (child === undefined || group === undefined) return;
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    signalGroup(group, 'SIGTERM');
    const timer = setTimeout(() => signalGroup(group, 'SIGKILL'), 2_000);
    await exited;
    clearTimeout(timer);
  }
  signalGroup(group, 'SIGKILL');
}

// Whether any process of the group was there to take the signal.
function signalGroup(group: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-group, signal);
    return true;
  } catch {
    return false;
  }
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
