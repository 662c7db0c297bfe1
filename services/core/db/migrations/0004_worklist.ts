import type { Kysely, Migration } from 'kysely';
import type { MigrationHelpers } from './index.js';

/** Indexes the radiologist worklist, its search and the review export lean on. */
export const worklist = (_helpers: MigrationHelpers): Migration => ({
  async up(db: Kysely<unknown>) {
    await db.schema.createIndex('studies_worklist_order').on('studies')
      .columns(['site_id', 'review_state', 'ai_flag', 'priority', 'received_at', 'id']).execute();
    await db.schema.createIndex('studies_accession').on('studies').columns(['site_id', 'accession_number']).execute();
    await db.schema.createIndex('studies_patient_id').on('studies').columns(['site_id', 'patient_id']).execute();
    await db.schema.createIndex('studies_study_date').on('studies').columns(['site_id', 'study_date']).execute();
    await db.schema.createIndex('reviews_site_created').on('reviews').columns(['site_id', 'created_at']).execute();
  },
});
