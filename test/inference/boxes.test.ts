import { describe, expect, it } from 'vitest';
import { extractBoxes, flagFor } from '../../services/inference/index.js';

function heat(size: number, cells: [number, number, number][]) {
  const h = new Float32Array(size * size).fill(0.01);
  for (const [x, y, v] of cells) h[y * size + x] = v;
  return h;
}
const thresholds = { doubt: 0.3, definite: 0.7 };

describe('extractBoxes', () => {
  it('finds connected components in model-input pixels, strongest first', () => {
    const h = heat(8, [[1, 1, 0.4], [2, 1, 0.5], [2, 2, 0.35], [6, 5, 0.9], [4, 4, 0.2]]);
    const boxes = extractBoxes(h, 8, { stride: 8, thresholds });
    expect(boxes).toHaveLength(2);
    expect(boxes[0]).toMatchObject({ x: 48, y: 40, width: 8, height: 8, level: 'definite' });
    expect(boxes[0].score).toBeCloseTo(0.9, 6);
    expect(boxes[1]).toMatchObject({ x: 8, y: 8, width: 16, height: 16, level: 'doubt' });
    expect(boxes[1].score).toBeCloseTo(0.5, 6);
  });

  it('does not join diagonal neighbours', () => {
    const boxes = extractBoxes(heat(4, [[0, 0, 0.5], [1, 1, 0.5]]), 4, { stride: 4, thresholds });
    expect(boxes).toHaveLength(2);
  });

  it('caps the level at the image flag and returns nothing for none', () => {
    const h = heat(8, [[3, 3, 0.95]]);
    expect(extractBoxes(h, 8, { stride: 8, thresholds, maxLevel: 'doubt' })[0].level).toBe('doubt');
    expect(extractBoxes(h, 8, { stride: 8, thresholds, maxLevel: 'none' })).toEqual([]);
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
