import { describe, expect, it } from 'vitest';
import { calibrate, checkCalibration, extractBoxes, flagFor } from '../../services/inference/index.js';

function heat(size: number, cells: [number, number, number][]) {
  const h = new Float32Array(size * size).fill(0.01);
  for (const [x, y, v] of cells) h[y * size + x] = v;
  return h;
}
/** A filled rectangle of cells with value v. */
const rect = (x0: number, y0: number, w: number, h: number, v: number): [number, number, number][] =>
  Array.from({ length: w * h }, (_, i) => [x0 + (i % w), y0 + Math.floor(i / w), v]);
const thresholds = { doubt: 0.3, definite: 0.7 };

describe('extractBoxes', () => {
  it('finds connected components in model-input pixels, strongest first, without a number', () => {
    const h = heat(8, [[1, 1, 0.4], [2, 1, 0.5], [2, 2, 0.35], [6, 5, 0.9], [4, 4, 0.2]]);
    const boxes = extractBoxes(h, 8, { stride: 8, thresholds });
    expect(boxes).toHaveLength(2);
    expect(boxes[0]).toMatchObject({ x: 48, y: 40, width: 8, height: 8, level: 'definite' });
    expect(boxes[1]).toMatchObject({ x: 8, y: 8, width: 16, height: 16, level: 'doubt' });
    // No score to show: heat values are not on the image probability's scale.
    for (const b of boxes) expect(b).not.toHaveProperty('score');
  });

  it('does not join diagonal neighbours', () => {
    const boxes = extractBoxes(heat(4, [[0, 0, 0.5], [1, 1, 0.5]]), 4, { stride: 4, thresholds, maxBoxes: 10 });
    expect(boxes).toHaveLength(2);
  });

  it('gives a not-flagged image no boxes and a doubt image only doubt boxes', () => {
    const h = heat(8, [[3, 3, 0.95]]);
    expect(extractBoxes(h, 8, { stride: 8, thresholds, maxLevel: 'doubt' })[0].level).toBe('doubt');
    expect(extractBoxes(h, 8, { stride: 8, thresholds, maxLevel: 'none', fallbackToPeak: true })).toEqual([]);
  });

  it('shows a definite image with a solid box even when no blob reaches the definite heat threshold', () => {
    const h = heat(16, [[2, 2, 0.5], [12, 12, 0.4]]);
    const boxes = extractBoxes(h, 16, { stride: 8, thresholds, maxLevel: 'definite' });
    expect(boxes.map((b) => b.level)).toEqual(['definite', 'doubt']);
    expect(boxes[0]).toMatchObject({ x: 16, y: 16 });
  });

  it('keeps at most three boxes, the strongest', () => {
    const h = heat(20, [[1, 1, 0.4], [5, 1, 0.9], [9, 1, 0.5], [13, 1, 0.8], [17, 1, 0.6]]);
    const boxes = extractBoxes(h, 20, { stride: 1, thresholds });
    expect(boxes.map((b) => b.x)).toEqual([5, 13, 17]);
  });

  it('merges boxes that overlap into one', () => {
    // An L-shaped blob and a separate cell inside its bounding box: two components, one place.
    const h = heat(8, [[1, 1, 0.5], [2, 1, 0.5], [3, 1, 0.5], [3, 2, 0.5], [3, 3, 0.5], [1, 3, 0.45]]);
    const boxes = extractBoxes(h, 8, { stride: 8, thresholds, maxBoxes: 10, maxSideShare: 1 });
    expect(boxes).toHaveLength(1);
    expect(boxes[0]).toMatchObject({ x: 8, y: 8, width: 24, height: 24 });
  });

  it('draws a box tight around the blob core, not around the whole bone the heat spreads over', () => {
    // A faint column the length of a tibia (heat above threshold), with its peak in a 2x2 spot.
    const h = heat(40, [...rect(18, 4, 3, 32, 0.35), ...rect(19, 20, 2, 2, 0.9)]);
    const [box] = extractBoxes(h, 40, { stride: 8, thresholds });
    expect(box).toMatchObject({ x: 19 * 8, y: 20 * 8, width: 16, height: 16, level: 'definite' });
    // A uniformly hot column is cut to a quarter of the image side, around its peak.
    const flat = extractBoxes(heat(40, rect(18, 2, 3, 36, 0.8)), 40, { stride: 8, thresholds });
    expect(flat).toHaveLength(1);
    expect(flat[0].height).toBe(10 * 8);
    expect(flat[0].width).toBe(3 * 8);
  });

  it('falls back to the peak when a flagged image has no cell above threshold', () => {
    const h = heat(8, [[5, 2, 0.2], [5, 3, 0.15]]);
    expect(extractBoxes(h, 8, { stride: 8, thresholds, maxLevel: 'doubt' })).toEqual([]);
    const boxes = extractBoxes(h, 8, { stride: 8, thresholds, maxLevel: 'doubt', fallbackToPeak: true });
    expect(boxes).toHaveLength(1);
    expect(boxes[0]).toMatchObject({ x: 40, y: 16, width: 8, height: 16, level: 'doubt' });
  });
});

describe('flagFor', () => {
  it('maps calibrated probability to the operating points', () => {
    const op = { doubt: 0.2, definite: 0.6 };
    expect(flagFor(0.1, op)).toBe('none');
    expect(flagFor(0.2, op)).toBe('doubt');
    expect(flagFor(0.59, op)).toBe('doubt');
    expect(flagFor(0.6, op)).toBe('definite');
  });
});

describe('calibrate', () => {
  it('applies Platt and isotonic maps as training/metrics.py does', () => {
    expect(calibrate(1, { type: 'platt', a: 2, b: -1 })).toBeCloseTo(1 / (1 + Math.exp(-1)), 12);
    const iso = checkCalibration({ type: 'isotonic', x: [-2, 0, 3], p: [0.05, 0.2, 0.8] });
    expect(calibrate(-5, iso)).toBe(0.05); // flat outside the knots
    expect(calibrate(9, iso)).toBe(0.8);
    expect(calibrate(-1, iso)).toBeCloseTo(0.125, 12); // linear between knots
    expect(calibrate(1.5, iso)).toBeCloseTo(0.5, 12);
    expect(calibrate(0, iso)).toBeCloseTo(0.2, 12);
  });

  it('refuses a calibration it cannot apply, with a clear error', () => {
    for (const bad of [undefined, { type: 'beta' }, { type: 'platt', a: 'x', b: 0 },
      { type: 'isotonic', x: [0, 1], p: [0.5] }, { type: 'isotonic', x: [1, 0], p: [0.1, 0.2] },
      { type: 'isotonic', x: [0, 1], p: [0.3, 0.2] }, { type: 'isotonic', x: [0, 1], p: [0.1, 1.2] }]) {
      expect(() => checkCalibration(bad)).toThrow(/calibration/);
    }
  });
});
