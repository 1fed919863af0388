import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { InputError } from '../../errors.ts';
import { ROLES, type ApiToken, type Role, type User } from '../../model/user.ts';
import { checkPassword } from '../../users/passwords.ts';
import type { AppFactory } from '../main.ts';
import { runWithApp } from '../with-app.ts';

const PASSWORD_FILE_HELP = 'read the password from this file (one trailing newline is dropped); without it, from stdin';

/** `gazette users add | list | remove | reset-password | role | token | tokens | revoke-token`: console users and their API tokens. */
export function registerUsers(program: Command, makeApp: AppFactory): void {
  const users = program.command('users').description('add, list and remove console users, set their passwords and roles, and manage their API tokens');

  users
    .command('add')
    .description('add a console user; the password comes from --password-file, else stdin (a prompt on a terminal)')
    .argument('<email>', 'their address, which they sign in with')
    .option('--role <role>', `${ROLES.join(' or ')} (default: editor)`)
    .option('--password-file <file>', PASSWORD_FILE_HELP)
    .action(async (email: string, flags: { role?: string; passwordFile?: string }) => {
      // Checked before the password is asked for, so nobody types one in for a command that fails anyway.
      const role = checkRole(flags.role ?? 'editor');
      const password = await readPassword(flags.passwordFile);
      await runWithApp(makeApp, async (app) => {
        const user = await app.users.add({ email, password, role });
        process.stdout.write(`added ${user.role} ${user.email}\n`);
      });
    });

  users
    .command('list')
    .description('list console users, oldest first')
    .option('--json', 'a JSON array (stable field names, for scripts)')
    .action((flags: { json?: boolean }) =>
      runWithApp(makeApp, async (app) => {
        const all = await app.users.list();
        if (all.length === 0) process.stderr.write('no users yet: add the first admin with `gazette users add EMAIL --role admin`\n');
        if (flags.json) process.stdout.write(`${JSON.stringify(all.map(userJson), null, 2)}\n`);
        else if (all.length > 0) process.stdout.write(userTable(all));
      }),
    );

  users
    .command('remove')
    .description('remove a user with their API tokens and sessions (the last admin cannot be removed)')
    .argument('<email>', 'the address')
    .action((email: string) =>
      runWithApp(makeApp, async (app) => {
        const user = await app.users.remove(email);
        process.stdout.write(`removed ${user.role} ${user.email}: their API tokens and console sessions are gone\n`);
      }),
    );

  users
    .command('reset-password')
    .description('set a new password (from --password-file, else stdin) and end every console session of the user')
    .argument('<email>', 'the address')
    .option('--password-file <file>', PASSWORD_FILE_HELP)
    .action(async (email: string, flags: { passwordFile?: string }) => {
      const password = await readPassword(flags.passwordFile);
      await runWithApp(makeApp, async (app) => {
        const user = await app.users.resetPassword(email, password);
        process.stdout.write(
          `new password set for ${user.email}: every console session of theirs was ended; ` +
            `their API tokens still work (\`gazette users tokens ${user.email}\` lists them)\n`,
        );
      });
    });

  users
    .command('role')
    .description(`make a user an ${ROLES.join(' or an ')} (the last admin stays one)`)
    .argument('<email>', 'the address')
    .argument('<role>', ROLES.join(' or '))
    .action((email: string, role: string) =>
      runWithApp(makeApp, async (app) => {
        const user = await app.users.setRole(email, role);
        process.stdout.write(`${user.email} is now ${user.role === 'admin' ? 'an admin' : 'an editor'}\n`);
      }),
    );

  users
    .command('token')
    .description('make an API token for the user: printed alone on stdout, this once')
    .argument('<email>', 'the address')
    .option('--name <name>', 'what it is for, to tell tokens apart (default: "API token")')
    .action((email: string, flags: { name?: string }) =>
      runWithApp(makeApp, async (app) => {
        const user = await app.users.find(email);
        const made = await app.users.createToken(user.email, flags.name);
        // The token alone on stdout, so `TOKEN=$(gazette users token EMAIL)` captures it; the advice goes to stderr.
        process.stdout.write(`${made.token}\n`);
        process.stderr.write(
          `API token ${made.id} ("${printable(made.name)}") for ${user.email}: shown this once, so keep it now. ` +
            `Send it as \`Authorization: Bearer TOKEN\`; \`gazette users revoke-token ${user.email} ${made.id}\` revokes it\n`,
        );
      }),
    );

  users
    .command('tokens')
    .description("list a user's API tokens (never the tokens themselves)")
    .argument('<email>', 'the address')
    .option('--json', 'a JSON array (stable field names, for scripts)')
    .action((email: string, flags: { json?: boolean }) =>
      runWithApp(makeApp, async (app) => {
        const user = await app.users.find(email);
        const tokens = await app.users.tokens(user.email);
        if (tokens.length === 0) process.stderr.write(`${user.email} has no API tokens: make one with \`gazette users token ${user.email}\`\n`);
        if (flags.json) process.stdout.write(`${JSON.stringify(tokens.map(tokenJson), null, 2)}\n`);
        else if (tokens.length > 0) process.stdout.write(tokenTable(tokens));
      }),
    );

  users
    .command('revoke-token')
    .description("revoke one of a user's API tokens: calls with it are refused from then on")
    .argument('<email>', 'the address')
    .argument('<id>', 'the token id (`gazette users tokens EMAIL` shows it)')
    .action((email: string, id: string) =>
      runWithApp(makeApp, async (app) => {
        const tokenId = tokenIdOf(id);
        const user = await app.users.find(email);
        await app.users.revokeToken(user.email, tokenId);
        process.stdout.write(`revoked API token ${tokenId} of ${user.email}: calls with it are refused from now on\n`);
      }),
    );
}

