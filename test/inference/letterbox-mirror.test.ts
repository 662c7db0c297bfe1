import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { letterbox } from '../../services/imaging/letterbox.js';
import { MODEL_DIR } from './fixture.js';

// training/dataset.py re-implements letterbox.ts; its outputs are committed with the model.
const cases = JSON.parse(readFileSync(path.join(MODEL_DIR, 'parity', 'letterbox.json'), 'utf8')) as {
  width: number; height: number; size: number; src: number[]; out: number[];
}[];

describe('training letterbox mirrors services/imaging/letterbox.ts', () => {
  it.each(cases.map((c) => [`${c.width}x${c.height} -> ${c.size}`, c] as const))('%s', (_, c) => {
    const data = Float32Array.from(c.src, (v) => v / 255);
    const lb = letterbox({ width: c.width, height: c.height, data }, c.size);
    let max = 0;
    for (let i = 0; i < lb.data.length; i++) max = Math.max(max, Math.abs(lb.data[i] - c.out[i]));
    expect(max).toBeLessThanOrEqual(1e-5);
  });
});
