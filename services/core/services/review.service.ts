import type { Redis } from 'ioredis';
import type { ReviewDecision } from '../db/schema.js';
import { eventsChannel } from '../queue/worker-registry.js';
import type { AuditRepository } from '../repositories/audit.repository.js';
import type { ReviewRepository } from '../repositories/review.repository.js';
import type { WorklistRepository } from '../repositories/worklist.repository.js';

export const DECISIONS: ReviewDecision[] = ['agree', 'disagree', 'missed', 'uncertain'];

export interface ReviewBox { x: number; y: number; width: number; height: number; instanceId?: number }

/** A review event on the same channel as the worker's pipeline events, so every open worklist updates. */
export interface ReviewEvent { type: 'review'; siteId: string; studyId: number; reviewState: 'reviewed'; decision: ReviewDecision }

export class ReviewError extends Error {
  constructor(message: string, readonly statusCode: number) {
    super(message);
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
    private readonly redis: Redis | undefined,
    private readonly queuePrefix: string,
  ) {}

  async decide(actor: { userId: number; siteIds: string[] }, studyId: number, input: { decision: string; comment?: string | null; boxes?: unknown }) {
    const study = await this.worklist.getStudy(actor.siteIds, studyId);
    if (!study) throw new ReviewError('no such study', 404);
    if (!DECISIONS.includes(input.decision as ReviewDecision)) throw new ReviewError(`decision must be one of ${DECISIONS.join(', ')}`, 400);
    const decision = input.decision as ReviewDecision;
    const comment = input.comment?.trim() ? input.comment.trim().slice(0, 2000) : null;
    const boxes = validBoxes(input.boxes);
    if (boxes.length && decision !== 'missed') throw new ReviewError('boxes are only for "missed" (a fracture the AI did not mark)', 400);
    const { review, previous } = await this.reviews.decide({
      studyId, siteId: study.site_id, userId: actor.userId, decision, comment, boxes: boxes.length ? JSON.stringify(boxes) : null,
    });
    await this.audit.record({
      actor_type: 'user', actor_id: String(actor.userId), site_id: study.site_id, action: 'review.decide',
      target_type: 'study', target_id: String(studyId),
      // Never the comment text: it may name the patient.
      details: { review_id: review.id, decision, previous: previous?.decision ?? null, boxes: boxes.length, comment: comment !== null, ai_flag: study.ai_flag, ai_score: study.ai_score },
    });
    const event: ReviewEvent = { type: 'review', siteId: study.site_id, studyId, reviewState: 'reviewed', decision };
    await this.redis?.publish(eventsChannel(this.queuePrefix), JSON.stringify(event)).catch(() => undefined);
    return review;
  }

  history(studyId: number) {
    return this.reviews.history(studyId);
  }
}

/** Boxes drawn by the radiologist, in original pixel coordinates; at most 20. */
function validBoxes(raw: unknown): ReviewBox[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw) || raw.length > 20) throw new ReviewError('boxes: an array of at most 20 {x, y, width, height}', 400);
  return raw.map((b) => {
    const box = b as Record<string, unknown>;
    const values = ['x', 'y', 'width', 'height'].map((k) => box?.[k]);
    if (!values.every((v) => typeof v === 'number' && Number.isFinite(v) && v >= 0 && v < 100_000)) {
      throw new ReviewError('boxes: x, y, width and height must be non-negative numbers', 400);
    }
    const [x, y, width, height] = (values as number[]).map((v) => Math.round(v * 10) / 10);
    if (width <= 0 || height <= 0) throw new ReviewError('boxes: width and height must be positive', 400);
    // Which image of the study the box is on (the viewer sends it; the export carries it).
    const instanceId = Number.isSafeInteger(box.instanceId) && (box.instanceId as number) > 0 ? box.instanceId as number : undefined;
    return instanceId ? { x, y, width, height, instanceId } : { x, y, width, height };
  });
}