function checkRole(value: string): Role {
  if (!ROLES.includes(value as Role)) throw new InputError(`--role: expected one of ${ROLES.join(', ')}, got "${value.slice(0, 40)}"`);
  return value as Role;
}

function tokenIdOf(value: string): number {
  if (!/^[1-9][0-9]{0,14}$/.test(value)) throw new InputError(`id: expected a token id (a positive whole number), got "${value.slice(0, 40)}"`);
  return Number(value);
}

/**
 * The password from `file`, else from stdin: typed at a prompt, unechoed and twice, on a terminal; the whole of it when piped.
 * A password is never an argument, where `ps` and the shell history would show it.
 */
async function readPassword(file: string | undefined): Promise<string> {
  if (file !== undefined) {
    const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
      throw new InputError(`--password-file: ${file}: ${error.code === 'ENOENT' ? 'no such file' : error.message}`);
    });
    return checkPassword(withoutNewline(text));
  }
  if (process.stdin.isTTY) {
    const password = checkPassword(await promptHidden('Password: '));
    // Nobody sees what they typed: a second entry catches the typo that would lock them out.
    if ((await promptHidden('Password again: ')) !== password) throw new InputError('password: the two entries differ (nothing was changed)');
    return password;
  }
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const piped = withoutNewline(Buffer.concat(chunks).toString('utf8'));
  if (piped === '') throw new InputError('password: none given on stdin (or use --password-file FILE)');
  return checkPassword(piped);
}

// `echo secret > file` and `echo secret | gazette …` add a newline nobody means as part of the password.
function withoutNewline(text: string): string {
  return text.replace(/\r?\n$/, '');
}

/** Reads one line from the terminal with echo off, writing `prompt` to stderr so stdout stays clean. */
function promptHidden(prompt: string): Promise<string> {
  const input = process.stdin;
  process.stderr.write(prompt);
  input.setRawMode(true);
  input.setEncoding('utf8');
  input.resume();
  return new Promise((resolve, reject) => {
    let typed = '';
    const finish = (error?: InputError) => {
      input.off('data', onData);
      input.setRawMode(false);
      input.pause();
      process.stderr.write('\n');
      if (error) reject(error);
      else resolve(typed);
    };
    const onData = (chunk: string) => {
      // An arrow or function key arrives as one escape sequence: it is no part of a password.
      if (chunk.startsWith('\u001b')) return;
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return finish();
        // Raw mode turns Ctrl-C into a character rather than SIGINT: honour it by hand.
        if (ch === '\u0003') return finish(new InputError('password: cancelled'));
        if (ch === '\u007f' || ch === '\b') typed = [...typed].slice(0, -1).join('');
        else if (ch >= ' ') typed += ch;
      }
    };
    input.on('data', onData);
  });
}

function userJson(u: User) {
  return { id: u.id, email: u.email, role: u.role, created_at: u.createdAt, password_changed_at: u.passwordChangedAt, last_login_at: u.lastLoginAt };
}

function tokenJson(t: ApiToken) {
  return { id: t.id, name: t.name, prefix: t.prefix, created_at: t.createdAt, last_used_at: t.lastUsedAt };
}

function userTable(users: User[]): string {
  const head = `${'EMAIL'.padEnd(36)} ${'ROLE'.padEnd(7)} ${'CREATED (UTC)'.padEnd(17)} LAST LOGIN (UTC)\n`;
  const rows = users.map((u) => `${u.email.padEnd(36)} ${u.role.padEnd(7)} ${minute(u.createdAt).padEnd(17)} ${minute(u.lastLoginAt)}\n`);
  return `${head}${rows.join('')}${users.length} user${users.length === 1 ? '' : 's'}\n`;
}

function tokenTable(tokens: ApiToken[]): string {
  const head = `${'ID'.padEnd(5)} ${'NAME'.padEnd(30)} ${'PREFIX'.padEnd(11)} ${'CREATED (UTC)'.padEnd(17)} LAST USED (UTC)\n`;
  const rows = tokens.map(
    (t) => `${String(t.id).padEnd(5)} ${printable(t.name).padEnd(30)} ${`${t.prefix}…`.padEnd(11)} ${minute(t.createdAt).padEnd(17)} ${minute(t.lastUsedAt)}\n`,
  );
  return `${head}${rows.join('')}`;
}

/** `2026-01-02T08:00:00.000Z` as `2026-01-02 08:00`; never used, `never`. */
function minute(iso: string | null): string {
  return iso === null ? 'never' : iso.slice(0, 16).replace('T', ' ');
}

// Token names can be typed in the console: control characters must not reach the operator's terminal.
function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}
