import { QueryTemplate } from '../db/query-template.js';
import type { Db } from '../db/database.js';
import type { ApiKey, Site } from '../db/schema.js';

export class SiteRepository {
  /** `readDb`: committed data, read without queueing behind the writer (DatabaseHandle.readDb); the key lookup of every request uses it. */
  constructor(private readonly db: Db, private readonly readDb: Db = db) {
    this.keyById = new QueryTemplate((v: { id: string }) => readDb.selectFrom('api_keys').selectAll().where('id', '=', v.id).compile());
  }

  /** The key lookup of every request, compiled once (see QueryTemplate). */
  private readonly keyById: QueryTemplate<{ id: string }>;

  async create(site: { id: string; name: string }): Promise<Site> {
    const row = { ...site, created_at: Date.now() };
    await this.db.insertInto('sites').values(row).execute();
    return row;
  }

  get(id: string): Promise<Site | undefined> {
    return this.db.selectFrom('sites').selectAll().where('id', '=', id).executeTakeFirst();
  }

  list(): Promise<Site[]> {
    return this.db.selectFrom('sites').selectAll().orderBy('id').execute();
  }

  async addKey(key: Omit<ApiKey, 'revoked_at' | 'last_used_at' | 'expires_at'>): Promise<void> {
    await this.db.insertInto('api_keys').values({ ...key, revoked_at: null, last_used_at: null, expires_at: null }).execute();
  }

  async setKeyExpiry(id: string, expiresAt: number | null): Promise<boolean> {
    const result = await this.db.updateTable('api_keys').set({ expires_at: expiresAt }).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  /** As committed (a revocation counts from its commit on). */
  getKey(id: string): Promise<ApiKey | undefined> {
    return this.readDb.executeQuery<ApiKey>(this.keyById.fill({ id })).then(({ rows }) => rows[0]);
  }

  listKeys(siteId?: string): Promise<ApiKey[]> {
    let query = this.db.selectFrom('api_keys').selectAll().orderBy('created_at');
    if (siteId) query = query.where('site_id', '=', siteId);
    return query.execute();
  }

  async revokeKey(id: string): Promise<boolean> {
    const result = await this.db.updateTable('api_keys').set({ revoked_at: Date.now() })
      .where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  async touchKey(id: string): Promise<void> {
    await this.db.updateTable('api_keys').set({ last_used_at: Date.now() }).where('id', '=', id).execute();
  }
}
