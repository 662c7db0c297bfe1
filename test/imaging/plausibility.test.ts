/** Nothing unreadable is called normal: the plausibility check and the decoder warnings it treats as errors. */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseInstance } from '../../services/imaging/dataset.js';
import { encapsulatedPixelData, imageElements, writeDicom } from '../helpers/images.js';
import { decodeInstance } from '../../services/imaging/index.js';
import type { GreyImage } from '../../services/imaging/letterbox.js';
import { checkPlausibility, PLAUSIBILITY_LIMITS } from '../../services/imaging/plausibility.js';
import { makeDx, scrambledJpegLossless } from '../helpers/dicom.js';
import { expected, fixture } from './helpers.js';

const samples = resolve(import.meta.dirname, '../../samples');
const dicomFiles = (dir: string): string[] => readdirSync(dir, { withFileTypes: true })
  .flatMap((e) => (e.isDirectory() ? dicomFiles(join(dir, e.name)) : e.name.endsWith('.dcm') ? [join(dir, e.name)] : []));

/** A smooth synthetic radiograph-like image (bone bright on a dark background), plus a transform of each pixel. */
function image(width: number, height: number, pixel: (x: number, y: number) => number): GreyImage {
  const data = new Float32Array(width * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data[y * width + x] = Math.min(1, Math.max(0, pixel(x, y)));
  return { width, height, data };
}
const smooth = (x: number, y: number) => 0.15 + 0.6 * Math.exp(-(((x - 100) / 40) ** 2)) * (0.8 + 0.2 * Math.sin(y / 15));
let seed = 11;
const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);

describe('plausibility rules', () => {
  it('passes a smooth radiograph-like image', () => {
    expect(checkPlausibility(image(200, 240, smooth)).readable).toBe(true);
  });
  it('calls a blank image unreadable (constant, and constant with faint noise)', () => {
    for (const img of [image(200, 200, () => 0), image(200, 200, () => 0.5), image(200, 200, () => 0.4 + random() * 0.01)]) {
      const v = checkPlausibility(img);
      expect(v).toMatchObject({ readable: false, rule: 'blank' });
      expect(!v.readable && v.reason).toMatch(/almost blank/);
    }
  });
  it('calls an image that is mostly pure white unreadable', () => {
    const v = checkPlausibility(image(200, 200, (x, y) => (x < 174 ? 1 : smooth(x, y))));
    expect(v).toMatchObject({ readable: false, rule: 'saturated' });
  });
  it('calls a posterised frame (a handful of grey levels) unreadable', () => {
    const v = checkPlausibility(image(200, 200, (x, y) => Math.round(smooth(x, y) * 4) / 4 + (x % 50 === 0 ? 0.1 : 0)));
    expect(v).toMatchObject({ readable: false, rule: 'few-levels' });
  });
  it('calls noise unreadable', () => {
    const v = checkPlausibility(image(200, 200, () => random()));
    expect(v).toMatchObject({ readable: false, rule: 'noise' });
  });
  it('treats any decoder warning as an error, whatever the pixels look like', () => {
    const v = checkPlausibility(image(200, 240, smooth), ['Corrupt JPEG data: premature end of data segment']);
    expect(v).toMatchObject({ readable: false, rule: 'decoder-warning' });
    expect(!v.readable && v.reason).toMatch(/damaged.*premature end of data segment.*PACS/);
  });
  it('keeps its limits where the FracAtlas proof put them (docs/benchmarks/plausibility.md)', () => {
    expect(PLAUSIBILITY_LIMITS).toEqual({ maxDominantLevel: 0.9, minSpread: 0.02, maxSaturated: 0.85, minLevels: 12, minNeighbourCorrelation: 0.3 });
  });
});

describe('decoders report damaged data instead of inventing pixels quietly', () => {
  it('every DICOM file in samples/ decodes with no warning and is readable (no false "unreadable")', async () => {
    const files = dicomFiles(samples);
    expect(files.length).toBeGreaterThanOrEqual(14);
    for (const file of files) {
      const decoded = await decodeInstance(new Uint8Array(readFileSync(file)));
      expect(decoded.warnings, file).toEqual([]);
      const verdict = checkPlausibility(decoded.display, decoded.warnings);
      expect(verdict.readable ? 'readable' : verdict.reason, file).toBe('readable');
    }
  });

  it('the test images other tests send through the worker are readable', async () => {
    for (const size of [32, 64, 256, 512]) {
      const decoded = await decodeInstance(new Uint8Array(makeDx({ rows: size, columns: size }).bytes));
      expect(checkPlausibility(decoded.display, decoded.warnings).readable, `${size}`).toBe(true);
    }
  });

  it('JPEG Lossless scrambled after byte 600: premature end of data, unreadable', async () => {
    for (const s of [1, 2, 3]) {
      const decoded = await decodeInstance(new Uint8Array(await scrambledJpegLossless(s)));
      expect(decoded.warnings[0]).toMatch(/premature end of data segment/);
      expect(checkPlausibility(decoded.display, decoded.warnings).readable).toBe(false);
    }
  });

  it('12-bit DCT JPEG cut short inside the scan: premature end of data, never a quiet decode', async () => {
    const f = expected.fixtures.find((x) => x.file === 'u16b12_mono2.jpeg-extended-12.dcm')!;
    const frame = (await parseInstance(fixture(f.file))).frameBytes(0).slice();
    const cut = new Uint8Array(Math.floor(frame.length * 0.6) + 2);
    cut.set(frame.subarray(0, cut.length - 2));
    cut.set([0xff, 0xd9], cut.length - 2);
    const bytes = writeDicom({ transferSyntaxUid: f.transferSyntax, elements: imageElements({ rows: 73, columns: 97, bitsAllocated: 16, bitsStored: 12, pixelRepresentation: 0 }), encapsulated: encapsulatedPixelData([cut]) });
    expect((await decodeInstance(bytes)).warnings).toEqual(['Corrupt JPEG data: premature end of data segment']);
    // and the intact frame has no warning
    expect((await decodeInstance(fixture(f.file))).warnings).toEqual([]);
  });
});
