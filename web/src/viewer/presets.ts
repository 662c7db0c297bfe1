/**
 * Window/level presets for projection radiographs. X-ray pixel values have no fixed scale (unlike
 * CT's Hounsfield units), so the presets are relative to the image's own value range (1st–99th
 * percentile, sampled), mirrored for MONOCHROME1 where bone is the low values.
 */
export interface Preset { key: string; name: string; compute(stats: RangeStats): { windowWidth: number; windowCenter: number } | 'default' }

export interface RangeStats { low: number; high: number; monochrome1: boolean }

const rel = (s: RangeStats, centre: number, width: number) => {
  const range = Math.max(1, s.high - s.low);
  const c = s.monochrome1 ? 1 - centre : centre;
  return { windowWidth: Math.max(1, range * width), windowCenter: s.low + range * c };
};

export const PRESETS: Preset[] = [
  { key: '1', name: 'Default (from the image)', compute: () => 'default' },
  { key: '2', name: 'Full range', compute: (s) => rel(s, 0.5, 1.0) },
  { key: '3', name: 'Bone', compute: (s) => rel(s, 0.68, 0.45) },
  { key: '4', name: 'Soft tissue', compute: (s) => rel(s, 0.35, 0.5) },
  { key: '5', name: 'High contrast', compute: (s) => rel(s, 0.55, 0.25) },
];

/** 1st and 99th percentiles of the stored values (every n-th pixel), for the presets. */
export function rangeStats(pixels: ArrayLike<number>, monochrome1: boolean): RangeStats {
  const step = Math.max(1, Math.floor(pixels.length / 40_000));
  const sample: number[] = [];
  for (let i = 0; i < pixels.length; i += step) sample.push(pixels[i]);
  sample.sort((a, b) => a - b);
  const at = (q: number) => sample[Math.min(sample.length - 1, Math.floor(q * (sample.length - 1)))] ?? 0;
  return { low: at(0.01), high: at(0.99), monochrome1 };
}
