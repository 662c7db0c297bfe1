import { writeTransaction, type Db } from '../db/database.js';
import type { Review, ReviewDecision } from '../db/schema.js';
import { ORIGINAL_IMAGE } from './instance.repository.js';

export interface ReviewInput {
  studyId: number;
  siteId: string;
  userId: number;
  decision: ReviewDecision;
  comment: string | null;
  boxes: string | null;
  shownInstanceIds: string;
  measurements: string | null;
}

/** Radiologists' decisions. A change supersedes the current row and adds one: nothing is overwritten. */
export class ReviewRepository {
  constructor(private readonly db: Db) {}

  /** Supersedes the study's current decision (if any), records the new one and marks the study reviewed, in one transaction. */
  decide(input: ReviewInput): Promise<{ review: Review; previous: Review | undefined }> {
    return writeTransaction(this.db, async (trx) => {
      const now = Date.now();
      const previous = await trx.selectFrom('reviews').selectAll()
        .where('study_id', '=', input.studyId).where('superseded_at', 'is', null).executeTakeFirst();
      if (previous) await trx.updateTable('reviews').set({ superseded_at: now }).where('id', '=', previous.id).execute();
      const review = await trx.insertInto('reviews').values({
        study_id: input.studyId, site_id: input.siteId, user_id: input.userId, decision: input.decision,
        comment: input.comment, boxes: input.boxes, shown_instance_ids: input.shownInstanceIds, measurements: input.measurements,
        created_at: now, superseded_at: null, undone_at: null,
      }).returningAll().executeTakeFirstOrThrow();
      await trx.updateTable('studies').set({ review_state: 'reviewed', updated_at: now }).where('id', '=', input.studyId).execute();
      return { review, previous };
    });
  }

  /**
   * Undoes the study's current decision (kept in the history, marked undone) and makes the study
   * unreviewed again, in one transaction. Returns the undone decision, or undefined if there was none.
   */
  undo(studyId: number): Promise<Review | undefined> {
    return writeTransaction(this.db, async (trx) => {
      const now = Date.now();
      const current = await trx.selectFrom('reviews').selectAll()
        .where('study_id', '=', studyId).where('superseded_at', 'is', null).executeTakeFirst();
      if (!current) return undefined;
      await trx.updateTable('reviews').set({ superseded_at: now, undone_at: now }).where('id', '=', current.id).execute();
      await trx.updateTable('studies').set({ review_state: 'unreviewed', updated_at: now }).where('id', '=', studyId).execute();
      return { ...current, superseded_at: now, undone_at: now };
    });
  }

  /** Ids of the study's original images at its site: the only ones a decision, box or measurement may name (never our own SR / captures). */
  async studyInstanceIds(studyId: number, siteId: string): Promise<Set<number>> {
    const rows = await this.db.selectFrom('instances').select('id').where('study_id', '=', studyId).where('site_id', '=', siteId).where(ORIGINAL_IMAGE).execute();
    return new Set(rows.map((r) => Number(r.id)));
  }

  /** Every decision on a study, newest first, with who made it. */
  history(studyId: number) {
    return this.db.selectFrom('reviews').innerJoin('users', 'users.id', 'reviews.user_id')
      .selectAll('reviews').select(['users.username as username', 'users.display_name as display_name'])
      .where('reviews.study_id', '=', studyId).orderBy('reviews.created_at', 'desc').orderBy('reviews.id', 'desc').execute();
  }

  /**
   * Decisions with the AI result of each image of the study, for retraining and monitoring.
   * No patient names or IDs: studies are named by UID.
   */
  exportRows(siteIds: string[], opts: { includeSuperseded: boolean; from?: number; to?: number }) {
    if (!siteIds.length) return Promise.resolve([]);
    let query = this.db.selectFrom('reviews')
      .innerJoin('studies', 'studies.id', 'reviews.study_id')
      .innerJoin('users', 'users.id', 'reviews.user_id')
      .innerJoin('instances', 'instances.study_id', 'reviews.study_id')
      .innerJoin('series', 'series.id', 'instances.series_id')
      .leftJoin('ai_results', 'ai_results.instance_id', 'instances.id')
      .select([
        'reviews.id as review_id', 'reviews.site_id as site_id', 'studies.study_uid as study_uid', 'series.series_uid as series_uid',
        'instances.sop_instance_uid as sop_instance_uid', 'series.body_part as body_part', 'instances.view_position as view_position',
        'instances.laterality as laterality', 'instances.rows as rows', 'instances.columns as columns',
        'reviews.decision as decision', 'reviews.comment as comment', 'reviews.boxes as review_boxes',
        'users.username as reviewer', 'reviews.created_at as decided_at', 'reviews.superseded_at as superseded_at',
        'ai_results.status as ai_status', 'ai_results.probability as ai_probability', 'ai_results.flag as ai_flag',
        'ai_results.boxes as ai_boxes', 'ai_results.model_name as model_name', 'ai_results.model_version as model_version',
        'studies.ai_flag as study_ai_flag', 'studies.ai_score as study_ai_score',
      ])
      .where('reviews.site_id', 'in', siteIds).where(ORIGINAL_IMAGE);
    if (!opts.includeSuperseded) query = query.where('reviews.superseded_at', 'is', null);
    if (opts.from !== undefined) query = query.where('reviews.created_at', '>=', opts.from);
    if (opts.to !== undefined) query = query.where('reviews.created_at', '<', opts.to);
    return query.orderBy('reviews.created_at').orderBy('reviews.id').orderBy('instances.id').execute();
  }
}
