import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { calibrate, loadFractureModel, rawScoreFrom, type FractureModel } from '../../services/inference/index.js';
import { MODEL_DIR, readParityFixture } from './fixture.js';

const TOL = 1e-4;
const fx = readParityFixture();

// wasm: the worker's backend (the pure-JS cpu backend needs minutes for a MobileNetV2 here).
describe.each([['wasm', fx.n]] as const)('TF.js export matches PyTorch (%s backend)', (backend, inputs) => {
  let model: FractureModel | undefined;
  afterAll(() => model?.dispose());

  it(`max abs diff <= ${TOL} on heat-map and image logits`, async () => {
    model = await loadFractureModel(MODEL_DIR, { backend });
    expect(model.backend).toBe(backend);
    let maxDiff = 0;
    for (let n = 0; n < inputs; n++) {
      const out = await model.raw(fx.inputs[n]);
      expect(out.heat.length).toBe(fx.heat[n].length);
      for (let i = 0; i < out.heat.length; i++) maxDiff = Math.max(maxDiff, Math.abs(out.heat[i] - fx.heat[n][i]));
      maxDiff = Math.max(maxDiff, Math.abs(out.cls - fx.cls[n]));
      // post-processing as predict() does it
      const rawScore = rawScoreFrom(out, model.manifest.score);
      expect(Math.abs(rawScore - fx.rawScore[n])).toBeLessThanOrEqual(TOL);
      expect(Math.abs(calibrate(rawScore, model.manifest.calibration) - fx.probability[n])).toBeLessThanOrEqual(TOL);
    }
    console.log(`parity ${backend}: max abs diff ${maxDiff.toExponential(2)} over ${inputs} input(s)`);
    expect(maxDiff).toBeLessThanOrEqual(TOL);
  }, 120_000);
});

describe('the parity fixture covers what the export writes', () => {
  const json = JSON.parse(readFileSync(path.join(MODEL_DIR, 'model.json'), 'utf8'));
  const layers = json.modelTopology.config.layers as { class_name: string; config: Record<string, unknown> }[];

  it('every layer lies on the path from the input to the outputs the fixture compares', () => {
    // The outputs compared above (heat, cls) are the model's only outputs, so no layer escapes the check.
    expect(json.modelTopology.config.output_layers.map((o: unknown[]) => o[0])).toEqual(['heat', 'cls']);
    const feeds = new Map<string, string[]>();
    for (const l of layers as unknown as { name: string; inbound_nodes: [string][][] }[]) {
      feeds.set(l.name, (l.inbound_nodes[0] ?? []).map((n) => n[0]));
    }
    const reached = new Set<string>();
    const todo = ['heat', 'cls'];
    while (todo.length) {
      const n = todo.pop()!;
      if (reached.has(n)) continue;
      reached.add(n);
      todo.push(...(feeds.get(n) ?? []));
    }
    expect([...feeds.keys()].filter((n) => !reached.has(n))).toEqual([]);
  });

  it.skipIf(!JSON.stringify(layers).includes('FusedConv2D'))('includes depthwise convolutions and ReLU6 (model v2)', () => {
    const fused = layers.filter((l) => l.class_name === 'FusedConv2D');
    expect(fused.filter((l) => l.config.depthwise === true).length).toBeGreaterThanOrEqual(17);
    expect(fused.filter((l) => l.config.activation === 'relu6').length).toBeGreaterThan(30);
    expect(fused.some((l) => (l.config.strides as number[])[0] === 2 && l.config.depthwise === true)).toBe(true);
  });
});
