import { type Kysely, type MigrationProvider, Migrator } from 'kysely';
import { migrations, type Dialect } from './migrations/index.js';

/** Runs the migrations in migrations/index.ts; one set for SQLite and PostgreSQL. */
class InlineProvider implements MigrationProvider {
  constructor(private readonly dialect: Dialect) {}
  async getMigrations() {
    return migrations(this.dialect);
  }
}

/**
 * `schema`: the PostgreSQL schema the tables live in. Kysely must be told: without it, it takes a
 * migration table in any other schema of the database for its own and skips creating it (tests
 * running side by side in their own schemas then fail with "kysely_migration_lock does not exist").
 * Migrations are numbered per topic and may land out of order (0008 before 0005): each runs once,
 * whatever the order.
 */
export async function migrateToLatest(db: Kysely<any>, dialect: Dialect, schema?: string): Promise<void> {
  const migrator = new Migrator({ db, provider: new InlineProvider(dialect), allowUnorderedMigrations: true, ...(schema ? { migrationTableSchema: schema } : {}) });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error || failed) {
    throw new Error(`database migration ${failed?.migrationName ?? ''} failed: ${error instanceof Error ? error.message : String(error)}`);
  }
}
