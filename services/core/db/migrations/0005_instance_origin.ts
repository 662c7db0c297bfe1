import type { Kysely, Migration } from 'kysely';
import type { MigrationHelpers } from './index.js';

/**
 * Where each stored instance came from (`stow`, `api`, `dimse`) and who sent it (API key id, or
 * the calling AE title for DIMSE). Rows stored before this migration keep both unknown (null).
 */
export const instanceOrigin = (_helpers: MigrationHelpers): Migration => ({
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('instances').addColumn('origin', 'text').execute();
    await db.schema.alterTable('instances').addColumn('actor_id', 'text').execute();
  },
});
