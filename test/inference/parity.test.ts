import { afterAll, describe, expect, it } from 'vitest';
import { loadFractureModel, rawScoreFrom, sigmoid, type FractureModel } from '../../services/inference/index.js';
import { MODEL_DIR, readParityFixture } from './fixture.js';

const TOL = 1e-4;
const fx = readParityFixture();

describe.each(['wasm', 'cpu'] as const)('TF.js export matches PyTorch (%s backend)', (backend) => {
  let model: FractureModel | undefined;
  afterAll(() => model?.dispose());

  it(`max abs diff <= ${TOL} on heat-map and image logits`, async () => {
    model = await loadFractureModel(MODEL_DIR, { backend });
    expect(model.backend).toBe(backend);
    let maxDiff = 0;
    for (let n = 0; n < fx.n; n++) {
      const out = await model.raw(fx.inputs[n]);
      expect(out.heat.length).toBe(fx.heat[n].length);
      for (let i = 0; i < out.heat.length; i++) maxDiff = Math.max(maxDiff, Math.abs(out.heat[i] - fx.heat[n][i]));
      maxDiff = Math.max(maxDiff, Math.abs(out.cls - fx.cls[n]));
      // post-processing as predict() does it (one forward pass per input keeps the cpu run short)
      const rawScore = rawScoreFrom(out, model.manifest.score);
      const { a, b } = model.manifest.calibration;
      expect(Math.abs(rawScore - fx.rawScore[n])).toBeLessThanOrEqual(TOL);
      expect(Math.abs(sigmoid(a * rawScore + b) - fx.probability[n])).toBeLessThanOrEqual(TOL);
    }
    console.log(`parity ${backend}: max abs diff ${maxDiff.toExponential(2)}`);
    expect(maxDiff).toBeLessThanOrEqual(TOL);
  }, 60_000);
});
