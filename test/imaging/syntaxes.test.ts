/**
 * Every transfer syntax against dcmtk: the fixtures were encoded with dcmtk and their expected
 * pixels are dcmtk's own decode (dcmdjpeg / dcmdjpls / dcmdrle / dcmconv +te), recorded by
 * scripts/make-imaging-fixtures.ts. Lossless: sha256 of the stored values must match exactly.
 * Lossy: dcmtk's decoded values are committed and compared value by value within a tolerance.
 */
import { describe, expect, it } from 'vitest';
import { decodeRaw } from '../../services/imaging/index.js';
import { expected, fixture, sha } from './helpers.js';

/** Largest allowed |ours - dcmtk| per lossy encoding, in stored-value units. */
const TOLERANCE: Record<string, number> = {
  'jpeg-baseline': 0, // libjpeg-turbo (WASM) and dcmtk's libijg8 both use the islow IDCT
  'jpeg-extended-12': 0, // built-in decoder uses the same islow IDCT as libijg12
  'jpeg-ls-near': 0, // CharLS decodes near-lossless deterministically
};

describe('decode vs dcmtk, per transfer syntax', () => {
  const encodings = [...new Set(expected.fixtures.map((f) => f.encoding))];
  it('covers every required encoding', () => {
    expect(encodings.sort()).toEqual(
      ['deflated', 'explicit-be', 'explicit-le', 'implicit-le', 'jpeg-baseline', 'jpeg-extended-12', 'jpeg-lossless-sv1', 'jpeg-lossless-sv6', 'jpeg-ls-lossless', 'jpeg-ls-near', 'rle'].sort(),
    );
  });
  for (const f of expected.fixtures) {
    it(`${f.file} (${f.lossless ? 'lossless: exact' : `lossy: within ${TOLERANCE[f.encoding]}`})`, async () => {
      const bytes = fixture(f.file);
      const ref = f.refFile ? new Int32Array(new Uint8Array(fixture(f.refFile)).buffer) : undefined;
      for (let frame = 0; frame < f.frames; frame++) {
        const raw = await decodeRaw(bytes, { frame });
        expect(raw.info.transferSyntax.uid).toBe(f.transferSyntax);
        expect(raw.info.frames).toBe(f.frames);
        if (f.lossless) {
          expect(sha(raw.values)).toBe(f.sha256[frame]);
        } else {
          const n = raw.values.length;
          let maxDiff = 0;
          for (let i = 0; i < n; i++) maxDiff = Math.max(maxDiff, Math.abs(raw.values[i] - ref![frame * n + i]));
          expect(maxDiff).toBeLessThanOrEqual(TOLERANCE[f.encoding]);
        }
      }
    });
  }
});

describe('built-in DCT decoder: restart markers', () => {
  it('decodes a cjpeg stream with RSTn every 3 blocks exactly as djpeg -dct int', async () => {
    const { decodeJpegDct } = await import('../../services/imaging/codecs/jpeg-dct.js');
    const { readPgm } = await import('./helpers.js');
    const r = (expected as unknown as { restart: { file: string; reference: string }[] }).restart[0];
    expect(r).toBeDefined();
    const jpg = fixture(r.file);
    let rst = 0;
    for (let i = 0; i + 1 < jpg.length; i++) if (jpg[i] === 0xff && jpg[i + 1] >= 0xd0 && jpg[i + 1] <= 0xd7) rst++;
    expect(rst).toBeGreaterThan(10);
    const ref = readPgm(Buffer.from(fixture(r.reference)));
    const out = decodeJpegDct(jpg);
    expect([out.width, out.height]).toEqual([ref.width, ref.height]);
    expect(Array.from(out.samples)).toEqual(Array.from(ref.values));
  });
});
