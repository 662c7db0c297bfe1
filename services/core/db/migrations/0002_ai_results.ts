import type { Kysely, Migration } from 'kysely';
import type { MigrationHelpers } from './index.js';

/** One AI result per instance, and the study-level roll-up the worklist sorts on. */
export const aiResults = ({ id }: MigrationHelpers): Migration => ({
  async up(db: Kysely<unknown>) {
    await id(db.schema.createTable('ai_results'))
      .addColumn('instance_id', 'bigint', (c) => c.notNull().unique().references('instances.id'))
      .addColumn('site_id', 'text', (c) => c.notNull())
      .addColumn('study_id', 'bigint', (c) => c.notNull().references('studies.id'))
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('model_name', 'text')
      .addColumn('model_version', 'text')
      .addColumn('backend', 'text')
      .addColumn('probability', 'real')
      .addColumn('raw_score', 'real')
      .addColumn('flag', 'text')
      .addColumn('boxes', 'text')
      .addColumn('heatmap_key', 'text')
      .addColumn('reason', 'text')
      .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(1))
      .addColumn('queued_at', 'bigint')
      .addColumn('started_at', 'bigint')
      .addColumn('decoded_at', 'bigint')
      .addColumn('inferred_at', 'bigint')
      .addColumn('stored_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('ai_results_study').on('ai_results').columns(['study_id']).execute();
    await db.schema.createIndex('ai_results_stored_at').on('ai_results').columns(['stored_at']).execute();

    await db.schema.alterTable('studies').addColumn('ai_state', 'text', (c) => c.notNull().defaultTo('pending')).execute();
    await db.schema.alterTable('studies').addColumn('ai_flag', 'text').execute();
    await db.schema.alterTable('studies').addColumn('ai_score', 'real').execute();
    await db.schema.createIndex('studies_worklist').on('studies').columns(['site_id', 'ai_state', 'priority', 'received_at']).execute();
  },
});
