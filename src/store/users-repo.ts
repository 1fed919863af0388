import type { Kysely, Selectable } from 'kysely';
import type { ApiToken, User } from '../model/user.ts';
import type { StoredUser, UserRecords } from '../users/user-records.ts';
import type { ApiTokensTable, Database, UsersTable } from './schema.ts';

/** Console users and their API tokens. */
export class UsersRepo implements UserRecords {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(user: { email: string; emailKey: string; role: User['role']; passwordHash: string }, now: Date): Promise<number | undefined> {
    const at = now.toISOString();
    const row = await this.db
      .insertInto('users')
      .values({ email: user.email, email_key: user.emailKey, role: user.role, password_hash: user.passwordHash, created_at: at, password_changed_at: at })
      .onConflict((oc) => oc.column('email_key').doNothing())
      .returning('id')
      .executeTakeFirst();
    return row ? Number(row.id) : undefined;
  }

  async findByKey(emailKey: string): Promise<StoredUser | undefined> {
    const row = await this.db.selectFrom('users').selectAll().where('email_key', '=', emailKey).executeTakeFirst();
    return row && storedUserOf(row);
  }

  async findById(id: number): Promise<StoredUser | undefined> {
    const row = await this.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
    return row && storedUserOf(row);
  }

  async list(): Promise<User[]> {
    const rows = await this.db.selectFrom('users').selectAll().orderBy('email_key').execute();
    return rows.map((row) => userOf(row));
  }

  async countAdmins(): Promise<number> {
    const row = await this.db.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('n')).where('role', '=', 'admin').executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async remove(id: number): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      // Spelled out rather than left to ON DELETE CASCADE: a session must end even where foreign keys are off.
      await trx.deleteFrom('console_sessions').where('user_id', '=', id).execute();
      await trx.deleteFrom('api_tokens').where('user_id', '=', id).execute();
      const result = await trx.deleteFrom('users').where('id', '=', id).executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    });
  }

  async setPassword(id: number, passwordHash: string, now: Date): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx.updateTable('users').set({ password_hash: passwordHash, password_changed_at: now.toISOString() }).where('id', '=', id).execute();
      await trx.deleteFrom('console_sessions').where('user_id', '=', id).execute();
    });
  }

  async setRole(id: number, role: User['role']): Promise<void> {
    await this.db.updateTable('users').set({ role }).where('id', '=', id).execute();
  }

  async setTimeZone(id: number, zone: string): Promise<void> {
    await this.db.updateTable('users').set({ time_zone: zone }).where('id', '=', id).execute();
  }

  async recordLogin(id: number, now: Date): Promise<void> {
    await this.db.updateTable('users').set({ last_login_at: now.toISOString() }).where('id', '=', id).execute();
  }

  async insertToken(token: { userId: number; name: string; tokenHash: string; prefix: string }, now: Date): Promise<ApiToken> {
    const row = await this.db
      .insertInto('api_tokens')
      .values({ user_id: token.userId, name: token.name, token_hash: token.tokenHash, prefix: token.prefix, created_at: now.toISOString() })
      .returningAll()
      .executeTakeFirstOrThrow();
    return tokenOf(row);
  }

  async tokens(userId: number): Promise<ApiToken[]> {
    const rows = await this.db.selectFrom('api_tokens').selectAll().where('user_id', '=', userId).orderBy('id').execute();
    return rows.map(tokenOf);
  }

  async userForToken(tokenHash: string, now: Date): Promise<User | undefined> {
    const row = await this.db
      .selectFrom('api_tokens as t')
      .innerJoin('users as u', 'u.id', 't.user_id')
      .selectAll('u')
      .select('t.id as token_id')
      .where('t.token_hash', '=', tokenHash)
      .executeTakeFirst();
    if (!row) return undefined;
    await this.db.updateTable('api_tokens').set({ last_used_at: now.toISOString() }).where('id', '=', row.token_id).execute();
    return userOf(row);
  }

  async removeToken(userId: number, tokenId: number): Promise<boolean> {
    const result = await this.db.deleteFrom('api_tokens').where('id', '=', tokenId).where('user_id', '=', userId).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }
}

function userOf(row: Selectable<UsersTable>): User {
  return {
    id: Number(row.id),
    email: row.email,
    role: row.role,
    createdAt: row.created_at,
    passwordChangedAt: row.password_changed_at,
    lastLoginAt: row.last_login_at,
    timeZone: row.time_zone ?? undefined,
  };
}

function storedUserOf(row: Selectable<UsersTable>): StoredUser {
  return { ...userOf(row), passwordHash: row.password_hash };
}

function tokenOf(row: Selectable<ApiTokensTable>): ApiToken {
  return { id: Number(row.id), userId: Number(row.user_id), name: row.name, prefix: row.prefix, createdAt: row.created_at, lastUsedAt: row.last_used_at };
}
