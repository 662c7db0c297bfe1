/**
 * Boxes from a fracture heat map, made to agree with the image flag: threshold + 4-connected
 * components, each box drawn tight around its blob's core (not the whole bone the blob spreads
 * over), overlapping boxes merged, at most three, and no box louder than the image:
 * - a not-flagged image gets no boxes;
 * - a "doubt" image gets only doubt boxes;
 * - a "definite" image shows at least one definite (solid) box: its strongest.
 * Boxes carry no number: heat-map values are not on the calibrated-probability scale of the image
 * score, so showing them beside it would give two disagreeing figures (issue 15).
 */

export type BoxLevel = 'doubt' | 'definite';

export interface Box {
  /** Model-input pixel coordinates (map to the original with toOriginal from letterbox.ts). */
  x: number;
  y: number;
  width: number;
  height: number;
  level: BoxLevel;
  /** Highest heat-map value (0..1) inside the box: for ordering only, not a probability, never shown. */
  peak: number;
}

export interface BoxOptions {
  /** Heat-map cell size in model-input pixels. */
  stride: number;
  /** Cells at or above `doubt` form components; a component whose peak reaches `definite` is 'definite'. */
  thresholds: { doubt: number; definite: number };
  /** The image-level flag: the highest level a box may have ('none' returns no boxes). */
  maxLevel?: 'none' | BoxLevel;
  /** If nothing passes the threshold but the image is flagged, return the blob around the peak. */
  fallbackToPeak?: boolean;
  /** At most this many boxes, strongest first (default 3). */
  maxBoxes?: number;
  /** A box is drawn around the cells of its blob at or above this share of the blob's peak (default 0.5). */
  coreShare?: number;
  /** Longest side of a box, as a share of the heat map's side (default 0.25): a box marks a place, not a bone. */
  maxSideShare?: number;
}

export const MAX_BOXES = 3;

/** heat: size*size values in 0..1, row-major. */
export function extractBoxes(heat: Float32Array, size: number, opts: BoxOptions): Box[] {
  const maxLevel = opts.maxLevel ?? 'definite';
  if (maxLevel === 'none') return [];
  let cells = components(heat, size, opts.thresholds.doubt);
  if (cells.length === 0 && opts.fallbackToPeak) {
    let peak = 0;
    for (let i = 0; i < heat.length; i++) if (heat[i] > peak) peak = heat[i];
    if (peak > 0) cells = components(heat, size, peak * 0.5).sort((a, b) => b.peak - a.peak).slice(0, 1);
  }
  const coreShare = opts.coreShare ?? 0.5;
  const maxSide = Math.max(1, Math.round(size * (opts.maxSideShare ?? 0.25)));
  const boxes = merge(cells.map((c) => tightBox(heat, size, c, coreShare, maxSide, opts.thresholds.definite)), maxSide)
    .sort((a, b) => b.peak - a.peak)
    .slice(0, opts.maxBoxes ?? MAX_BOXES);
  if (maxLevel === 'doubt') for (const b of boxes) b.level = 'doubt';
  // The image is definite: its strongest box says so, whatever its own peak.
  if (maxLevel === 'definite' && boxes.length) boxes[0].level = 'definite';
  const s = opts.stride;
  return boxes.map((b) => ({ x: b.x0 * s, y: b.y0 * s, width: (b.x1 - b.x0 + 1) * s, height: (b.y1 - b.y0 + 1) * s, level: b.level, peak: b.peak }));
}

/** A box in heat-map cells, inclusive. */
interface CellBox { x0: number; y0: number; x1: number; y1: number; peak: number; level: BoxLevel; peakX: number; peakY: number }

interface Component { cells: number[]; peak: number; peakAt: number }

function components(heat: Float32Array, size: number, threshold: number): Component[] {
  const label = new Int32Array(size * size).fill(-1);
  const stack: number[] = [];
  const found: Component[] = [];
  for (let start = 0; start < size * size; start++) {
    if (label[start] !== -1 || !(heat[start] >= threshold)) continue;
    const id = found.length;
    const component: Component = { cells: [], peak: 0, peakAt: start };
    label[start] = id;
    stack.push(start);
    while (stack.length) {
      const k = stack.pop()!;
      const x = k % size, y = (k - x) / size;
      component.cells.push(k);
      if (heat[k] > component.peak) {
        component.peak = heat[k];
        component.peakAt = k;
      }
      const nb = [x > 0 ? k - 1 : -1, x < size - 1 ? k + 1 : -1, y > 0 ? k - size : -1, y < size - 1 ? k + size : -1];
      for (const n of nb) {
        if (n >= 0 && label[n] === -1 && heat[n] >= threshold) {
          label[n] = id;
          stack.push(n);
        }
      }
    }
    found.push(component);
  }
  return found;
}

/** The box around a blob's core (cells at or above coreShare of its peak), no side longer than maxSide, centred on the peak when cut. */
function tightBox(heat: Float32Array, size: number, c: Component, coreShare: number, maxSide: number, definite: number): CellBox {
  const floor = c.peak * coreShare;
  let x0 = size, y0 = size, x1 = -1, y1 = -1;
  for (const k of c.cells) {
    if (heat[k] < floor) continue;
    const x = k % size, y = (k - x) / size;
    if (x < x0) x0 = x;
    if (x > x1) x1 = x;
    if (y < y0) y0 = y;
    if (y > y1) y1 = y;
  }
  const px = c.peakAt % size, py = (c.peakAt - px) / size;
  [x0, x1] = clampSpan(x0, x1, px, maxSide);
  [y0, y1] = clampSpan(y0, y1, py, maxSide);
  return { x0, y0, x1, y1, peak: c.peak, level: c.peak >= definite ? 'definite' : 'doubt', peakX: px, peakY: py };
}

/** Cuts [a, b] to at most `max` cells around `centre`, staying inside [a, b]. */
function clampSpan(a: number, b: number, centre: number, max: number): [number, number] {
  if (b - a + 1 <= max) return [a, b];
  let lo = Math.max(a, centre - Math.floor((max - 1) / 2));
  const hi = Math.min(b, lo + max - 1);
  lo = hi - max + 1;
  return [lo, hi];
}

const overlap = (a: CellBox, b: CellBox) => a.x0 <= b.x1 && b.x0 <= a.x1 && a.y0 <= b.y1 && b.y0 <= a.y1;

/**
 * Merges overlapping boxes into their union until none overlap; the merged box keeps the higher
 * peak and level, and is cut again to maxSide around the stronger peak.
 */
function merge(boxes: CellBox[], maxSide: number): CellBox[] {
  const out = [...boxes];
  for (let changed = true; changed; ) {
    changed = false;
    for (let i = 0; i < out.length && !changed; i++) {
      for (let j = i + 1; j < out.length; j++) {
        if (!overlap(out[i], out[j])) continue;
        const a = out[i], b = out[j];
        const strong = a.peak >= b.peak ? a : b;
        const [x0, x1] = clampSpan(Math.min(a.x0, b.x0), Math.max(a.x1, b.x1), strong.peakX, maxSide);
        const [y0, y1] = clampSpan(Math.min(a.y0, b.y0), Math.max(a.y1, b.y1), strong.peakY, maxSide);
        out[i] = {
          x0, y0, x1, y1, peak: strong.peak, peakX: strong.peakX, peakY: strong.peakY,
          level: a.level === 'definite' || b.level === 'definite' ? 'definite' : 'doubt',
        };
        out.splice(j, 1);
        changed = true;
        break;
      }
    }
  }
  return out;
}
