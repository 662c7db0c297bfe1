import type { AiFlag } from '../db/schema.js';
import { failpoint } from '../failpoints.js';
import type { Logger } from '../logger.js';
import { recordStoredResult } from '../metrics.js';
import { RADIOGRAPHY_MODALITIES, isNonImageStorage } from '../../dicom/index.js';
import type { EventRepository } from '../repositories/event.repository.js';
import { PermanentJobError } from '../repositories/job.repository.js';
import type { AiResultRepository, NewAiResult } from '../repositories/ai-result.repository.js';
import type { InstanceRepository } from '../repositories/instance.repository.js';
import type { StorageRepository } from '../repositories/storage.repository.js';
import { checkPlausibility, inOriginalPixels, isPixelDataError, letterbox, renderPng, toOriginal, type DecodedImage, type DecodeOptions, type GreyImage, type Letterbox } from '../../imaging/index.js';
import type { FractureModel, Prediction } from '../../inference/index.js';

/** Decodes a stored file (a worker-thread pool in production). */
export interface ImageDecoder {
  decode(bytes: Uint8Array, opts?: Pick<DecodeOptions, 'minLongSide'>): Promise<DecodedImage>;
}

/**
 * Body parts of the training data (FracAtlas: hand, leg, hip, shoulder, mixed limbs) and their
 * parts. Images of other parts (chest, skull, spine…) get "not applicable", never a guess.
 * An image without Body Part Examined is classified: many DX files leave it empty.
 */
export const APPLICABLE_BODY_PARTS = new Set([
  'HAND', 'FINGER', 'THUMB', 'WRIST', 'FOREARM', 'ARM', 'ELBOW', 'HUMERUS', 'UPPEXM', 'UPPER LIMB', 'SHOULDER', 'CLAVICLE', 'SCAPULA',
  'LEG', 'LOWEXM', 'LOWER LIMB', 'KNEE', 'PATELLA', 'TIBIA', 'FIBULA', 'ANKLE', 'FOOT', 'TOE', 'HEEL', 'CALCANEUS', 'FEMUR', 'THIGH',
  'HIP', 'PELVIS', 'EXTREMITY',
]);

/**
 * The smallest longer side the worker decodes an image at for a model of `inputSize`: twice the
 * input, so the letterbox still averages at least 2×2 decoded pixels per model pixel. Decoding only
 * down to the input size itself moved the probability by up to 0.079 (p95 0.061) on FracAtlas val
 * at acquisition size; twice the input by up to 0.063 (p95 0.020) — docs/benchmarks/reduced-decode.md.
 */
export function decodeLongSide(inputSize: number): number {
  return 2 * inputSize;
}

/**
 * How far below an operating point (in log-odds) a score from a reduced decode is scored again at
 * full resolution, so a reduced decode can never be what removes a flag. Measured on FracAtlas val
 * at acquisition size, reduced decoding moved the log-odds by at most 0.35 (the probability by at
 * most 0.063, p95 0.020: docs/benchmarks/reduced-decode.md). Log-odds, not probability, because a
 * Platt-calibrated score moves by about the same log-odds wherever it sits, so a probability
 * margin would be too wide near "doubt" (p ≈ 0.08) and too narrow near "definite" (p ≈ 0.45).
 */
export const RESCORE_MARGIN_LOGIT = 0.4;

const logit = (p: number) => Math.log(p / (1 - p));

/** True when `p` is under an operating point by less than RESCORE_MARGIN_LOGIT (a reduced decode might have lowered the flag). */
export function justBelowAnOperatingPoint(p: number, points: { doubt: number; definite: number }): boolean {
  return [points.doubt, points.definite].some((t) => p < t && logit(p) >= logit(t) - RESCORE_MARGIN_LOGIT);
}

export interface ClassifyTiming {
  /** When the job was queued (ms); from the job, else the instance row. */
  queuedAt: number | null;
  /** 1-based attempt number and the number allowed. */
  attempt: number;
  maxAttempts: number;
}

export type ClassifyOutcome = 'stored' | 'already-done' | 'not-applicable' | 'unreadable' | 'failed';

/**
 * What happens to one queued image: load → decode → plausibility → letterbox → model → calibrated
 * score, flag, heat map and boxes in original pixels → one result row (exactly once) → study roll-up
 * → event. An image that decodes but is damaged or not plausibly a radiograph (decoder warnings,
 * blank, burnt out, noise) is recorded as "unreadable" with the reason, never scored: the model
 * would call it "not flagged".
 * Permanent problems (pixels that do not decode) are recorded at once as a failed result and
 * stop the retries; transient ones are retried, and recorded as failed on the last attempt.
 */
