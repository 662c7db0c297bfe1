import type { Kysely, Migration } from 'kysely';
import { ingest } from './0001_ingest.js';
import { aiResults } from './0002_ai_results.js';
import { access } from './0003_access.js';
import { worklist } from './0004_worklist.js';
import { instanceOrigin } from './0005_instance_origin.js';
import { dimseAeTitles } from './0006_dimse_ae_titles.js';
import { resultsOut } from './0007_results_out.js';
import { keyExpiry } from './0008_key_expiry.js';
import { reviewEvidence } from './0009_review_evidence.js';

export type Dialect = 'sqlite' | 'postgres';

export interface MigrationHelpers {
  dialect: Dialect;
  /** Adds an auto-increment primary key `id`, spelled the way each database wants it. */
  id<T extends ReturnType<Kysely<unknown>['schema']['createTable']>>(table: T): T;
}

/** Every migration, in order. Add a file per migration and one line here. */
export function migrations(dialect: Dialect): Record<string, Migration> {
  const helpers: MigrationHelpers = {
    dialect,
    id: (table) => (dialect === 'postgres'
      ? table.addColumn('id', 'bigserial', (c) => c.primaryKey())
      : table.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())) as typeof table,
  };
  return {
    '0001_ingest': ingest(helpers),
    '0002_ai_results': aiResults(helpers),
    '0003_access': access(helpers),
    '0004_worklist': worklist(helpers),
    '0005_instance_origin': instanceOrigin(helpers),
    '0006_dimse_ae_titles': dimseAeTitles(helpers),
    '0007_results_out': resultsOut(helpers),
    '0008_key_expiry': keyExpiry(helpers),
    '0009_review_evidence': reviewEvidence(helpers),
  };
}
