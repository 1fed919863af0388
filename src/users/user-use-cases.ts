import { createHash, randomBytes } from 'node:crypto';
import { ConflictError, InputError, NotFoundError } from '../errors.ts';
import { ROLES, type ApiToken, type Role, type User } from '../model/user.ts';
import { canonicalTimeZone } from '../schedule/zone-time.ts';
import { parseEmailAddress } from '../subscribers/email-address.ts';
import { hashPassword, passwordMatches } from './passwords.ts';
import type { UserRecords } from './user-records.ts';

/** What the user use cases are built on. */
export interface UserUseCaseDeps {
  users: () => Promise<UserRecords>;
  now: () => Date;
}

/** A token just made: the secret itself is in `token`, shown this once. */
export interface NewApiToken extends ApiToken {
  token: string;
}

/** Console users and their API tokens: what `gazette users`, the console's users page and the API's gate do. */
export interface UserUseCases {
  /** Adds a user; ConflictError when the address has an account. */
  add(request: { email: unknown; password: string; role?: unknown }): Promise<User>;
  list(): Promise<User[]>;
  find(email: unknown): Promise<User>;
  findById(id: number): Promise<User | undefined>;
  /** Removes a user, their tokens and sessions; the last admin cannot be removed. */
  remove(email: unknown): Promise<User>;
  /** Sets a new password and signs the user out everywhere. */
  resetPassword(email: unknown, password: string): Promise<User>;
  setRole(email: unknown, role: unknown): Promise<User>;
  /** Sets the zone the console shows the user's times in; InputError for a zone that is not IANA's. */
  setTimeZone(id: number, zone: unknown): Promise<void>;
  /** The user whose address and password these are, else undefined (the same time either way). */
  authenticate(email: unknown, password: string): Promise<User | undefined>;
  /** A new API token for the user; its secret is returned this once. */
  createToken(email: unknown, name?: string): Promise<NewApiToken>;
  tokens(email: unknown): Promise<ApiToken[]>;
  revokeToken(email: unknown, tokenId: number): Promise<void>;
  /** The owner of a presented token, else undefined. */
  userForToken(token: string): Promise<User | undefined>;
}

/** How a token starts: a scanner (or a person) can tell it is Gazette's. */
export const TOKEN_PREFIX = 'gz_';

/** Builds the user use cases over their records. */
export function userUseCases(deps: UserUseCaseDeps): UserUseCases {
  const keyOf = (email: unknown): { address: string; key: string } => {
    const parsed = parseEmailAddress(email);
    if ('error' in parsed) throw new InputError(parsed.error);
    return parsed;
  };
  const find = async (email: unknown) => {
    const { address, key } = keyOf(email);
    const user = await (await deps.users()).findByKey(key);
    if (!user) throw new NotFoundError(`no user ${address}`);
    return user;
  };
  const withoutHash = ({ passwordHash: _hash, ...user }: User & { passwordHash?: string }): User => user;

  return {
    async add(request) {
      const { address, key } = keyOf(request.email);
      const role = roleOf(request.role ?? 'editor');
      const passwordHash = await hashPassword(request.password);
      const users = await deps.users();
      const id = await users.insert({ email: address, emailKey: key, role, passwordHash }, deps.now());
      if (id === undefined) throw new ConflictError(`${address} already has an account (reset its password with \`gazette users reset-password ${address}\`)`);
      return withoutHash((await users.findById(id))!);
    },
    async list() {
      return (await deps.users()).list();
    },
    async find(email) {
      return withoutHash(await find(email));
    },
    async findById(id) {
      const user = await (await deps.users()).findById(id);
      return user && withoutHash(user);
    },
    async remove(email) {
      const user = await find(email);
      const users = await deps.users();
      if (user.role === 'admin' && (await users.countAdmins()) <= 1) {
        throw new ConflictError(`${user.email} is the last admin: make another user an admin first, so somebody can still manage users`);
      }
      await users.remove(user.id);
      return withoutHash(user);
    },
    async resetPassword(email, password) {
      const user = await find(email);
      await (await deps.users()).setPassword(user.id, await hashPassword(password), deps.now());
      return withoutHash(user);
    },
    async setRole(email, role) {
      const user = await find(email);
      const next = roleOf(role);
      const users = await deps.users();
      if (user.role === 'admin' && next !== 'admin' && (await users.countAdmins()) <= 1) {
        throw new ConflictError(`${user.email} is the last admin: make another user an admin first`);
      }
      await users.setRole(user.id, next);
      return { ...withoutHash(user), role: next };
    },
    async setTimeZone(id, zone) {
      await (await deps.users()).setTimeZone(id, checkZone(zone));
    },
    async authenticate(email, password) {
      const parsed = parseEmailAddress(email);
      const stored = 'error' in parsed ? undefined : await (await deps.users()).findByKey(parsed.key);
      if (!(await passwordMatches(stored?.passwordHash, password)) || !stored) return undefined;
      await (await deps.users()).recordLogin(stored.id, deps.now());
      return withoutHash(stored);
    },
    async createToken(email, name = 'API token') {
      const user = await find(email);
      const label = name.trim();
      if (label === '' || label.length > 100 || /[\r\n]/.test(label)) throw new InputError('name: 1 to 100 characters on one line');
      const token = `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
      const made = await (await deps.users()).insertToken({ userId: user.id, name: label, tokenHash: tokenHash(token), prefix: token.slice(0, TOKEN_PREFIX.length + 6) }, deps.now());
      return { ...made, token };
    },
    async tokens(email) {
      const user = await find(email);
      return (await deps.users()).tokens(user.id);
    },
    async revokeToken(email, tokenId) {
      const user = await find(email);
      if (!(await (await deps.users()).removeToken(user.id, tokenId))) throw new NotFoundError(`${user.email} has no API token ${tokenId}`);
    },
    async userForToken(token) {
      if (!token.startsWith(TOKEN_PREFIX) || token.length > 200) return undefined;
      return (await deps.users()).userForToken(tokenHash(token), deps.now());
    },
  };
}

/** Tokens are 256 random bits: a plain SHA-256 of one is as good as a slow hash, and lets it be looked up. */
function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

function checkZone(zone: unknown): string {
  if (typeof zone !== 'string' || zone.length > 64) throw new InputError('time zone: expected an IANA time zone such as Europe/Kyiv');
  return canonicalTimeZone(zone);
}

function roleOf(role: unknown): Role {
  if (typeof role === 'string' && (ROLES as readonly string[]).includes(role)) return role as Role;
  throw new InputError(`role: expected one of ${ROLES.join(', ')}, got "${String(role).slice(0, 40)}"`);
}
