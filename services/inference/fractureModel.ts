/**
 * The fracture model (TF.js inference only). Loads models/<name>/{manifest.json, model.json,
 * weights.bin} from disk with a small IOHandler (no tfjs-node needed), normalises the letterboxed
 * input as the manifest says, and turns the two outputs (heat-map logits, image logit) into a
 * calibrated probability, a flag at the two operating points, a heat map and boxes.
 *
 * Input contract: letterbox() from services/imaging/letterbox.ts at manifest.inputSize.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { selectBackend, tf, type Backend } from './backend.js';
import { extractBoxes, type Box } from './boxes.js';
import './fusedConv.js'; // registers the FusedConv2D layer class model v2 uses

export type { Backend } from './backend.js';
export type { Box } from './boxes.js';

export interface ModelManifest {
  name: string;
  version: string;
  modelFile: string;
  inputSize: number;
  normalisation: { mean: number; std: number };
  score: { mode: 'cls' | 'heat_topk' | 'mean'; topk: number };
  calibration: Calibration;
  operatingPoints: { doubt: number; definite: number };
  heatmap: { stride: number; size: number; boxThresholds: { doubt: number; definite: number } };
  training?: Record<string, unknown>;
}

/**
 * Raw score -> probability, fitted on the calibration part by training/train_v2.py: Platt (or
 * temperature, written as Platt with b = 0) or isotonic (knots, linear in between, flat outside).
 */
export type Calibration =
  | { type: 'platt'; a: number; b: number }
  | { type: 'isotonic'; x: number[]; p: number[] };

export interface Prediction {
  /** Calibrated probability of a fracture. */
  probability: number;
  /** Pre-calibration score (a logit; see manifest.score.mode). */
  rawScore: number;
  flag: 'none' | 'doubt' | 'definite';
  /** heatmapSize² values in 0..1; cell (i, j) covers model-input pixels [j*stride, (j+1)*stride) × [i*stride, …). */
  heatmap: Float32Array;
  heatmapSize: number;
  /** Model-input pixel coordinates. */
  boxes: Box[];
}

export interface RawOutputs {
  /** Heat-map logits, heatmapSize² values. */
  heat: Float32Array;
  /** Image logit of the classification head. */
  cls: number;
}

export interface FractureModel {
  name: string;
  version: string;
  /** TF.js backend actually used: 'tensorflow' (tfjs-node), 'wasm' or 'cpu'. */
  backend: string;
  inputSize: number;
  operatingPoints: { doubt: number; definite: number };
  manifest: ModelManifest;
  /** input: inputSize² Float32Array from letterbox(), values in [0, 1]. */
  predict(input: Float32Array): Promise<Prediction>;
  /** The network's outputs before any post-processing (used by the parity test). */
  raw(input: Float32Array): Promise<RawOutputs>;
  dispose(): void;
}

/** Reads a layers model from disk: model.json + the weight files it lists. */
export function fileIOHandler(modelJsonPath: string): tf.io.IOHandler {
  return {
    async load() {
      const json = JSON.parse(await readFile(modelJsonPath, 'utf8'));
      const dir = path.dirname(modelJsonPath);
      const specs: tf.io.WeightsManifestEntry[] = [];
      const buffers: Buffer[] = [];
      for (const group of json.weightsManifest as { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[]) {
        specs.push(...group.weights);
        for (const p of group.paths) buffers.push(await readFile(path.join(dir, p)));
      }
      const all = Buffer.concat(buffers);
      const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) as ArrayBuffer;
      return {
        modelTopology: json.modelTopology,
        weightSpecs: specs,
        weightData,
        format: json.format,
        generatedBy: json.generatedBy,
        convertedBy: json.convertedBy,
      };
    },
  };
}

export function sigmoid(v: number): number {
  return 1 / (1 + Math.exp(-v));
}

/** Image score from the raw outputs, as training/train.py defines it. */
export function rawScoreFrom(out: RawOutputs, score: ModelManifest['score']): number {
  const topk = () => {
    const sorted = Float32Array.from(out.heat).sort();
    let s = 0;
    for (let i = 0; i < score.topk; i++) s += sorted[sorted.length - 1 - i];
    return s / score.topk;
  };
  switch (score.mode) {
    case 'cls':
      return out.cls;
    case 'heat_topk':
      return topk();
    case 'mean':
      return (out.cls + topk()) / 2;
  }
}

