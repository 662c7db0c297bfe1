import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeInstance } from '../../services/imaging/index.js';

const samples = path.resolve(import.meta.dirname, '../../samples');
const manifest = fs.readFileSync(path.join(samples, 'manifest.csv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split(',')[0]);

describe('every sample decodes straight from disk', () => {
  // fs.readFileSync gives a Node Buffer: often a view into a larger pooled ArrayBuffer. Codecs that
  // read `.buffer` must not assume offset 0 (the JPEG Lossless samples once failed exactly so).
  it.each(manifest)('%s', async (file) => {
    const image = await decodeInstance(fs.readFileSync(path.join(samples, file)));
    expect(image.width).toBeGreaterThan(300);
    let sum = 0;
    for (const v of image.display.data) sum += v;
    const mean = sum / image.display.data.length;
    expect(mean).toBeGreaterThan(0.05);
    expect(mean).toBeLessThan(0.95);
  });
});