export class ClassifyService {
  constructor(
    private readonly instances: InstanceRepository,
    private readonly results: AiResultRepository,
    private readonly storage: StorageRepository,
    private readonly model: FractureModel,
    private readonly decoder: ImageDecoder,
    private readonly events: EventRepository,
    private readonly log: Logger,
    /** Told after each stored result (the results queue looks at the study again). */
    private readonly onResultStored?: (siteId: string, studyId: number) => Promise<void>,
  ) {}

  async classify(instanceId: number, timing: ClassifyTiming): Promise<ClassifyOutcome> {
    const instance = await this.instances.forClassification(instanceId);
    // No row: the record was removed after the job was queued. Nothing to classify, nothing to retry.
    if (!instance) throw new PermanentJobError(`instance ${instanceId} is not in the database`);
    // Our own SR / Secondary Capture: never classified (no result, not even "not applicable").
    if (instance.origin === 'ai') throw new PermanentJobError(`instance ${instanceId} is an object our AI made, not an image to classify`);
    const existing = await this.results.byInstance(instanceId);
    if (existing && existing.status !== 'failed') return 'already-done';

    const base = {
      instance_id: instance.id, site_id: instance.site_id, study_id: instance.study_id,
      model_name: this.model.name, model_version: this.model.version, backend: this.model.backend,
      queued_at: timing.queuedAt ?? instance.queued_at,
    };
    const started = Date.now();

    const notApplicable = isNonImageStorage(instance.sop_class_uid)
      ? 'not an image (report, key objects or presentation state): nothing for the model to read'
      : this.notApplicableReason(instance.modality, instance.body_part);
    if (notApplicable) {
      await this.save({ ...base, status: 'not_applicable', reason: notApplicable, started_at: started, stored_at: Date.now() }, instance.received_at);
      return 'not-applicable';
    }

    await this.instances.markProcessing(instanceId);
    try {
      const bytes = await this.storage.readFile(instance.storage_key);
      // The model sees inputSize² pixels: a JPEG 2000 image may decode at a reduced wavelet level.
      const decoded = await this.decoder.decode(bytes, { minLongSide: decodeLongSide(this.model.inputSize) });
      const decodedAt = Date.now();
      failpoint('worker-after-decode');
      const verdict = checkPlausibility(decoded.display, decoded.warnings);
      if (!verdict.readable) {
        await this.save({ ...base, status: 'unreadable', reason: verdict.reason, started_at: started, decoded_at: decodedAt, stored_at: Date.now() }, instance.received_at);
        return 'unreadable';
      }
      let lb = inOriginalPixels(letterbox(decoded.display, this.model.inputSize), decoded.reduction);
      let prediction = await this.model.predict(lb.data);
      if (decoded.reduction > 1 && justBelowAnOperatingPoint(prediction.probability, this.model.operatingPoints)) {
        // A reduced decode must not lower the flag the full image would get: score the full image.
        const full = await this.decoder.decode(bytes);
        lb = letterbox(full.display, this.model.inputSize);
        prediction = await this.model.predict(lb.data);
      }
      const inferredAt = Date.now();
      const heatmapKey = `${instance.site_id}/${instance.id}/heatmap.png`;
      await this.storage.writeDerived(heatmapKey, renderPng(heatmapOverImage(prediction, lb, decoded.width, decoded.height), 256));
      await this.save({
        ...base,
        status: 'done',
        probability: prediction.probability,
        raw_score: prediction.rawScore,
        flag: prediction.flag,
        boxes: JSON.stringify(boxesInOriginal(prediction, lb, decoded.width, decoded.height)),
        heatmap_key: heatmapKey,
        reason: null,
        started_at: started,
        decoded_at: decodedAt,
        inferred_at: inferredAt,
        stored_at: Date.now(),
      }, instance.received_at);
      failpoint('worker-after-store');
      return 'stored';
    } catch (error) {
      if (isPixelDataError(error)) {
        const reason = `cannot decode the image: ${error.message}`;
        await this.save({ ...base, status: 'failed', reason, started_at: started, stored_at: Date.now() }, instance.received_at);
        throw new PermanentJobError(reason);
      }
      if (timing.attempt >= timing.maxAttempts) {
        const reason = `gave up after ${timing.attempt} attempts: ${(error as Error).message}`;
        await this.save({ ...base, status: 'failed', reason, started_at: started, stored_at: Date.now() }, instance.received_at).catch((err) => {
          this.log.error({ instanceId, err: (err as Error).message }, 'could not record the final failure');
        });
      }
      throw error;
    }
  }

