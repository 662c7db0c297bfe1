import type { Kysely, Migration } from 'kysely';
import type { MigrationHelpers } from './index.js';

/** People (radiologists, admins), the sites they may see, their sessions, and their reviews. */
export const access = ({ id }: MigrationHelpers): Migration => ({
  async up(db: Kysely<unknown>) {
    await id(db.schema.createTable('users'))
      .addColumn('username', 'text', (c) => c.notNull().unique())
      .addColumn('display_name', 'text', (c) => c.notNull())
      .addColumn('password_hash', 'text', (c) => c.notNull())
      .addColumn('role', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('disabled_at', 'bigint')
      .execute();

    await db.schema.createTable('user_sites')
      .addColumn('user_id', 'bigint', (c) => c.notNull().references('users.id'))
      .addColumn('site_id', 'text', (c) => c.notNull().references('sites.id'))
      .addPrimaryKeyConstraint('user_sites_pk', ['user_id', 'site_id'])
      .execute();

    await db.schema.createTable('sessions')
      .addColumn('id_hash', 'text', (c) => c.primaryKey())
      .addColumn('user_id', 'bigint', (c) => c.notNull().references('users.id'))
      .addColumn('csrf_token', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .addColumn('last_seen_at', 'bigint', (c) => c.notNull())
      .execute();

    await id(db.schema.createTable('reviews'))
      .addColumn('study_id', 'bigint', (c) => c.notNull().references('studies.id'))
      .addColumn('site_id', 'text', (c) => c.notNull())
      .addColumn('user_id', 'bigint', (c) => c.notNull().references('users.id'))
      .addColumn('decision', 'text', (c) => c.notNull())
      .addColumn('comment', 'text')
      .addColumn('boxes', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('superseded_at', 'bigint')
      .execute();
    await db.schema.createIndex('reviews_study').on('reviews').columns(['study_id', 'superseded_at']).execute();

    await db.schema.alterTable('studies').addColumn('review_state', 'text', (c) => c.notNull().defaultTo('unreviewed')).execute();
  },
});
