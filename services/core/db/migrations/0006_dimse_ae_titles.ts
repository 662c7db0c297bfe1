import type { Kysely, Migration } from 'kysely';
import type { MigrationHelpers } from './index.js';

/**
 * DICOM senders allowed to C-STORE to us: each calling AE title belongs to one site (the way a
 * site's API key does for STOW-RS); an optional host pins it to one peer address.
 */
export const dimseAeTitles = (_helpers: MigrationHelpers): Migration => ({
  async up(db: Kysely<unknown>) {
    await db.schema.createTable('ae_titles')
      .addColumn('ae_title', 'text', (c) => c.primaryKey())
      .addColumn('site_id', 'text', (c) => c.notNull().references('sites.id'))
      .addColumn('host', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
  },
});
