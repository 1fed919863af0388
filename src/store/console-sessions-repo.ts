import type { Kysely } from 'kysely';
import type { SessionRecords } from '../console/session-store.ts';
import type { Database } from './schema.ts';

/** Console sessions in the database, so every server process knows them and a logout ends one everywhere. */
export class ConsoleSessionsRepo implements SessionRecords {
  constructor(private readonly db: Kysely<Database>) {}

  async save(idHash: string, userId: number | null, data: string, expiresAt: Date): Promise<void> {
    const values = { id_hash: idHash, user_id: userId, data, expires_at: expiresAt.toISOString() };
    await this.db
      .insertInto('console_sessions')
      .values(values)
      .onConflict((oc) => oc.column('id_hash').doUpdateSet({ user_id: userId, data, expires_at: values.expires_at }))
      .execute();
  }

  async load(idHash: string, now: Date): Promise<string | undefined> {
    const row = await this.db
      .selectFrom('console_sessions')
      .select('data')
      .where('id_hash', '=', idHash)
      .where('expires_at', '>', now.toISOString())
      .executeTakeFirst();
    return row?.data;
  }

  async destroy(idHash: string): Promise<void> {
    await this.db.deleteFrom('console_sessions').where('id_hash', '=', idHash).execute();
  }

  async prune(now: Date): Promise<number> {
    const result = await this.db.deleteFrom('console_sessions').where('expires_at', '<=', now.toISOString()).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
