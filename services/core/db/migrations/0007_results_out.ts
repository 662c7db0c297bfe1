import type { Kysely, Migration } from 'kysely';
import type { MigrationHelpers } from './index.js';

/**
 * Results going back to the hospital (issue 13): where each site wants them (DICOMweb STOW-RS,
 * DIMSE C-STORE, webhook), each version of a study's AI output (SR + Secondary Captures), and one
 * delivery per version and destination with its state, attempts and last error.
 */
export const resultsOut = ({ id }: MigrationHelpers): Migration => ({
  async up(db: Kysely<unknown>) {
    await id(db.schema.createTable('result_destinations'))
      .addColumn('site_id', 'text', (c) => c.notNull().references('sites.id'))
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('url', 'text')
      .addColumn('headers', 'text')
      .addColumn('ae_title', 'text')
      .addColumn('host', 'text')
      .addColumn('port', 'integer')
      .addColumn('secret', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addUniqueConstraint('result_destinations_site_name', ['site_id', 'name'])
      .execute();

    await id(db.schema.createTable('result_versions'))
      .addColumn('site_id', 'text', (c) => c.notNull())
      .addColumn('study_id', 'bigint', (c) => c.notNull().references('studies.id'))
      .addColumn('version', 'integer', (c) => c.notNull())
      .addColumn('content_hash', 'text', (c) => c.notNull())
      .addColumn('sr_sop_uid', 'text', (c) => c.notNull())
      .addColumn('sr_series_uid', 'text', (c) => c.notNull())
      .addColumn('objects', 'text', (c) => c.notNull())
      .addColumn('summary', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addUniqueConstraint('result_versions_study_version', ['study_id', 'version'])
      .addUniqueConstraint('result_versions_study_content', ['study_id', 'content_hash'])
      .execute();

    await id(db.schema.createTable('result_deliveries'))
      .addColumn('site_id', 'text', (c) => c.notNull())
      .addColumn('version_id', 'bigint', (c) => c.notNull().references('result_versions.id'))
      .addColumn('destination_id', 'bigint', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('generation', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('last_error', 'text')
      .addColumn('queued_at', 'bigint', (c) => c.notNull())
      .addColumn('sent_at', 'bigint')
      .addColumn('latency_ms', 'integer')
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addUniqueConstraint('result_deliveries_version_destination', ['version_id', 'destination_id'])
      .execute();
    await db.schema.createIndex('result_deliveries_status').on('result_deliveries').columns(['status', 'updated_at']).execute();
  },
});
