import fs from 'node:fs';
import path from 'node:path';
import jpeg from 'jpeg-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeInstance, letterbox } from '../../services/imaging/index.js';
import { DEFAULT_MODEL_DIR, loadFractureModel, type FractureModel } from '../../services/inference/index.js';

const root = path.resolve(import.meta.dirname, '../..');
const atlas = path.resolve(root, '../shared/datasets/fracatlas/images');
const rows = fs.readFileSync(path.join(root, 'samples/manifest.csv'), 'utf8').trim().split('\n').slice(1)
  .map((l) => l.split(',')).filter((c) => c[0].startsWith('fracatlas/')).map(([file, source, fractured]) => ({ file, source, fractured: fractured === '1' }));

/**
 * The model card's figures come from the JPEG route (npm run evaluate); the system reads DICOM.
 * The same image through both routes must score the same, or the card would not describe the system.
 */
describe.skipIf(!fs.existsSync(atlas))('a sample scores the same through DICOM as through the evaluated JPEG route', () => {
  let model: FractureModel;
  beforeAll(async () => {
    model = await loadFractureModel(path.join(root, DEFAULT_MODEL_DIR), { backend: 'wasm' });
  });
  afterAll(() => model?.dispose());

  it.each(rows)('$file', async ({ file, source }) => {
    const fromDicom = await decodeInstance(fs.readFileSync(path.join(root, 'samples', file)));
    const decoded = jpeg.decode(fs.readFileSync(path.join(atlas, source)), { useTArray: true, formatAsRGBA: true });
    const grey = new Float32Array(decoded.width * decoded.height);
    for (let i = 0; i < grey.length; i++) grey[i] = decoded.data[i * 4] / 255;
    const a = await model.predict(letterbox(fromDicom.display, model.inputSize).data);
    const b = await model.predict(letterbox({ width: decoded.width, height: decoded.height, data: grey }, model.inputSize).data);
    // The two routes differ by pixel rounding only; model v2 moved one sample by 0.012 (v1: < 0.01).
    expect(Math.abs(a.probability - b.probability)).toBeLessThan(0.02);
    expect(a.flag).toBe(b.flag);
  });
});
