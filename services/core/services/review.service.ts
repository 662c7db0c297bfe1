import type { ReviewDecision } from '../db/schema.js';
import { AppError } from '../errors.js';
import type { AuditRepository } from '../repositories/audit.repository.js';
import type { EventRepository } from '../repositories/event.repository.js';
import type { ReviewRepository } from '../repositories/review.repository.js';
import type { WorklistRepository } from '../repositories/worklist.repository.js';

export const DECISIONS: ReviewDecision[] = ['agree', 'disagree', 'missed', 'uncertain'];

export interface ReviewBox { x: number; y: number; width: number; height: number; instanceId?: number }

/** A decision that cannot be recorded as asked (400). */
export class ReviewError extends AppError {
  constructor(message: string) {
    super('bad_request', message);
  }
}

/**
 * Radiologists' decisions on studies: agree (fracture present), disagree (no fracture), missed (the
 * AI missed a fracture; boxes may mark it) or uncertain, with an optional comment. A new decision
 * supersedes the previous one; the history is kept and every decision is audited.
 */
export class ReviewService {
  constructor(
    private readonly reviews: ReviewRepository,
    private readonly worklist: WorklistRepository,
    private readonly audit: AuditRepository,
    private readonly events: EventRepository,
  ) {}

  async decide(actor: { userId: number; siteIds: string[] }, studyId: number, input: { decision: string; comment?: string | null; boxes?: unknown }) {
    const study = await this.worklist.getStudy(actor.siteIds, studyId);
    if (!study) throw new AppError('study_not_found');
    if (!DECISIONS.includes(input.decision as ReviewDecision)) throw new ReviewError(`decision must be one of ${DECISIONS.join(', ')}`);
    const decision = input.decision as ReviewDecision;
    const comment = input.comment?.trim() ? input.comment.trim().slice(0, 2000) : null;
    const boxes = validBoxes(input.boxes);
    if (boxes.length && decision !== 'missed') throw new ReviewError('boxes are only for "missed" (a fracture the AI did not mark)');
    const { review, previous } = await this.reviews.decide({
      studyId, siteId: study.site_id, userId: actor.userId, decision, comment, boxes: boxes.length ? JSON.stringify(boxes) : null,
    });
    await this.audit.record({
      actor_type: 'user', actor_id: String(actor.userId), site_id: study.site_id, action: 'review.decide',
      target_type: 'study', target_id: String(studyId),
      // Never the comment text: it may name the patient.
      details: { review_id: review.id, decision, previous: previous?.decision ?? null, boxes: boxes.length, comment: comment !== null, ai_flag: study.ai_flag, ai_score: study.ai_score },
    });
    // Same channel as the worker's pipeline events, so every open worklist updates.
    await this.events.emit('review', { siteId: study.site_id, studyId, reviewState: 'reviewed', decision });
    return review;
  }

  history(studyId: number) {
    return this.reviews.history(studyId);
  }

  /** A study's decision history, for a caller who may see it (else study_not_found). */
  async historyFor(siteIds: string[], studyId: number) {
    if (!(await this.worklist.getStudy(siteIds, studyId))) throw new AppError('study_not_found');
    return this.reviews.history(studyId);
  }

  /** Decisions with the AI result of each image, for retraining and monitoring; the export is audited. */
  async export(actor: { id: string; siteIds: string[] }, opts: { format: string; includeSuperseded: boolean; from?: number; to?: number }) {
    const rows = await this.reviews.exportRows(actor.siteIds, { includeSuperseded: opts.includeSuperseded, from: opts.from, to: opts.to });
    await this.audit.record({
      actor_type: 'user', actor_id: actor.id, site_id: actor.siteIds.length === 1 ? actor.siteIds[0] : null, action: 'review.export',
      details: { format: opts.format, rows: rows.length, history: opts.includeSuperseded },
    });
    return rows;
  }
}

/** Boxes drawn by the radiologist, in original pixel coordinates; at most 20. */
function validBoxes(raw: unknown): ReviewBox[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw) || raw.length > 20) throw new ReviewError('boxes: an array of at most 20 {x, y, width, height}');
  return raw.map((b) => {
    const box = b as Record<string, unknown>;
    const values = ['x', 'y', 'width', 'height'].map((k) => box?.[k]);
    if (!values.every((v) => typeof v === 'number' && Number.isFinite(v) && v >= 0 && v < 100_000)) {
      throw new ReviewError('boxes: x, y, width and height must be non-negative numbers');
    }
    const [x, y, width, height] = (values as number[]).map((v) => Math.round(v * 10) / 10);
    if (width <= 0 || height <= 0) throw new ReviewError('boxes: width and height must be positive');
    // Which image of the study the box is on (the viewer sends it; the export carries it).
    const instanceId = Number.isSafeInteger(box.instanceId) && (box.instanceId as number) > 0 ? box.instanceId as number : undefined;
    return instanceId ? { x, y, width, height, instanceId } : { x, y, width, height };
  });
}
