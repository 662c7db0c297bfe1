import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadFractureModel, selectBackend, type FractureModel } from '../../services/inference/index.js';
import { MODEL_DIR, readParityFixture } from './fixture.js';

describe('fracture model package', () => {
  let model: FractureModel;
  beforeAll(async () => {
    model = await loadFractureModel(MODEL_DIR); // auto: tfjs-node if it loads, else wasm
  }, 60_000);
  afterAll(() => model.dispose());

  it('has a manifest the worker can rely on', () => {
    const m = JSON.parse(readFileSync(path.join(MODEL_DIR, 'manifest.json'), 'utf8'));
    expect(m.name).toBe(model.name);
    expect(model.inputSize % 32).toBe(0);
    expect(m.heatmap.size * m.heatmap.stride).toBe(model.inputSize);
    expect(model.operatingPoints.doubt).toBeGreaterThan(0);
    expect(model.operatingPoints.doubt).toBeLessThan(model.operatingPoints.definite);
    expect(model.operatingPoints.definite).toBeLessThan(1);
    expect(Number.isInteger(m.training.seed)).toBe(true);
  });

  it('loads with an available backend (tfjs-node when present, else wasm)', async () => {
    expect(['tensorflow', 'wasm']).toContain(model.backend);
    let nodeAvailable = true;
    try {
      const name = '@tensorflow/tfjs-node';
      await import(name);
    } catch {
      nodeAvailable = false;
    }
    expect(model.backend).toBe(nodeAvailable ? 'tensorflow' : 'wasm');
    expect(await selectBackend('auto')).toBe(model.backend);
  });

  it('gives a sane prediction', async () => {
    const fx = readParityFixture();
    const S = model.inputSize;
    const black = await model.predict(new Float32Array(S * S));
    const xray = await model.predict(fx.inputs[0]);
    for (const p of [black, xray]) {
      expect(p.probability).toBeGreaterThanOrEqual(0);
      expect(p.probability).toBeLessThanOrEqual(1);
      expect(Number.isFinite(p.rawScore)).toBe(true);
      expect(p.heatmap.length).toBe(p.heatmapSize * p.heatmapSize);
      expect(p.heatmapSize).toBe(model.manifest.heatmap.size);
      for (const v of p.heatmap) expect(v >= 0 && v <= 1).toBe(true);
      if (p.flag === 'none') expect(p.boxes).toEqual([]);
      else expect(p.boxes.length).toBeGreaterThan(0);
      for (const b of p.boxes) {
        expect(b.x).toBeGreaterThanOrEqual(0);
        expect(b.y).toBeGreaterThanOrEqual(0);
        expect(b.x + b.width).toBeLessThanOrEqual(S);
        expect(b.y + b.height).toBeLessThanOrEqual(S);
      }
    }
    // An empty (all black) input must not look like a definite fracture. Model v2 gives it about
    // the prior (p ≈ 0.16, above its low "doubt" threshold: see its model card), so blank images
    // have to be caught before the model (plausibility check), not by it.
    expect(black.flag).not.toBe('definite');
    expect(black.probability).toBeLessThan(model.operatingPoints.definite);
    await expect(model.predict(new Float32Array(10))).rejects.toThrow(/expected/);
  }, 60_000);
});
