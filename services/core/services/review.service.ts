import type { ReviewDecision } from '../db/schema.js';
import { AppError } from '../errors.js';
import type { AuditRepository } from '../repositories/audit.repository.js';
import type { EventMap, EventRepository } from '../repositories/event.repository.js';
import type { ReviewRepository } from '../repositories/review.repository.js';
import type { WorklistRepository } from '../repositories/worklist.repository.js';

export const DECISIONS: ReviewDecision[] = ['agree', 'disagree', 'missed', 'uncertain'];

export interface ReviewBox { x: number; y: number; width: number; height: number; instanceId: number }

export interface Point { x: number; y: number }

/** A length or angle the radiologist measured, kept with the decision (original pixel coordinates). */
export interface Measurement { kind: 'length' | 'angle'; points: Point[]; value: number; unit: string; instanceId: number; /** Same id, the name the web contract uses. */ imageId: number }

/** Units a measurement may carry: mm when the image has a pixel spacing, px when not; degrees for angles. */
const MEASUREMENT_UNITS: Record<Measurement['kind'], string[]> = { length: ['mm', 'px'], angle: ['deg'] };
/** Points per kind: a length has two ends; an angle three points (vertex in the middle) or four (two lines, Cobb). */
const MEASUREMENT_POINTS: Record<Measurement['kind'], number[]> = { length: [2], angle: [3, 4] };

/** A decision that cannot be recorded as asked (400). */
export class ReviewError extends AppError {
  constructor(message: string) {
    super('bad_request', message);
  }
}

export interface DecisionInput {
  decision: string;
  comment?: string | null;
  boxes?: unknown;
  /** The instance ids the radiologist had rendered on screen when deciding (required, at least one). */
  shownInstanceIds?: unknown;
  measurements?: unknown;
}

/**
 * Radiologists' decisions on studies: agree (fracture present), disagree (no fracture), missed (the
 * AI missed a fracture; boxes may mark it) or uncertain, with an optional comment and measurements.
 * A decision names the images that were on screen, and only images of the study may be named: no
 * decision on an image that was not shown. A new decision supersedes the previous one, and a
 * decision can be undone; the history is kept and every change is audited.
 */
export class ReviewService {
  constructor(
    private readonly reviews: ReviewRepository,
    private readonly worklist: WorklistRepository,
    private readonly audit: AuditRepository,
    private readonly events: EventRepository,
  ) {}

  async decide(actor: { userId: number; siteIds: string[] }, studyId: number, input: DecisionInput) {
    const study = await this.worklist.getStudy(actor.siteIds, studyId);
    if (!study) throw new AppError('study_not_found');
    if (!DECISIONS.includes(input.decision as ReviewDecision)) throw new ReviewError(`decision must be one of ${DECISIONS.join(', ')}`);
    const decision = input.decision as ReviewDecision;
    const comment = input.comment?.trim() ? input.comment.trim().slice(0, 2000) : null;
    const studyImages = await this.reviews.studyInstanceIds(studyId, study.site_id);
    const shown = shownInstances(input.shownInstanceIds, studyImages);
    const boxes = validBoxes(input.boxes, shown);
    if (boxes.length && decision !== 'missed') throw new ReviewError('boxes are only for "missed" (a fracture the AI did not mark)');
    const measurements = validMeasurements(input.measurements, shown);
    const { review, previous } = await this.reviews.decide({
      studyId, siteId: study.site_id, userId: actor.userId, decision, comment, boxes: boxes.length ? JSON.stringify(boxes) : null,
      shownInstanceIds: JSON.stringify(shown), measurements: measurements.length ? JSON.stringify(measurements) : null,
    });
    await this.audit.record({
      actor_type: 'user', actor_id: String(actor.userId), site_id: study.site_id, action: 'review.decide',
      target_type: 'study', target_id: String(studyId),
      // Never the comment text: it may name the patient.
      details: {
        review_id: review.id, decision, previous: previous?.decision ?? null, previous_review_id: previous?.id ?? null, boxes: boxes.length,
        measurements: measurements.length, shown_instance_ids: shown, comment: comment !== null, ai_flag: study.ai_flag, ai_score: study.ai_score,
      },
    });
    // Same channel as the worker's pipeline events, so every open worklist updates.
    await this.publish({ siteId: study.site_id, studyId, reviewState: 'reviewed', decision });
    return review;
  }

