import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type App } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { gazette, type Finished } from '../helpers/cli.ts';

const CONTENT_DIR = fileURLToPath(new URL('../../content', import.meta.url));

interface ListedUser {
  id: number;
  email: string;
  role: string;
  created_at: string;
  password_changed_at: string;
  last_login_at: string | null;
}

interface ListedToken {
  id: number;
  name: string;
  prefix: string;
  created_at: string;
  last_used_at: string | null;
}

let dataDir: string;
// The test's own App over the same data folder, to check what the CLI stored through the use cases themselves.
let app: App | undefined;

// Every run starts a Node process that loads the whole app: seconds each on a busy machine.
const SLOW = 180_000;

const ANN_PASSWORD = 'correct horse battery staple';
const BOB_PASSWORD = 'bobs very long password';

function env(): Record<string, string> {
  return { GAZETTE_DATA_DIR: dataDir, GAZETTE_CONTENT_DIR: CONTENT_DIR, BASE_URL: 'https://gazette.test' };
}

/** Runs `gazette users …` in a child process over the throwaway data folder; `stdin`, when given, is piped in. */
function users(args: string[], stdin?: string): Promise<Omit<Finished, 'signal'>> {
  return run(['users', ...args], stdin);
}

/** Runs the real CLI in a child process over the throwaway data folder. */
async function run(args: string[], stdin?: string): Promise<Omit<Finished, 'signal'>> {
  const { code, stdout, stderr } = await gazette(args, env(), SLOW, stdin);
  return { code, stdout, stderr };
}

function inProcess(): App {
  return (app ??= createApp(loadConfig(env())));
}

async function listed(): Promise<ListedUser[]> {
  const result = await users(['list', '--json']);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as ListedUser[];
}