  notApplicableReason(modality: string | null, bodyPart: string | null): string | undefined {
    if (!modality || !RADIOGRAPHY_MODALITIES.has(modality.toUpperCase())) {
      return `modality ${modality ?? '(none)'} is not projection radiography (CR/DX); the model reads X-rays only`;
    }
    const part = bodyPart?.trim().toUpperCase();
    if (part && !APPLICABLE_BODY_PARTS.has(part)) {
      return `body part ${part} is outside what the model was trained on (limbs, hip and shoulder)`;
    }
    return undefined;
  }

  private async save(result: NewAiResult, receivedAt: number): Promise<void> {
    const { stored, study, studyChanged } = await this.results.store(result);
    if (!stored) return;
    recordStoredResult(result, receivedAt);
    await this.events.emit('result', {
      siteId: result.site_id, studyId: result.study_id, instanceId: result.instance_id,
      status: result.status, flag: (result.flag ?? null) as AiFlag | null, probability: result.probability ?? null,
    });
    if (studyChanged) {
      await this.events.emit('study', { siteId: study.site_id, studyId: study.id, aiState: study.ai_state, aiFlag: study.ai_flag, aiScore: study.ai_score });
    }
    await this.onResultStored?.(result.site_id, result.study_id).catch((err) => {
      this.log.warn({ studyId: result.study_id, err: (err as Error).message }, 'could not schedule the study\'s AI output');
    });
  }
}

/** Boxes from model-input pixels to original pixels, clamped to the image; no number (see inference/boxes.ts). */
export function boxesInOriginal(prediction: Prediction, lb: Letterbox, width: number, height: number) {
  return prediction.boxes.map((b) => {
    const a = toOriginal(lb, b.x, b.y);
    const c = toOriginal(lb, b.x + b.width, b.y + b.height);
    const x0 = Math.max(0, Math.min(width, a.x));
    const y0 = Math.max(0, Math.min(height, a.y));
    const x1 = Math.max(0, Math.min(width, c.x));
    const y1 = Math.max(0, Math.min(height, c.y));
    return { x: Math.round(x0), y: Math.round(y0), width: Math.round(x1 - x0), height: Math.round(y1 - y0), level: b.level };
  }).filter((b) => b.width > 0 && b.height > 0);
}

/**
 * The heat map resampled onto the original image's extent (padding cut away), at most 256 px on
 * its longer side, so a viewer can stretch it over the image as it is.
 */
export function heatmapOverImage(prediction: Prediction, lb: Letterbox, width: number, height: number, maxSide = 256): GreyImage {
  const scale = Math.min(1, maxSide / Math.max(width, height));
  const w = Math.max(1, Math.round(width * scale));
  const h = Math.max(1, Math.round(height * scale));
  const hs = prediction.heatmapSize;
  const perModelPixel = hs / lb.size;
  const data = new Float32Array(w * h);
  for (let oy = 0; oy < h; oy++) {
    const y = ((oy + 0.5) / h) * height;
    const hy = Math.min(hs - 1, Math.max(0, (y * lb.scale + lb.offsetY) * perModelPixel - 0.5));
    const y0 = Math.floor(hy);
    const y1 = Math.min(hs - 1, y0 + 1);
    const fy = hy - y0;
    for (let ox = 0; ox < w; ox++) {
      const x = ((ox + 0.5) / w) * width;
      const hx = Math.min(hs - 1, Math.max(0, (x * lb.scale + lb.offsetX) * perModelPixel - 0.5));
      const x0 = Math.floor(hx);
      const x1 = Math.min(hs - 1, x0 + 1);
      const fx = hx - x0;
      const m = prediction.heatmap;
      data[oy * w + ox] = (m[y0 * hs + x0] * (1 - fx) + m[y0 * hs + x1] * fx) * (1 - fy) + (m[y1 * hs + x0] * (1 - fx) + m[y1 * hs + x1] * fx) * fy;
    }
  }
  return { width: w, height: h, data };
}
