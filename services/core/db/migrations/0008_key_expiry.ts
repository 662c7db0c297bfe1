import type { Kysely, Migration } from 'kysely';
import type { MigrationHelpers } from './index.js';

/** API keys may expire (rotation: the old key keeps working until its expiry, then gets 401). */
export const keyExpiry = (_helpers: MigrationHelpers): Migration => ({
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('api_keys').addColumn('expires_at', 'bigint').execute();
  },
});