export function calibrate(rawScore: number, c: Calibration): number {
  if (c.type === 'platt') return sigmoid(c.a * rawScore + c.b);
  const { x, p } = c;
  if (rawScore <= x[0]) return p[0];
  if (rawScore >= x[x.length - 1]) return p[p.length - 1];
  let i = 1;
  while (x[i] < rawScore) i++;
  return p[i - 1] + ((p[i] - p[i - 1]) * (rawScore - x[i - 1])) / (x[i] - x[i - 1]);
}

/** Refuses a manifest whose calibration the worker cannot apply (a clear error at load, not NaN scores). */
export function checkCalibration(c: unknown): Calibration {
  const o = (c ?? {}) as Record<string, unknown>;
  const finite = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
  if (o.type === 'platt' && finite(o.a) && finite(o.b)) return o as unknown as Calibration;
  if (o.type === 'isotonic' && Array.isArray(o.x) && Array.isArray(o.p)) {
    const x = o.x as unknown[], p = o.p as unknown[];
    if (x.length >= 1 && x.length === p.length && x.every(finite) && p.every((v) => finite(v) && (v as number) >= 0 && (v as number) <= 1) &&
        x.every((v, i) => i === 0 || (v as number) > (x[i - 1] as number)) &&
        p.every((v, i) => i === 0 || (v as number) >= (p[i - 1] as number))) {
      return o as unknown as Calibration;
    }
  }
  throw new Error(`model manifest: unsupported or malformed calibration ${JSON.stringify(o).slice(0, 120)}`);
}

export function flagFor(p: number, op: { doubt: number; definite: number }): Prediction['flag'] {
  return p >= op.definite ? 'definite' : p >= op.doubt ? 'doubt' : 'none';
}

export async function loadFractureModel(dir: string, opts: { backend?: Backend } = {}): Promise<FractureModel> {
  const manifest = JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')) as ModelManifest;
  manifest.calibration = checkCalibration(manifest.calibration);
  const backend = await selectBackend(opts.backend ?? 'auto');
  const model = await tf.loadLayersModel(fileIOHandler(path.join(dir, manifest.modelFile ?? 'model.json')));
  const S = manifest.inputSize;
  const { mean, std } = manifest.normalisation;
  const hs = manifest.heatmap.size;

  async function raw(input: Float32Array): Promise<RawOutputs> {
    if (input.length !== S * S) throw new Error(`expected ${S}x${S} input, got ${input.length} values`);
    const x = new Float32Array(input.length);
    for (let i = 0; i < input.length; i++) x[i] = (input[i] - mean) / std;
    const [heatT, clsT] = tf.tidy(() => model.predict(tf.tensor4d(x, [1, S, S, 1])) as tf.Tensor[]);
    try {
      const [heat, cls] = await Promise.all([heatT.data(), clsT.data()]);
      return { heat: Float32Array.from(heat as Float32Array), cls: cls[0] };
    } finally {
      heatT.dispose();
      clsT.dispose();
    }
  }

  return {
    name: manifest.name,
    version: manifest.version,
    backend,
    inputSize: S,
    operatingPoints: { ...manifest.operatingPoints },
    manifest,
    raw,
    async predict(input) {
      const out = await raw(input);
      const rawScore = rawScoreFrom(out, manifest.score);
      const probability = calibrate(rawScore, manifest.calibration);
      const flag = flagFor(probability, manifest.operatingPoints);
      const heatmap = new Float32Array(out.heat.length);
      for (let i = 0; i < heatmap.length; i++) heatmap[i] = sigmoid(out.heat[i]);
      const boxes = extractBoxes(heatmap, hs, {
        stride: manifest.heatmap.stride,
        thresholds: manifest.heatmap.boxThresholds,
        maxLevel: flag,
        fallbackToPeak: true,
      });
      return { probability, rawScore, flag, heatmap, heatmapSize: hs, boxes };
    },
    dispose() {
      model.dispose();
    },
  };
}
