import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// Model v4 (training/combine_heads.py) promises v2's image score and v3's heat map exactly: its
// weights must stay bit-identical copies of theirs and its manifest must carry their choices.
// Regenerating v2 or v3 without rebuilding v4 (or a wrong copy) fails here.
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const dir = (name: string) => path.join(root, 'models', name);

function tensors(model: string): Map<string, Buffer> {
  const mj = JSON.parse(readFileSync(path.join(dir(model), 'model.json'), 'utf8'));
  const blob = readFileSync(path.join(dir(model), 'weights.bin'));
  const out = new Map<string, Buffer>();
  let off = 0;
  for (const w of mj.weightsManifest[0].weights as { name: string; shape: number[]; quantization?: unknown }[]) {
    expect(w.quantization).toBeUndefined();
    const bytes = 4 * w.shape.reduce((a, b) => a * b, 1);
    out.set(w.name, blob.subarray(off, off + bytes));
    off += bytes;
  }
  expect(off).toBe(blob.length);
  return out;
}
const manifest = (model: string) => JSON.parse(readFileSync(path.join(dir(model), 'manifest.json'), 'utf8'));

describe('model v4 = v2 image head + v3 heat head', () => {
  const v4 = manifest('fracatlas-mnv2-v4');
  const v2 = manifest('fracatlas-mnv2-v2');
  const v3 = manifest('fracatlas-mnv2-v3');
  const imageLayers: string[] = v4.heads.image.layers;
  const heatLayers: string[] = v4.heads.heat.layers;

  it('every weight is a bit-identical copy of its source', () => {
    const [w4, w2, w3] = ['fracatlas-mnv2-v4', 'fracatlas-mnv2-v2', 'fracatlas-mnv2-v3'].map(tensors);
    expect(imageLayers).toEqual(['cls_l5', 'cls_u5', 'cls_l4', 'cls_p4', 'cls_h1', 'cls']);
    let image = 0, heat = 0, backbone = 0;
    for (const [name, w] of w4) {
      const layer = name.split('/')[0];
      if (imageLayers.includes(layer)) {
        expect(w.equals(w2.get(name.replace(/^cls_/, ''))!), name).toBe(true);
        image++;
      } else if (heatLayers.includes(layer)) {
        expect(w.equals(w3.get(name)!), name).toBe(true);
        heat++;
      } else {
        expect(w.equals(w2.get(name)!) && w.equals(w3.get(name)!), name).toBe(true);
        backbone++;
      }
    }
    // kernel + bias of cls_l5, cls_l4, cls_h1, cls and of l5, l4, h1, heat; v2's other tensors are the backbone
    expect([image, heat]).toEqual([8, 8]);
    expect(backbone).toBe(w2.size - 10);
  });

  it("carries v2's score, calibration and operating points and v3's heat-map thresholds", () => {
    expect(v4.version).toBe('4.0.0');
    expect(v4.score).toEqual(v2.score);
    expect(v4.calibration).toEqual(v2.calibration);
    expect(v4.operatingPoints).toEqual(v2.operatingPoints);
    expect(v4.heatmap).toEqual(v3.heatmap);
    expect(v4.heads.image.from).toBe(`${v2.name} ${v2.version}`);
    expect(v4.heads.heat.from).toBe(`${v3.name} ${v3.version}`);
  });
});
