import { writeTransaction, type Db } from '../db/database.js';
import type { AiFlag, AiResult, AiResultsTable, Study, StudyAiFlag } from '../db/schema.js';
import type { Insertable } from 'kysely';
import { ORIGINAL_IMAGE } from './instance.repository.js';

export type NewAiResult = Omit<Insertable<AiResultsTable>, 'id'>;

/**
 * Ranks used to roll image results up to the study; the highest wins. An unreadable or failed
 * image outranks "none": a study with an image nobody could score is never reported as clear.
 */
const STUDY_FLAG_RANK: Record<StudyAiFlag, number> = { definite: 6, doubt: 5, unreadable: 4, failed: 3, none: 2, not_applicable: 1 };

/** AI results per instance and the study roll-up the worklist sorts on. */
export class AiResultRepository {
  constructor(private readonly db: Db) {}

  byInstance(instanceId: number): Promise<AiResult | undefined> {
    return this.db.selectFrom('ai_results').selectAll().where('instance_id', '=', instanceId).executeTakeFirst();
  }

  byStudy(studyId: number): Promise<AiResult[]> {
    return this.db.selectFrom('ai_results').selectAll().where('study_id', '=', studyId).orderBy('instance_id').execute();
  }

  /**
   * Stores an instance's result and recomputes its study, in one transaction. A result that is
   * already final (done / unreadable / not_applicable) is never replaced: a job that runs twice (worker killed
   * after storing, before acknowledging) changes nothing. A failed result is replaced by a retry.
   * Returns the study after the roll-up, and whether this call stored anything.
   */
  async store(result: NewAiResult): Promise<{ stored: boolean; study: Pick<Study, 'id' | 'site_id' | 'ai_state' | 'ai_flag' | 'ai_score'>; studyChanged: boolean }> {
    return writeTransaction(this.db, async (trx) => {
      const existing = await trx.selectFrom('ai_results').select(['id', 'status']).where('instance_id', '=', result.instance_id).executeTakeFirst();
      let stored = false;
      if (!existing) {
        const inserted = await trx.insertInto('ai_results').values(result)
          .onConflict((oc) => oc.column('instance_id').doNothing()).returning('id').executeTakeFirst();
        stored = inserted !== undefined;
      } else if (existing.status === 'failed') {
        await trx.updateTable('ai_results').set({ ...result, attempts: (eb) => eb('attempts', '+', 1) }).where('id', '=', existing.id).execute();
        stored = true;
      }
      if (stored) {
        await trx.updateTable('instances').set({ status: result.status === 'failed' ? 'failed' : 'done' }).where('id', '=', result.instance_id).execute();
      }

      const before = await trx.selectFrom('studies').select(['id', 'site_id', 'ai_state', 'ai_flag', 'ai_score']).where('id', '=', result.study_id).executeTakeFirstOrThrow();
      const rows = await trx.selectFrom('instances').leftJoin('ai_results', 'ai_results.instance_id', 'instances.id')
        .select(['ai_results.status as status', 'ai_results.flag as flag', 'ai_results.probability as probability'])
        .where('instances.study_id', '=', result.study_id).where(ORIGINAL_IMAGE).execute();
      const complete = rows.every((r) => r.status !== null);
      let flag: Study['ai_flag'] = null;
      let score: number | null = null;
      for (const r of rows) {
        const label = r.status === 'done' ? (r.flag as AiFlag) : r.status;
        if (label && (flag === null || STUDY_FLAG_RANK[label as StudyAiFlag] > STUDY_FLAG_RANK[flag])) flag = label as StudyAiFlag;
        if (r.probability !== null && (score === null || r.probability > score)) score = r.probability;
      }
      const after = { ai_state: complete ? 'complete' as const : 'pending' as const, ai_flag: flag, ai_score: score };
      const studyChanged = after.ai_state !== before.ai_state || after.ai_flag !== before.ai_flag || after.ai_score !== before.ai_score;
      if (studyChanged) await trx.updateTable('studies').set({ ...after, updated_at: Date.now() }).where('id', '=', result.study_id).execute();
      return { stored, study: { ...before, ...after }, studyChanged };
    });
  }
}
