import type { Kysely, Migration } from 'kysely';
import type { MigrationHelpers } from './index.js';

/**
 * What a decision rests on and how it ended: the images the radiologist had on screen, the
 * measurements taken with it, and when it was undone. Plus an index for the worklist's clinical
 * order (priority first).
 */
export const reviewEvidence = (_helpers: MigrationHelpers): Migration => ({
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('reviews').addColumn('shown_instance_ids', 'text').execute();
    await db.schema.alterTable('reviews').addColumn('measurements', 'text').execute();
    await db.schema.alterTable('reviews').addColumn('undone_at', 'bigint').execute();
    await db.schema.createIndex('studies_worklist_priority').on('studies')
      .columns(['site_id', 'review_state', 'priority', 'received_at', 'id']).execute();
  },
});
