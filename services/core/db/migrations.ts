import { type Kysely, type MigrationProvider, Migrator } from 'kysely';
import { migrations, type Dialect } from './migrations/index.js';

/** Runs the migrations in migrations/index.ts; one set for SQLite and PostgreSQL. */
class InlineProvider implements MigrationProvider {
  constructor(private readonly dialect: Dialect) {}
  async getMigrations() {
    return migrations(this.dialect);
  }
}

export async function migrateToLatest(db: Kysely<any>, dialect: Dialect): Promise<void> {
  // Migrations are numbered per topic and may land out of order (0008 before 0005): each runs once, whatever the order.
  const migrator = new Migrator({ db, provider: new InlineProvider(dialect), allowUnorderedMigrations: true });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error || failed) {
    throw new Error(`database migration ${failed?.migrationName ?? ''} failed: ${error instanceof Error ? error.message : String(error)}`);
  }
}