  /** Undoes the study's current decision: it stays in the history (undone), the study is unreviewed again. Audited. */
  async undo(actor: { userId: number; siteIds: string[] }, studyId: number) {
    const study = await this.worklist.getStudy(actor.siteIds, studyId);
    if (!study) throw new AppError('study_not_found');
    const undone = await this.reviews.undo(studyId);
    if (!undone) throw new AppError('review_not_found');
    await this.audit.record({
      actor_type: 'user', actor_id: String(actor.userId), site_id: study.site_id, action: 'review.undo',
      target_type: 'study', target_id: String(studyId),
      details: { review_id: undone.id, decision: undone.decision, decided_by: undone.user_id },
    });
    await this.publish({ siteId: study.site_id, studyId, reviewState: 'unreviewed', decision: null });
    return undone;
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

  private async publish(event: EventMap['review']) {
    await this.events.emit('review', event);
  }
}

const isId = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) > 0;

/** The images on screen: at least one, each an image of this study at its site. */
function shownInstances(raw: unknown, studyImages: Set<number>): number[] {
  if (!Array.isArray(raw) || raw.length === 0) {
    throw new ReviewError('shownInstanceIds: list the ids of the images you had on screen (at least one); a decision is only recorded on images that were shown');
  }
  if (raw.length > 1000 || !raw.every(isId)) throw new ReviewError('shownInstanceIds: an array of image ids (positive integers)');
  const ids = [...new Set(raw as number[])];
  const foreign = ids.filter((id) => !studyImages.has(id));
  if (foreign.length) throw new ReviewError(`shownInstanceIds: image ${foreign[0]} is not an image of this study`);
  return ids;
}

/** Boxes drawn by the radiologist, in original pixel coordinates; at most 20, each on a shown image of the study. */
function validBoxes(raw: unknown, shown: number[]): ReviewBox[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw) || raw.length > 20) throw new ReviewError('boxes: an array of at most 20 {x, y, width, height}');
  return raw.map((b) => {
    const box = b as Record<string, unknown>;
    const values = ['x', 'y', 'width', 'height'].map((k) => box?.[k]);
    if (!values.every((v) => typeof v === 'number' && Number.isFinite(v) && v >= 0 && v < 100_000)) {
      throw new ReviewError('boxes: x, y, width and height must be non-negative numbers');
    }
    const [x, y, width, height] = (values as number[]).map(round1);
    if (width <= 0 || height <= 0) throw new ReviewError('boxes: width and height must be positive');
    // Which image of the study the box is on (required: a box is drawn on an image that was shown).
    if (!isId(box.instanceId) || !shown.includes(box.instanceId)) {
      throw new ReviewError(`boxes: instanceId ${String(box.instanceId)} is not an image of this study that was on screen`);
    }
    return { x, y, width, height, instanceId: box.instanceId };
  });
}

const round1 = (v: number) => Math.round(v * 10) / 10;

/** Lengths and angles, at most 50, each on a shown image of the study. Points may be {x, y} or [x, y]. */
function validMeasurements(raw: unknown, shown: number[]): Measurement[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw) || raw.length > 50) throw new ReviewError('measurements: an array of at most 50 {kind, points, value, unit, instanceId}');
  return raw.map((m, i) => {
    const item = (m ?? {}) as Record<string, unknown>;
    const where = `measurements[${i}]`;
    const kind = item.kind as Measurement['kind'];
    if (kind !== 'length' && kind !== 'angle') throw new ReviewError(`${where}.kind must be "length" or "angle"`);
    const instanceId = item.instanceId ?? item.imageId;
    if (!isId(instanceId) || !shown.includes(instanceId)) {
      throw new ReviewError(`${where}.instanceId must be an image of this study that was on screen`);
    }
    if (typeof item.value !== 'number' || !Number.isFinite(item.value) || item.value < 0 || item.value > 1e6) {
      throw new ReviewError(`${where}.value must be a non-negative number`);
    }
    if (typeof item.unit !== 'string' || !MEASUREMENT_UNITS[kind].includes(item.unit)) {
      throw new ReviewError(`${where}.unit must be ${MEASUREMENT_UNITS[kind].join(' or ')} for a ${kind}`);
    }
    const points = Array.isArray(item.points) ? item.points.map(toPoint) : [];
    if (!MEASUREMENT_POINTS[kind].includes(points.length) || points.some((p) => p === undefined)) {
      throw new ReviewError(`${where}.points: ${MEASUREMENT_POINTS[kind].join(' or ')} points {x, y} in image pixels for a ${kind}`);
    }
    return { kind, points: points as Point[], value: Math.round(item.value * 1000) / 1000, unit: item.unit, instanceId, imageId: instanceId };
  });
}

function toPoint(p: unknown): Point | undefined {
  const [x, y] = Array.isArray(p) ? p : [(p as Point | null)?.x, (p as Point | null)?.y];
  const ok = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= -100_000 && v < 100_000;
  return ok(x) && ok(y) ? { x: round1(x), y: round1(y) } : undefined;
}
