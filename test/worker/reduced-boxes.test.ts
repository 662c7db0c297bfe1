/**
 * The worker decodes a JPEG 2000 image at a reduced wavelet level (4× smaller here), but the boxes
 * it stores must be in the original image's pixels. Through the worker's own path — ingest, then
 * ClassifyService with the real decoder, letterbox and box mapping, real SQLite — a stand-in model
 * that puts its box exactly around the bright rectangle it sees must produce a stored box exactly
 * where the rectangle was drawn in the original pixels. And a reduced decode must not lower a flag:
 * a score just under an operating point is scored again from the full-resolution image.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClassifyService } from '../../services/core/services/classify.service.js';
import { decodeInstance } from '../../services/imaging/index.js';
import type { FractureModel, Prediction } from '../../services/inference/index.js';
import { makeDx } from '../helpers/dicom.js';
import { ingestDirect } from '../helpers/ingest.js';
import { startSystem, type TestSystem } from '../helpers/system.js';

const hasOpj = (() => { try { execFileSync('sh', ['-c', 'command -v opj_compress'], { stdio: 'ignore' }); return true; } catch { return false; } })();

const [W, H] = [2048, 1536];
// Edges on multiples of 64 original pixels: whole pixels at every wavelet level down to 1/8, and whole model pixels.
const RECT = { x: 640, y: 384, width: 512, height: 320 };
const INPUT = 256; // decoded with longer side >= 2 × 256: 2048 / 4 = 512, letterboxed 2:1 with 32 rows of padding top and bottom

/**
 * A stand-in model: its one box is the bounding box of the bright pixels (> 0.75) of its input; its
 * probabilities are the given ones, one per call (the last repeats), flagged at 0.1 and 0.5.
 */
function brightBoxModel(probabilities = [0.9]): FractureModel {
  let call = 0;
  return {
    name: 'bright-box', version: 'test', backend: 'none', inputSize: INPUT,
    operatingPoints: { doubt: 0.1, definite: 0.5 },
    manifest: {} as FractureModel['manifest'],
    async predict(input: Float32Array): Promise<Prediction> {
      let [x0, y0, x1, y1] = [Infinity, Infinity, -Infinity, -Infinity];
      for (let y = 0; y < INPUT; y++) for (let x = 0; x < INPUT; x++) {
        if (input[y * INPUT + x] <= 0.75) continue;
        x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x + 1); y1 = Math.max(y1, y + 1);
      }
      const probability = probabilities[Math.min(call++, probabilities.length - 1)];
      return {
        probability, rawScore: 3, flag: probability >= 0.5 ? 'definite' : probability >= 0.1 ? 'doubt' : 'none', heatmap: new Float32Array(16 * 16), heatmapSize: 16,
        boxes: [{ x: x0, y: y0, width: x1 - x0, height: y1 - y0, level: 'definite', peak: 1 }],
      };
    },
    raw: async () => ({ heat: new Float32Array(16 * 16), cls: 0 }),
    dispose: () => {},
  };
}

describe.skipIf(!hasOpj)('boxes from a reduced JPEG 2000 decode, through the worker', () => {
  let system: TestSystem;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ft-reduced-boxes-'));
  beforeAll(async () => {
    system = await startSystem();
  });
  afterAll(async () => {
    await system?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  let codestream: Uint8Array;
  let pixels: Uint16Array;
  beforeAll(() => {
    // A smooth, radiograph-like background (so the plausibility check reads it) and a bright rectangle.
    const pgm = Buffer.alloc(W * H * 2);
    pixels = new Uint16Array(W * H);
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
      const inside = x >= RECT.x && x < RECT.x + RECT.width && y >= RECT.y && y < RECT.y + RECT.height;
      pixels[y * W + x] = inside ? 3900 : 400 + Math.round((1400 * x) / W + (300 * y) / H);
      pgm.writeUInt16BE(pixels[y * W + x], 2 * (y * W + x));
    }
    fs.writeFileSync(path.join(tmp, 'in.pgm'), Buffer.concat([Buffer.from(`P5\n${W} ${H}\n4095\n`, 'latin1'), pgm]));
    execFileSync('opj_compress', ['-i', path.join(tmp, 'in.pgm'), '-o', path.join(tmp, 'out.j2k')], { stdio: 'ignore' });
    codestream = new Uint8Array(fs.readFileSync(path.join(tmp, 'out.j2k')));
  });

  /** Ingests the image and classifies it with `model`; the reductions the decoder returned, and the stored result. */
  async function classifyWith(model: FractureModel) {
    const { bytes, sopInstanceUid } = makeDx({
      rows: H, columns: W, pixels,
      extra: {
        '00281050': { vr: 'DS', value: '2048' }, '00281051': { vr: 'DS', value: '4096' },
        '7fe00010': { vr: 'OB', value: { fragments: [codestream], basicOffsetTable: [] } },
      },
      write: { transferSyntaxUid: '1.2.840.10008.1.2.4.90' },
    });
    expect((await ingestDirect(system.core, bytes)).status).toBe('stored');
    const reductions: number[] = [];
    const classify = new ClassifyService(
      system.core.repos.instances, system.core.repos.aiResults, system.core.repos.storage, model,
      { decode: async (b, opts) => { const d = await decodeInstance(b, opts); reductions.push(d.reduction); return d; } },
      system.core.repos.events, system.core.log, async () => {},
    );
    const instance = (await system.core.repos.instances.findBySop('site-a', sopInstanceUid))!;
    expect(await classify.classify(instance.id, { queuedAt: null, attempt: 1, maxAttempts: 1 })).toBe('stored');
    const result = (await system.core.repos.aiResults.byInstance(instance.id))!;
    expect(result.status).toBe('done');
    return { reductions, result };
  }

  it('stores the box at the original pixels of the rectangle', async () => {
    const { reductions, result } = await classifyWith(brightBoxModel([0.9]));
    expect(reductions).toEqual([4]); // the worker really decoded at 1/4
    expect(JSON.parse(result.boxes!)).toEqual([{ ...RECT, level: 'definite' }]);
  });

  it('scores the full image again when the reduced one lands just below an operating point', async () => {
    // 0.09 is within RESCORE_MARGIN_LOGIT under "doubt" (0.1; log-odds −2.31 vs −2.20): the full-resolution score (0.12) is the one stored.
    const { reductions, result } = await classifyWith(brightBoxModel([0.09, 0.12]));
    expect(reductions).toEqual([4, 1]);
    expect([result.probability, result.flag]).toEqual([0.12, 'doubt']);
    expect(JSON.parse(result.boxes!)).toEqual([{ ...RECT, level: 'definite' }]); // its boxes map back from full resolution (the stand-in's box level is fixed)
  });

  it('does not decode again for a score clear of the operating points', async () => {
    const { reductions, result } = await classifyWith(brightBoxModel([0.05, 0.5]));
    expect(reductions).toEqual([4]);
    expect([result.probability, result.flag]).toEqual([0.05, 'none']);
  });
});