describe('gazette users', () => {
  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'gazette-users-cli-'));
    const migrated = await run(['migrate']);
    expect(migrated.code, migrated.stderr).toBe(0);
  }, SLOW);

  afterAll(async () => {
    await app?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('says how to add the first admin, then adds users with a password from stdin or a file; bad ones are refused and nothing is stored', async () => {
    const empty = await users(['list']);
    expect(empty).toEqual({ code: 0, stdout: '', stderr: 'no users yet: add the first admin with `gazette users add EMAIL --role admin`\n' });

    const passwordFile = path.join(dataDir, 'bob-password');
    await writeFile(passwordFile, `${BOB_PASSWORD}\n`);
    const [ann, bob] = await Promise.all([
      users(['add', 'ann@example.com', '--role', 'admin'], `${ANN_PASSWORD}\n`),
      users(['add', 'bob@example.com', '--password-file', passwordFile]),
    ]);
    expect(ann).toEqual({ code: 0, stdout: 'added admin ann@example.com\n', stderr: '' });
    expect(bob).toEqual({ code: 0, stdout: 'added editor bob@example.com\n', stderr: '' });

    const [short, twice, none, role] = await Promise.all([
      users(['add', 'cat@example.com'], 'too short\n'),
      users(['add', 'ANN@example.com'], `${ANN_PASSWORD}\n`),
      users(['add', 'dan@example.com']),
      users(['add', 'eve@example.com', '--role', 'owner'], `${ANN_PASSWORD}\n`),
    ]);
    expect(short).toMatchObject({ code: 1, stdout: '', stderr: 'gazette: password: at least 12 characters (got 9)\n' });
    expect(twice.code).toBe(1);
    expect(twice.stderr).toMatch(/^gazette: ANN@example\.com already has an account/);
    expect(none).toMatchObject({ code: 1, stderr: 'gazette: password: none given on stdin (or use --password-file FILE)\n' });
    expect(role).toMatchObject({ code: 1, stderr: 'gazette: --role: expected one of editor, admin, got "owner"\n' });

    const [table, json] = await Promise.all([users(['list']), listed()]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^EMAIL\s+ROLE\s+CREATED \(UTC\)\s+LAST LOGIN \(UTC\)\n/);
    expect(table.stdout).toMatch(/\nann@example\.com\s+admin\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+never\n/);
    expect(table.stdout).toMatch(/\nbob@example\.com\s+editor\s+/);
    expect(table.stdout).toContain('\n2 users\n');
    expect(json.map((u) => [u.email, u.role, u.last_login_at])).toEqual([
      ['ann@example.com', 'admin', null],
      ['bob@example.com', 'editor', null],
    ]);
    expect(Object.keys(json[0]!).sort()).toEqual(['created_at', 'email', 'id', 'last_login_at', 'password_changed_at', 'role']);
    // The passwords went in as given, without the newline that ended them.
    expect((await inProcess().users.authenticate('bob@example.com', BOB_PASSWORD))?.email).toBe('bob@example.com');
    expect(await inProcess().users.authenticate('ann@example.com', `${ANN_PASSWORD}\n`)).toBeUndefined();
  }, SLOW);

  it('changes a role, and makes an API token shown once that then opens the API until it is revoked', async () => {
    const promoted = await users(['role', 'bob@example.com', 'admin']);
    expect(promoted).toEqual({ code: 0, stdout: 'bob@example.com is now an admin\n', stderr: '' });

    const made = await users(['token', 'bob@example.com', '--name', 'deploy script']);
    expect(made.code, made.stderr).toBe(0);
    expect(made.stdout).toMatch(/^gz_[A-Za-z0-9_-]{43}\n$/);
    const token = made.stdout.trim();
    expect(made.stderr).toMatch(/^API token (\d+) \("deploy script"\) for bob@example\.com: shown this once/);
    expect(made.stderr).toContain('`Authorization: Bearer TOKEN`');
    const owner = await inProcess().users.userForToken(token);
    expect(owner).toMatchObject({ email: 'bob@example.com', role: 'admin' });

    const [json, table, unknown] = await Promise.all([
      users(['tokens', 'bob@example.com', '--json']),
      users(['tokens', 'bob@example.com']),
      users(['revoke-token', 'bob@example.com', '999']),
    ]);
    const tokens = JSON.parse(json.stdout) as ListedToken[];
    expect(tokens).toHaveLength(1);
    expect(tokens[0]).toMatchObject({ name: 'deploy script', prefix: token.slice(0, 9) });
    // userForToken marked it used.
    expect(tokens[0]!.last_used_at).not.toBeNull();
    expect(table.stdout).toMatch(/^ID\s+NAME\s+PREFIX\s+CREATED \(UTC\)\s+LAST USED \(UTC\)\n/);
    expect(table.stdout).toContain(`deploy script`);
    expect(table.stdout).toContain(`${token.slice(0, 9)}…`);
    expect(table.stdout).not.toContain(token);
    expect(unknown).toMatchObject({ code: 1, stderr: 'gazette: bob@example.com has no API token 999\n' });

    const revoked = await users(['revoke-token', 'bob@example.com', String(tokens[0]!.id)]);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stdout).toContain(`revoked API token ${tokens[0]!.id} of bob@example.com`);
    expect(await inProcess().users.userForToken(token)).toBeUndefined();
  }, SLOW);

  it('resets a password: the new one signs in, the old one no longer does', async () => {
    const reset = await users(['reset-password', 'ann@example.com'], 'a brand new passphrase\n');
    expect(reset.code, reset.stderr).toBe(0);
    expect(reset.stdout).toContain('new password set for ann@example.com: every console session of theirs was ended');
    const app = inProcess();
    expect(await app.users.authenticate('ann@example.com', ANN_PASSWORD)).toBeUndefined();
    expect((await app.users.authenticate('ann@example.com', 'a brand new passphrase'))?.email).toBe('ann@example.com');
  }, SLOW);

  it('removes a user, but never the last admin', async () => {
    const removed = await users(['remove', 'bob@example.com']);
    expect(removed).toMatchObject({ code: 0, stdout: 'removed admin bob@example.com: their API tokens and console sessions are gone\n' });
    const [last, demoted] = await Promise.all([users(['remove', 'ann@example.com']), users(['role', 'ann@example.com', 'editor'])]);
    expect(last.code).toBe(1);
    expect(last.stderr).toMatch(/^gazette: ann@example\.com is the last admin: make another user an admin first/);
    expect(demoted.code).toBe(1);
    expect(demoted.stderr).toMatch(/^gazette: ann@example\.com is the last admin/);
    expect((await listed()).map((u) => [u.email, u.role])).toEqual([['ann@example.com', 'admin']]);
  }, SLOW);
});
