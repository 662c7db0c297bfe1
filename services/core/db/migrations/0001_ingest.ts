import type { Kysely, Migration } from 'kysely';
import type { MigrationHelpers } from './index.js';

/** Sites, API keys, the study → series → instance record, and the audit log. */
export const ingest = ({ id }: MigrationHelpers): Migration => ({
  async up(db: Kysely<unknown>) {
    await db.schema.createTable('sites')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();

    await db.schema.createTable('api_keys')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('site_id', 'text', (c) => c.notNull().references('sites.id'))
      .addColumn('label', 'text', (c) => c.notNull())
      .addColumn('key_hash', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('revoked_at', 'bigint')
      .addColumn('last_used_at', 'bigint')
      .execute();

    await id(db.schema.createTable('studies'))
      .addColumn('site_id', 'text', (c) => c.notNull().references('sites.id'))
      .addColumn('study_uid', 'text', (c) => c.notNull())
      .addColumn('patient_name', 'text')
      .addColumn('patient_id', 'text')
      .addColumn('patient_birth_date', 'text')
      .addColumn('patient_sex', 'text')
      .addColumn('patient_age', 'text')
      .addColumn('accession_number', 'text')
      .addColumn('study_date', 'text')
      .addColumn('study_time', 'text')
      .addColumn('description', 'text')
      .addColumn('priority', 'integer', (c) => c.notNull())
      .addColumn('received_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addUniqueConstraint('studies_site_uid', ['site_id', 'study_uid'])
      .execute();

    await id(db.schema.createTable('series'))
      .addColumn('study_id', 'bigint', (c) => c.notNull().references('studies.id'))
      .addColumn('series_uid', 'text', (c) => c.notNull())
      .addColumn('series_number', 'integer')
      .addColumn('modality', 'text')
      .addColumn('body_part', 'text')
      .addColumn('description', 'text')
      .addUniqueConstraint('series_study_uid', ['study_id', 'series_uid'])
      .execute();

    await id(db.schema.createTable('instances'))
      .addColumn('site_id', 'text', (c) => c.notNull().references('sites.id'))
      .addColumn('study_id', 'bigint', (c) => c.notNull().references('studies.id'))
      .addColumn('series_id', 'bigint', (c) => c.notNull().references('series.id'))
      .addColumn('sop_instance_uid', 'text', (c) => c.notNull())
      .addColumn('sop_class_uid', 'text', (c) => c.notNull())
      .addColumn('instance_number', 'integer')
      .addColumn('transfer_syntax_uid', 'text', (c) => c.notNull())
      .addColumn('rows', 'integer', (c) => c.notNull())
      .addColumn('columns', 'integer', (c) => c.notNull())
      .addColumn('bits_allocated', 'integer', (c) => c.notNull())
      .addColumn('bits_stored', 'integer', (c) => c.notNull())
      .addColumn('high_bit', 'integer', (c) => c.notNull())
      .addColumn('pixel_representation', 'integer', (c) => c.notNull())
      .addColumn('samples_per_pixel', 'integer', (c) => c.notNull())
      .addColumn('photometric_interpretation', 'text', (c) => c.notNull())
      .addColumn('number_of_frames', 'integer', (c) => c.notNull())
      .addColumn('laterality', 'text')
      .addColumn('view_position', 'text')
      .addColumn('sha256', 'text', (c) => c.notNull())
      .addColumn('size_bytes', 'bigint', (c) => c.notNull())
      .addColumn('storage_key', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('priority', 'integer', (c) => c.notNull())
      .addColumn('received_at', 'bigint', (c) => c.notNull())
      .addColumn('queued_at', 'bigint')
      .addUniqueConstraint('instances_site_sop', ['site_id', 'sop_instance_uid'])
      .execute();
    await db.schema.createIndex('instances_status').on('instances').columns(['status', 'priority', 'id']).execute();
    await db.schema.createIndex('instances_study').on('instances').columns(['study_id']).execute();
    await db.schema.createIndex('instances_storage_key').on('instances').columns(['storage_key']).execute();

    await id(db.schema.createTable('audit_log'))
      .addColumn('at', 'bigint', (c) => c.notNull())
      .addColumn('actor_type', 'text', (c) => c.notNull())
      .addColumn('actor_id', 'text')
      .addColumn('site_id', 'text')
      .addColumn('action', 'text', (c) => c.notNull())
      .addColumn('target_type', 'text')
      .addColumn('target_id', 'text')
      .addColumn('details', 'text')
      .execute();
    await db.schema.createIndex('audit_log_at').on('audit_log').columns(['at']).execute();
  },
});
