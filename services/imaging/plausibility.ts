/**
 * Is a decoded image plausibly an X-ray the model can read? A damaged file can decode without an
 * error into a nearly black, white or noisy frame, and the model would then score it "not flagged".
 * This check (pure, no I/O) runs on the display image the model sees; an image that fails it gets
 * the AI state "unreadable" with the reason in plain words instead of a score.
 *
 * The thresholds are chosen with a wide margin and proven on every FracAtlas image and every
 * sample (`npm run check:plausibility`, docs/benchmarks/plausibility.md): no false "unreadable" there.
 */
import type { GreyImage } from './letterbox.js';

export const PLAUSIBILITY_LIMITS = {
  /** Share of the pixels in the single most common of 256 grey levels; above it the image is blank. */
  maxDominantLevel: 0.9,
  /** Spread between the 1st and 99th percentile (display intensity 0..1); below it the image is blank. */
  minSpread: 0.02,
  /** Share of the pixels at the very top (white, >= 255/256 of the range); above it the image is burnt out (a real CR sample has 44 % from collimation). */
  maxSaturated: 0.85,
  /** Grey levels (of 256) that hold at least one pixel in 10,000; fewer is a posterised or synthetic frame, not a radiograph. */
  minLevels: 12,
  /** Correlation of horizontally adjacent pixels; radiographs are smooth (FracAtlas >= 0.7), noise is near 0. */
  minNeighbourCorrelation: 0.3,
} as const;

export interface PlausibilityMeasures {
  dominantLevel: number;
  spread: number;
  saturated: number;
  levels: number;
  neighbourCorrelation: number;
}

export type PlausibilityRule = 'decoder-warning' | 'blank' | 'saturated' | 'few-levels' | 'noise';

export type PlausibilityVerdict =
  | { readable: true; measures: PlausibilityMeasures }
  | { readable: false; rule: PlausibilityRule; reason: string; measures: PlausibilityMeasures | null };

const BINS = 256;

/** The numbers the rules look at (exported for the FracAtlas proof script). */
export function plausibilityMeasures(image: GreyImage): PlausibilityMeasures {
  const { data, width, height } = image;
  const n = data.length;
  const hist = new Float64Array(BINS);
  for (let i = 0; i < n; i++) {
    const v = data[i];
    // NaN (never expected) counts as black: it is not information either.
    const bin = v > 0 ? (v >= 1 ? BINS - 1 : Math.floor(v * BINS)) : 0;
    hist[bin]++;
  }
  let dominant = 0;
  let levels = 0;
  const minCount = Math.max(1, n / 10_000);
  for (let b = 0; b < BINS; b++) {
    if (hist[b] > dominant) dominant = hist[b];
    if (hist[b] >= minCount) levels++;
  }
  const percentile = (q: number) => {
    const target = q * n;
    let seen = 0;
    for (let b = 0; b < BINS; b++) {
      seen += hist[b];
      if (seen >= target) return (b + 0.5) / BINS;
    }
    return 1;
  };
  return {
    dominantLevel: n ? dominant / n : 1,
    spread: n ? percentile(0.99) - percentile(0.01) : 0,
    saturated: n ? hist[BINS - 1] / n : 0,
    levels,
    neighbourCorrelation: neighbourCorrelation(data, width, height),
  };
}

/** Pearson correlation of each pixel with its right-hand neighbour (1 for a constant image: no evidence of noise). */
function neighbourCorrelation(data: Float32Array, width: number, height: number): number {
  let sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0, m = 0;
  // Every row on small images, about 512 rows on large ones: the figure settles long before.
  const rowStep = Math.max(1, Math.floor(height / 512));
  for (let y = 0; y < height; y += rowStep) {
    const row = y * width;
    for (let x = 0; x + 1 < width; x++) {
      const a = data[row + x];
      const b = data[row + x + 1];
      sx += a; sy += b; sxx += a * a; syy += b * b; sxy += a * b; m++;
    }
  }
  if (m < 2) return 1;
  const cov = sxy / m - (sx / m) * (sy / m);
  const va = sxx / m - (sx / m) ** 2;
  const vb = syy / m - (sy / m) ** 2;
  if (va <= 1e-12 || vb <= 1e-12) return 1;
  return cov / Math.sqrt(va * vb);
}

const percent = (x: number) => `${Math.round(x * 100)} %`;

/**
 * The verdict on one decoded image. Decoder warnings count as errors: a decoder that had to
 * invent pixels (premature end of data, corrupt segment) has not given us the image.
 */
export function checkPlausibility(image: GreyImage, decoderWarnings: readonly string[] = []): PlausibilityVerdict {
  if (decoderWarnings.length) {
    return { readable: false, rule: 'decoder-warning', measures: null, reason: `the image data is damaged (${decoderWarnings[0]}); open the original in your PACS` };
  }
  const m = plausibilityMeasures(image);
  const L = PLAUSIBILITY_LIMITS;
  const no = (rule: PlausibilityRule, reason: string): PlausibilityVerdict => ({ readable: false, rule, reason, measures: m });
  if (m.dominantLevel > L.maxDominantLevel || m.spread < L.minSpread) {
    return no('blank', `the image is almost blank (${percent(m.dominantLevel)} of it is one grey level): likely damaged or empty, not read by the AI`);
  }
  if (m.saturated > L.maxSaturated) {
    return no('saturated', `the image is mostly burnt out (${percent(m.saturated)} pure white): not read by the AI`);
  }
  if (m.levels < L.minLevels) {
    return no('few-levels', `the image has only ${m.levels} grey levels, not what an X-ray looks like: likely damaged, not read by the AI`);
  }
  if (m.neighbourCorrelation < L.minNeighbourCorrelation) {
    return no('noise', 'the image looks like noise, not an X-ray: likely damaged, not read by the AI');
  }
  return { readable: true, measures: m };
}
