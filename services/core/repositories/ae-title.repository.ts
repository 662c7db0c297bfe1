import type { Db } from '../db/database.js';
import type { AeTitle } from '../db/schema.js';

/** Calling AE titles allowed to C-STORE to us, and the site each one stores into. */
export class AeTitleRepository {
  constructor(private readonly db: Db) {}

  /** Adds or re-points a calling AE title (AE titles are compared without padding spaces). */
  async upsert(entry: { aeTitle: string; siteId: string; host: string | null }): Promise<void> {
    const row = { ae_title: entry.aeTitle, site_id: entry.siteId, host: entry.host, created_at: Date.now() };
    await this.db.insertInto('ae_titles').values(row)
      .onConflict((oc) => oc.column('ae_title').doUpdateSet({ site_id: row.site_id, host: row.host }))
      .execute();
  }

  get(aeTitle: string): Promise<AeTitle | undefined> {
    return this.db.selectFrom('ae_titles').selectAll().where('ae_title', '=', aeTitle).executeTakeFirst();
  }

  list(): Promise<AeTitle[]> {
    return this.db.selectFrom('ae_titles').selectAll().orderBy('site_id').orderBy('ae_title').execute();
  }

  async remove(aeTitle: string): Promise<boolean> {
    const result = await this.db.deleteFrom('ae_titles').where('ae_title', '=', aeTitle).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }
}
