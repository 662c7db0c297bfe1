/** Boxes from a fracture heat map: threshold + 4-connected components. */

export type BoxLevel = 'doubt' | 'definite';

export interface Box {
  /** Model-input pixel coordinates (map to the original with toOriginal from letterbox.ts). */
  x: number;
  y: number;
  width: number;
  height: number;
  /** Highest heat-map value (0..1) inside the component. */
  score: number;
  level: BoxLevel;
}

export interface BoxOptions {
  /** Heat-map cell size in model-input pixels. */
  stride: number;
  /** Cells at or above `doubt` form components; a component whose peak reaches `definite` is 'definite'. */
  thresholds: { doubt: number; definite: number };
  /** Highest level a box may have (the image-level flag); 'none' returns no boxes. */
  maxLevel?: 'none' | BoxLevel;
  /** If nothing passes the threshold but maxLevel is not 'none', return the component around the peak. */
  fallbackToPeak?: boolean;
  maxBoxes?: number;
}

/** heat: size*size values in 0..1, row-major. */
export function extractBoxes(heat: Float32Array, size: number, opts: BoxOptions): Box[] {
  const maxLevel = opts.maxLevel ?? 'definite';
  if (maxLevel === 'none') return [];
  let boxes = components(heat, size, opts.thresholds.doubt, opts);
  if (boxes.length === 0 && opts.fallbackToPeak) {
    let peak = 0;
    for (let i = 0; i < heat.length; i++) if (heat[i] > peak) peak = heat[i];
    if (peak > 0) boxes = components(heat, size, peak * 0.5, opts).slice(0, 1);
  }
  for (const b of boxes) if (maxLevel === 'doubt') b.level = 'doubt';
  return boxes.slice(0, opts.maxBoxes ?? 10);
}

function components(heat: Float32Array, size: number, threshold: number, opts: BoxOptions): Box[] {
  const label = new Int32Array(size * size).fill(-1);
  const stack: number[] = [];
  const boxes: Box[] = [];
  for (let start = 0; start < size * size; start++) {
    if (label[start] !== -1 || !(heat[start] >= threshold)) continue;
    const id = boxes.length;
    let x0 = size, y0 = size, x1 = -1, y1 = -1, peak = 0;
    label[start] = id;
    stack.push(start);
    while (stack.length) {
      const k = stack.pop()!;
      const x = k % size, y = (k - x) / size;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
      if (heat[k] > peak) peak = heat[k];
      const nb = [x > 0 ? k - 1 : -1, x < size - 1 ? k + 1 : -1, y > 0 ? k - size : -1, y < size - 1 ? k + size : -1];
      for (const n of nb) {
        if (n >= 0 && label[n] === -1 && heat[n] >= threshold) {
          label[n] = id;
          stack.push(n);
        }
      }
    }
    const s = opts.stride;
    boxes.push({
      x: x0 * s, y: y0 * s, width: (x1 - x0 + 1) * s, height: (y1 - y0 + 1) * s,
      score: peak, level: peak >= opts.thresholds.definite ? 'definite' : 'doubt',
    });
  }
  return boxes.sort((a, b) => b.score - a.score);
}
