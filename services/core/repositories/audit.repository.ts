import { sql, type CompiledQuery, type Expression } from 'kysely';
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

  /** The insert of an entry whose target id is an expression (e.g. the id of a row inserted in the same statement list), for runSteps. */
  recordQuery(entry: Omit<AuditInput, 'target_id'>, targetId: Expression<number>, trx: Db = this.db): CompiledQuery {
    return trx.insertInto('audit_log').values({
      ...entry,
      target_id: sql<string>`cast((${targetId}) as text)`,
      at: Date.now(),
      details: entry.details ? JSON.stringify(entry.details) : null,
    }).compile();
  }

  list(filter: { action?: string; siteId?: string; limit?: number } = {}) {
    let query = this.db.selectFrom('audit_log').selectAll().orderBy('id', 'desc').limit(filter.limit ?? 100);
    if (filter.action) query = query.where('action', '=', filter.action);
    if (filter.siteId) query = query.where('site_id', '=', filter.siteId);
    return query.execute();
  }
}
