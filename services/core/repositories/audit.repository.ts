import { sql, type CompiledQuery } from 'kysely';
import { QueryTemplate } from '../db/query-template.js';
import type { Db } from '../db/database.js';
import type { AuditEntry } from '../db/schema.js';

/** Who made a change: a signed-in user (their id) or the system (the CLI, demo mode). */
export interface AuditActor {
  type: 'user' | 'system';
  id: string;
}
export const CLI_ACTOR: AuditActor = { type: 'system', id: 'cli' };

export type AuditInput = Omit<AuditEntry, 'at' | 'details'> & { details?: Record<string, unknown> };

/** Append-only record of who read or changed what. Details must not carry patient names or IDs. */
export class AuditRepository {
  constructor(private readonly db: Db) {}

  /** `trx`: write the entry inside the caller's transaction (committed with the change it records). */
  async record(entry: AuditInput, trx: Db = this.db): Promise<void> {
    await trx.insertInto('audit_log').values({
      ...entry,
      at: Date.now(),
      details: entry.details ? JSON.stringify(entry.details) : null,
    }).execute();
  }

  /**
   * The insert of the entry for an instance recorded in the same statement list (runSteps), found
   * by its unique key since its id is not known yet. Compiled once (see QueryTemplate): every
   * upload writes one.
   */
  recordForNewInstance(entry: Omit<AuditInput, 'target_id' | 'target_type' | 'site_id'>, siteId: string, sopInstanceUid: string): CompiledQuery {
    return this.newInstanceEntry.fill({
      actorType: entry.actor_type, actorId: entry.actor_id, action: entry.action, siteId, sopInstanceUid,
      at: Date.now(), details: entry.details ? JSON.stringify(entry.details) : null,
    });
  }

  private readonly newInstanceEntry = new QueryTemplate((v: {
    actorType: AuditEntry['actor_type']; actorId: AuditEntry['actor_id']; action: string; siteId: string; sopInstanceUid: string; at: number; details: string | null;
  }) => {
    const instanceId = this.db.selectFrom('instances').select('id').where('site_id', '=', v.siteId).where('sop_instance_uid', '=', v.sopInstanceUid);
    return this.db.insertInto('audit_log').values({
      actor_type: v.actorType, actor_id: v.actorId, site_id: v.siteId, action: v.action, target_type: 'instance',
      target_id: sql<string>`cast((${instanceId}) as text)`, at: v.at, details: v.details,
    }).compile();
  });

  list(filter: { action?: string; siteId?: string; limit?: number } = {}) {
    let query = this.db.selectFrom('audit_log').selectAll().orderBy('id', 'desc').limit(filter.limit ?? 100);
    if (filter.action) query = query.where('action', '=', filter.action);
    if (filter.siteId) query = query.where('site_id', '=', filter.siteId);
    return query.execute();
  }
}
