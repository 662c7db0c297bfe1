/** Modality LUT, VOI LUT and presentation LUT (PS3.3 C.11), producing display intensity in [0, 1]. */
import type { ImageInfo, Lut } from './dataset.js';

export interface WindowChoice {
  center: number;
  width: number;
  source: 'dicom' | 'voi-lut' | 'percentile';
}

/** Modality LUT: LUT sequence if present, else rescale slope/intercept. Integer result stays Int32Array. */
export function applyModality(info: ImageInfo, values: Int32Array, transforms: string[]): Int32Array | Float32Array {
  if (info.modalityLut) {
    const lut = info.modalityLut;
    transforms.push(`modality LUT sequence (${lut.entries} entries, first ${lut.firstMapped}, ${lut.bits} bits)`);
    const out = new Int32Array(values.length);
    lutLookup(lut, values, (i, v) => (out[i] = v));
    return out;
  }
  const { rescaleSlope: m, rescaleIntercept: b } = info;
  if (m === 1 && b === 0) return values;
  transforms.push(`rescale slope ${m} intercept ${b}`);
  if (Number.isInteger(m) && Number.isInteger(b)) {
    const out = new Int32Array(values.length);
    for (let i = 0; i < values.length; i++) out[i] = values[i] * m + b;
    return out;
  }
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = values[i] * m + b;
  return out;
}

function lutLookup(lut: Lut, values: ArrayLike<number>, set: (i: number, v: number) => void) {
  const last = lut.entries - 1;
  for (let i = 0; i < values.length; i++) {
    let k = Math.round(values[i]) - lut.firstMapped;
    if (k < 0) k = 0;
    else if (k > last) k = last;
    set(i, lut.data[k]);
  }
}

/** 0.5th / 99.5th percentile of the modality values, ignoring pixel padding: a robust window when the file has none. */
export function percentileWindow(values: Int32Array | Float32Array, padding?: number, lowQ = 0.005, highQ = 0.995): { center: number; width: number } {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === padding) continue;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (!Number.isFinite(min)) return { center: 0.5, width: 1 };
  if (max === min) return { center: min, width: 1 };
  const bins = Math.min(65536, Math.max(256, Math.ceil(max - min) + 1));
  const scale = (bins - 1) / (max - min);
  const hist = new Uint32Array(bins);
  let count = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === padding) continue;
    hist[Math.round((v - min) * scale)]++;
    count++;
  }
  const at = (q: number) => {
    const target = q * (count - 1);
    let acc = 0;
    for (let b = 0; b < bins; b++) {
      acc += hist[b];
      if (acc > target) return min + b / scale;
    }
    return max;
  };
  const lo = at(lowQ);
  const hi = at(highQ);
  const width = Math.max(1, hi - lo);
  return { center: (lo + hi) / 2, width };
}

export interface VoiOptions {
  /** Which of several stored windows to use (default 0). */
  windowIndex?: number;
  /** Force a VOI source; default: stored window, else VOI LUT sequence, else percentile. */
  voi?: 'dicom' | 'voi-lut' | 'percentile';
  /** Explicit window, overrides the file. */
  window?: { center: number; width: number };
}

/**
 * VOI then presentation: returns display intensities in [0, 1] with bone bright.
 * MONOCHROME1 (minimum = white) and Presentation LUT Shape INVERSE both invert, once.
 */
export function toDisplay(
  info: ImageInfo,
  modality: Int32Array | Float32Array,
  opts: VoiOptions,
  transforms: string[],
): { data: Float32Array; window: WindowChoice } {
  const n = modality.length;
  const out = new Float32Array(n);
  let window: WindowChoice;
  const wantLut = opts.voi === 'voi-lut' || (opts.voi === undefined && !opts.window && info.windows.length === 0 && info.voiLuts.length > 0);
  if (wantLut && info.voiLuts.length > 0) {
    const lut = info.voiLuts[Math.min(opts.windowIndex ?? 0, info.voiLuts.length - 1)];
    const maxOut = 2 ** lut.bits - 1;
    lutLookup(lut, modality, (i, v) => (out[i] = Math.min(1, v / maxOut)));
    window = { center: lut.firstMapped + lut.entries / 2, width: lut.entries, source: 'voi-lut' };
    transforms.push(`VOI LUT sequence (${lut.entries} entries, first ${lut.firstMapped}, ${lut.bits} bits${lut.explanation ? `, ${lut.explanation}` : ''})`);
  } else {
    let w: { center: number; width: number };
    let source: WindowChoice['source'];
    if (opts.window) {
      w = opts.window;
      source = 'dicom';
    } else if (opts.voi !== 'percentile' && info.windows.length > 0) {
      w = info.windows[Math.min(opts.windowIndex ?? 0, info.windows.length - 1)];
      source = 'dicom';
    } else {
      w = percentileWindow(modality, info.pixelPaddingValue);
      source = 'percentile';
    }
    window = { center: w.center, width: w.width, source };
    const fn = source === 'percentile' ? 'LINEAR' : info.voiLutFunction;
    applyWindow(modality, out, w.center, w.width, fn);
    transforms.push(`VOI window ${fn} center ${round(w.center)} width ${round(w.width)} (${source})`);
  }
  // MONOCHROME1 + INVERSE (the DX convention) is one inversion. MONOCHROME1 + IDENTITY contradicts
  // itself; we follow the photometric interpretation so bone stays bright (dcmtk would not invert).
  const mono1 = info.photometric === 'MONOCHROME1';
  const invert = mono1 || info.presentationLutShape === 'INVERSE';
  if (invert) {
    for (let i = 0; i < n; i++) out[i] = 1 - out[i];
    transforms.push(mono1 ? 'MONOCHROME1 inverted (minimum is white)' : 'presentation LUT shape INVERSE');
    if (mono1 && info.presentationLutShape === 'IDENTITY')
      transforms.push('Presentation LUT Shape IDENTITY ignored: contradicts MONOCHROME1 (kept bone bright)');
  }
  return { data: out, window };
}

function round(v: number) {
  return Math.round(v * 1000) / 1000;
}

/** PS3.3 C.11.2.1.2: LINEAR, LINEAR_EXACT and SIGMOID, output in [0, 1]. */
export function applyWindow(src: ArrayLike<number>, out: Float32Array, c: number, w: number, fn: string) {
  const n = out.length;
  if (fn === 'SIGMOID') {
    for (let i = 0; i < n; i++) out[i] = 1 / (1 + Math.exp((-4 * (src[i] - c)) / w));
  } else if (fn === 'LINEAR_EXACT') {
    const lo = c - w / 2;
    const hi = c + w / 2;
    for (let i = 0; i < n; i++) {
      const x = src[i];
      out[i] = x <= lo ? 0 : x > hi ? 1 : (x - c) / w + 0.5;
    }
  } else {
    if (w < 1) w = 1;
    const lo = c - 0.5 - (w - 1) / 2;
    const hi = c - 0.5 + (w - 1) / 2;
    const k = w > 1 ? 1 / (w - 1) : 0;
    for (let i = 0; i < n; i++) {
      const x = src[i];
      out[i] = x <= lo ? 0 : x > hi ? 1 : (x - (c - 0.5)) * k + 0.5;
    }
  }
}
