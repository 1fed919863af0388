import { sql, type Kysely, type Migration } from 'kysely';
import type { Dialect } from './database.ts';

// Migrations take `db: Kysely<unknown>`: they describe the schema as it was at their time.
type Db = Kysely<unknown>;

/** The schema's history, oldest first; names sort in order. */
export function migrations(dialect: Dialect): Record<string, Migration> {
  const id = (db: Db, table: string) =>
    db.schema
      .createTable(table)
      .ifNotExists()
      .addColumn('id', 'integer', (col) =>
        dialect === 'postgres' ? col.primaryKey().generatedAlwaysAsIdentity() : col.primaryKey().autoIncrement(),
      );
  return {
    '0001_subscribers': {
      async up(db: Db) {
        await id(db, 'subscribers')
          .addColumn('email', 'text', (col) => col.notNull())
          .addColumn('email_key', 'text', (col) => col.notNull().unique())
          .addColumn('name', 'text')
          .addColumn('status', 'text', (col) => col.notNull())
          .addColumn('source', 'text', (col) => col.notNull())
          .addColumn('consent_ip', 'text')
          .addColumn('created_at', 'text', (col) => col.notNull())
          .addColumn('updated_at', 'text', (col) => col.notNull())
          .addColumn('confirmed_at', 'text')
          .addColumn('unsubscribed_at', 'text')
          .addColumn('confirmation_sent_at', 'text')
          .execute();
        await db.schema.createIndex('subscribers_status').ifNotExists().on('subscribers').columns(['status', 'id']).execute();
        await db.schema
          .createTable('subscriptions')
          .ifNotExists()
          .addColumn('subscriber_id', 'integer', (col) => col.notNull().references('subscribers.id').onDelete('cascade'))
          .addColumn('list_slug', 'text', (col) => col.notNull())
          .addColumn('frequency', 'text', (col) => col.notNull())
          .addColumn('created_at', 'text', (col) => col.notNull())
          .addPrimaryKeyConstraint('subscriptions_pk', ['subscriber_id', 'list_slug'])
          .execute();
        await db.schema
          .createIndex('subscriptions_list')
          .ifNotExists()
          .on('subscriptions')
          .columns(['list_slug', 'subscriber_id'])
          .execute();
        await db.schema
          .createTable('suppressions')
          .ifNotExists()
          .addColumn('email_key', 'text', (col) => col.primaryKey())
          .addColumn('reason', 'text', (col) => col.notNull())
          .addColumn('detail', 'text')
          .addColumn('created_at', 'text', (col) => col.notNull())
          .execute();
      },
      async down(db: Db) {
        await db.schema.dropTable('suppressions').ifExists().execute();
        await db.schema.dropTable('subscriptions').ifExists().execute();
        await db.schema.dropTable('subscribers').ifExists().execute();
        void sql;
      },
    },
    '0002_editions_deliveries_queue': {
      async up(db: Db) {
        await id(db, 'editions')
          .addColumn('list_slug', 'text', (col) => col.notNull())
          .addColumn('kind', 'text', (col) => col.notNull())
          .addColumn('audience', 'text', (col) => col.notNull())
          .addColumn('subject', 'text', (col) => col.notNull())
          .addColumn('preheader', 'text', (col) => col.notNull())
          .addColumn('story_slugs', 'text', (col) => col.notNull())
          .addColumn('compiled', 'text', (col) => col.notNull())
          .addColumn('html_bytes', 'integer', (col) => col.notNull())
          .addColumn('covers_until', 'text', (col) => col.notNull())
          .addColumn('status', 'text', (col) => col.notNull())
          .addColumn('last_error', 'text')
          .addColumn('created_at', 'text', (col) => col.notNull())
          .addColumn('enqueued_at', 'text')
          .addColumn('completed_at', 'text')
          .addColumn('schedule_id', 'integer')
          .execute();
        await db.schema.createIndex('editions_list').ifNotExists().on('editions').columns(['list_slug', 'status', 'id']).execute();
        await id(db, 'deliveries')
          .addColumn('edition_id', 'integer', (col) => col.notNull().references('editions.id'))
          .addColumn('subscriber_id', 'integer', (col) => col.notNull())
          .addColumn('status', 'text', (col) => col.notNull())
          .addColumn('attempts', 'integer', (col) => col.notNull().defaultTo(0))
          .addColumn('last_error', 'text')
          .addColumn('created_at', 'text', (col) => col.notNull())
          .addColumn('updated_at', 'text', (col) => col.notNull())
          .addColumn('sent_at', 'text')
          .addUniqueConstraint('deliveries_edition_subscriber', ['edition_id', 'subscriber_id'])
          .execute();
        await db.schema.createIndex('deliveries_status').ifNotExists().on('deliveries').columns(['edition_id', 'status']).execute();
        await db.schema
          .createTable('queue_jobs')
          .ifNotExists()
          .addColumn('id', dialect === 'postgres' ? 'bigint' : 'integer', (col) => col.primaryKey())
          .addColumn('group_id', 'integer', (col) => col.notNull())
          .addColumn('available_at', 'bigint', (col) => col.notNull())
          .addColumn('lease_until', 'bigint')
          .addColumn('attempts', 'integer', (col) => col.notNull().defaultTo(0))
          .execute();
        await db.schema.createIndex('queue_jobs_available').ifNotExists().on('queue_jobs').columns(['available_at']).execute();
      },
      async down(db: Db) {
        await db.schema.dropTable('queue_jobs').ifExists().execute();
        await db.schema.dropTable('deliveries').ifExists().execute();
        await db.schema.dropTable('editions').ifExists().execute();
      },
    },
    '0003_schedules': {
      async up(db: Db) {
        await id(db, 'schedules')
          .addColumn('kind', 'text', (col) => col.notNull())
          .addColumn('list_slug', 'text', (col) => col.notNull())
          .addColumn('edition_id', 'integer')
          .addColumn('at', 'text')
          .addColumn('cron', 'text')
          .addColumn('timezone', 'text')
          .addColumn('audience', 'text', (col) => col.notNull())
          .addColumn('status', 'text', (col) => col.notNull())
          .addColumn('created_at', 'text', (col) => col.notNull())
          .addColumn('updated_at', 'text', (col) => col.notNull())
          .execute();
        await db.schema.createIndex('schedules_status').ifNotExists().on('schedules').columns(['status', 'id']).execute();
        await id(db, 'schedule_fires')
          .addColumn('schedule_id', 'integer', (col) => col.notNull().references('schedules.id'))
          .addColumn('fire_at', 'text', (col) => col.notNull())
          .addColumn('status', 'text', (col) => col.notNull())
          .addColumn('edition_id', 'integer')
          .addColumn('detail', 'text')
          .addColumn('created_at', 'text', (col) => col.notNull())
          .addColumn('updated_at', 'text', (col) => col.notNull())
          .addUniqueConstraint('schedule_fires_schedule_fire_at', ['schedule_id', 'fire_at'])
          .execute();
        await db.schema.createIndex('schedule_fires_status').ifNotExists().on('schedule_fires').columns(['status', 'created_at']).execute();
        await db.schema
          .createTable('schedule_published')
          .ifNotExists()
          .addColumn('schedule_id', 'integer', (col) => col.notNull().references('schedules.id'))
          .addColumn('story_slug', 'text', (col) => col.notNull())
          .addColumn('edition_id', 'integer')
          .addColumn('created_at', 'text', (col) => col.notNull())
          .addPrimaryKeyConstraint('schedule_published_pk', ['schedule_id', 'story_slug'])
          .execute();
      },
      async down(db: Db) {
        await db.schema.dropTable('schedule_published').ifExists().execute();
        await db.schema.dropTable('schedule_fires').ifExists().execute();
        await db.schema.dropTable('schedules').ifExists().execute();
      },
    },
    '0004_fenced_ledger_notices': {
      async up(db: Db) {
        // SQLite takes one column per ALTER TABLE.
        const addColumns = async (table: string, columns: [string, 'text' | 'integer' | 'bigint'][]) => {
          for (const [name, type] of columns) await db.schema.alterTable(table).addColumn(name, type).execute();
        };
        await addColumns('queue_jobs', [['lease_token', 'text']]);
        await db.schema
          .createTable('queue_holds')
          .ifNotExists()
          .addColumn('group_id', 'integer', (col) => col.primaryKey())
          .addColumn('created_at', 'text', (col) => col.notNull())
          .execute();
        await addColumns('deliveries', [
          ['claim_token', 'text'],
          ['claim_until', 'bigint'],
        ]);
        await addColumns('suppressions', [['delivery_id', 'integer']]);
        await addColumns('editions', [
          ['pause_kind', 'text'],
          ['resume_at', 'text'],
          ['outage_pauses', 'integer'],
          ['origin', 'text'],
          ['audience_closed_at', 'text'],
        ]);
        await addColumns('schedule_fires', [['lease_until', 'text']]);
        await id(db, 'notices')
          .addColumn('kind', 'text', (col) => col.notNull())
          .addColumn('subscriber_id', 'integer')
          .addColumn('email', 'text', (col) => col.notNull())
          .addColumn('mailbox_key', 'text', (col) => col.notNull())
          .addColumn('ip', 'text')
          .addColumn('envelope_from', 'text', (col) => col.notNull())
          .addColumn('message_key', 'text', (col) => col.notNull())
          .addColumn('raw', 'text', (col) => col.notNull())
          .addColumn('status', 'text', (col) => col.notNull())
          .addColumn('attempts', 'integer', (col) => col.notNull().defaultTo(0))
          .addColumn('last_error', 'text')
          .addColumn('available_at', 'bigint', (col) => col.notNull())
          .addColumn('claim_token', 'text')
          .addColumn('claim_until', 'bigint')
          .addColumn('created_at', 'text', (col) => col.notNull())
          .addColumn('sent_at', 'text')
          .execute();
        await db.schema.createIndex('notices_due').ifNotExists().on('notices').columns(['status', 'available_at']).execute();
        await db.schema.createIndex('notices_mailbox').ifNotExists().on('notices').columns(['mailbox_key', 'created_at']).execute();
        await db.schema.createIndex('notices_ip').ifNotExists().on('notices').columns(['ip', 'created_at']).execute();
      },
      async down(db: Db) {
        await db.schema.dropTable('notices').ifExists().execute();
        await db.schema.dropTable('queue_holds').ifExists().execute();
      },
    },
    '0005_fire_retries': {
      async up(db: Db) {
        await db.schema.alterTable('schedule_fires').addColumn('attempts', 'integer').execute();
        await db.schema.alterTable('schedule_fires').addColumn('next_attempt_at', 'text').execute();
        await db.schema.createIndex('schedule_fires_retrying').ifNotExists().on('schedule_fires').columns(['status', 'next_attempt_at']).execute();
      },
      async down(db: Db) {
        await db.schema.dropIndex('schedule_fires_retrying').ifExists().execute();
      },
    },
    '0006_story_publications': {
      async up(db: Db) {
        await db.schema
          .createTable('story_publications')
          .ifNotExists()
          .addColumn('story_slug', 'text', (col) => col.primaryKey())
          .addColumn('draft_seen_at', 'text')
          .addColumn('published_seen_at', 'text')
          .execute();
      },
      async down(db: Db) {
        await db.schema.dropTable('story_publications').ifExists().execute();
      },
    },
    '0007_subscriber_events': {
      async up(db: Db) {
        await id(db, 'subscriber_events')
          .addColumn('subscriber_id', 'integer', (col) => col.notNull().references('subscribers.id').onDelete('cascade'))
          .addColumn('type', 'text', (col) => col.notNull())
          .addColumn('source', 'text', (col) => col.notNull())
          .addColumn('action', 'text', (col) => col.notNull())
          .addColumn('delivery_id', 'integer')
          .addColumn('edition_id', 'integer')
          .addColumn('list_slug', 'text')
          .addColumn('status', 'text')
          .addColumn('diagnostic', 'text')
          .addColumn('report_id', 'text', (col) => col.notNull())
          .addColumn('dedupe_key', 'text', (col) => col.notNull().unique())
          .addColumn('occurred_at', 'text', (col) => col.notNull())
          .addColumn('created_at', 'text', (col) => col.notNull())
          .execute();
        await db.schema.createIndex('subscriber_events_subscriber').ifNotExists().on('subscriber_events').columns(['subscriber_id', 'id']).execute();
        await db.schema.createIndex('subscriber_events_edition').ifNotExists().on('subscriber_events').columns(['edition_id', 'type']).execute();
        await db.schema.createIndex('deliveries_subscriber').ifNotExists().on('deliveries').columns(['subscriber_id', 'id']).execute();
      },
      async down(db: Db) {
        await db.schema.dropIndex('deliveries_subscriber').ifExists().execute();
        await db.schema.dropTable('subscriber_events').ifExists().execute();
      },
    },
    '0008_console_users': {
      async up(db: Db) {
        await id(db, 'users')
          .addColumn('email', 'text', (col) => col.notNull())
          .addColumn('email_key', 'text', (col) => col.notNull().unique())
          .addColumn('role', 'text', (col) => col.notNull())
          .addColumn('password_hash', 'text', (col) => col.notNull())
          .addColumn('created_at', 'text', (col) => col.notNull())
          .addColumn('password_changed_at', 'text', (col) => col.notNull())
          .addColumn('last_login_at', 'text')
          .addColumn('time_zone', 'text')
          .execute();
        await id(db, 'api_tokens')
          .addColumn('user_id', 'integer', (col) => col.notNull().references('users.id').onDelete('cascade'))
          .addColumn('name', 'text', (col) => col.notNull())
          .addColumn('token_hash', 'text', (col) => col.notNull().unique())
          .addColumn('prefix', 'text', (col) => col.notNull())
          .addColumn('created_at', 'text', (col) => col.notNull())
          .addColumn('last_used_at', 'text')
          .execute();
        await db.schema
          .createTable('console_sessions')
          .ifNotExists()
          .addColumn('id_hash', 'text', (col) => col.primaryKey())
          .addColumn('user_id', 'integer', (col) => col.references('users.id').onDelete('cascade'))
          .addColumn('data', 'text', (col) => col.notNull())
          .addColumn('expires_at', 'text', (col) => col.notNull())
          .execute();
        await db.schema.createIndex('console_sessions_expiry').ifNotExists().on('console_sessions').column('expires_at').execute();
      },
      async down(db: Db) {
        await db.schema.dropTable('console_sessions').ifExists().execute();
        await db.schema.dropTable('api_tokens').ifExists().execute();
        await db.schema.dropTable('users').ifExists().execute();
      },
    },
  };
}
