/** Unsupported or corrupt input gives a typed PixelDataError naming the problem: never a crash or a hang. */
import { describe, expect, it } from 'vitest';
import { parseInstance } from '../../services/imaging/dataset.js';
import { encapsulatedPixelData, imageElements, packPixels, writeDicom, type ImageSpec } from '../helpers/images.js';
import { decodeInstance, decodeRaw, PixelDataError } from '../../services/imaging/index.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expected, fixture, hasShared, sha, sharedDicomDir } from './helpers.js';

const spec: ImageSpec = { rows: 73, columns: 97, bitsAllocated: 16, bitsStored: 12, pixelRepresentation: 0 };
const JPEG_LS = '1.2.840.10008.1.2.4.80';

const jpegLs = await parseInstance(fixture('u16b12_mono2.jpeg-ls-lossless.dcm'));
function jpegLsFrame(): Uint8Array {
  return jpegLs.frameBytes(0).slice();
}

async function expectPixelError(p: Promise<unknown>, code: string, message?: RegExp) {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PixelDataError);
  expect((err as PixelDataError).code).toBe(code);
  if (message) expect((err as PixelDataError).message).toMatch(message);
}

describe('typed errors', () => {
  it('basic offset table entry pointing past the end of the pixel data', async () => {
    const bytes = writeDicom({ transferSyntaxUid: JPEG_LS, elements: imageElements(spec), encapsulated: encapsulatedPixelData([jpegLsFrame()], [1 << 20]) });
    await expectPixelError(decodeInstance(bytes), 'corrupt-pixel-data', /offset table entry 0 .*past the end/);
  });
  it('basic offset table with the wrong number of entries for the frames', async () => {
    const bytes = writeDicom({ transferSyntaxUid: JPEG_LS, elements: imageElements(spec), encapsulated: encapsulatedPixelData([jpegLsFrame()], [0, 100]) });
    await expectPixelError(decodeInstance(bytes), 'corrupt-pixel-data', /2 entries for 1 frames/);
  });
  it('zero-length frame', async () => {
    const bytes = writeDicom({ transferSyntaxUid: JPEG_LS, elements: imageElements(spec), encapsulated: encapsulatedPixelData([new Uint8Array(0)]) });
    await expectPixelError(decodeInstance(bytes), 'corrupt-pixel-data', /zero length/);
  });
  it('zero-length frame among several (multi-frame)', async () => {
    const f = jpegLsFrame();
    const bytes = writeDicom({ transferSyntaxUid: JPEG_LS, elements: imageElements({ ...spec, frames: 3 }), encapsulated: encapsulatedPixelData([f, new Uint8Array(0), f]) });
    await expectPixelError(decodeInstance(bytes, { frame: 0 }), 'corrupt-pixel-data', /frame 1 has zero length/);
  });
  it('native pixel data shorter than rows*cols*bytes', async () => {
    const px = packPixels(new Int32Array(97 * 73), 16, 12);
    const bytes = writeDicom({ elements: imageElements(spec), pixelData: px.subarray(0, px.length - 200), bitsAllocated: 16 });
    await expectPixelError(decodeInstance(bytes), 'truncated', /Pixel Data has 13962 bytes.*needs 14162/);
  });
  it('fragment running past the end of the file (truncated file)', async () => {
    const full = fixture('u16b12_mono2.jpeg-ls-lossless.dcm');
    const err = await decodeInstance(full.subarray(0, full.length - 500)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PixelDataError);
    expect(['truncated', 'corrupt-pixel-data']).toContain((err as PixelDataError).code);
  });
  it('bogus transfer syntax', async () => {
    const bytes = writeDicom({ transferSyntaxUid: '1.2.3.4.5', elements: imageElements(spec), pixelData: packPixels(new Int32Array(97 * 73), 16, 12) });
    await expectPixelError(decodeInstance(bytes), 'unsupported-transfer-syntax', /1\.2\.3\.4\.5/);
  });
  it('not DICOM at all', async () => {
    await expectPixelError(decodeInstance(new Uint8Array(1000).fill(7)), 'not-an-image');
    await expectPixelError(decodeInstance(new Uint8Array(3)), 'not-an-image');
  });
  it('no pixel data', async () => {
    await expectPixelError(decodeInstance(writeDicom({ elements: imageElements(spec) })), 'not-an-image', /no Pixel Data/);
  });
  it('RGB and palette colour are rejected with a clear reason', async () => {
    for (const photometric of ['RGB', 'PALETTE COLOR']) {
      const els = imageElements(spec).map((e) => (e.tag === 0x00280004 ? { ...e, value: photometric } : e.tag === 0x00280002 && photometric === 'RGB' ? { ...e, value: [3] } : e));
      const bytes = writeDicom({ elements: els, pixelData: new Uint8Array(97 * 73 * 6) });
      await expectPixelError(decodeInstance(bytes), 'unsupported-photometric', new RegExp(photometric));
    }
  });
  it('huge declared size is refused before allocating', async () => {
    const bytes = writeDicom({ elements: imageElements({ ...spec, rows: 60000, columns: 60000, frames: 10 }), pixelData: new Uint8Array(16) });
    await expectPixelError(decodeInstance(bytes), 'too-large', /60000x60000x10/);
  });
  it('frame index out of range', async () => {
    await expectPixelError(decodeInstance(fixture('u16b12_3frames.rle.dcm'), { frame: 3 }), 'frame-out-of-range');
  });
  it('codestream size differs from rows/columns', async () => {
    const bytes = writeDicom({ transferSyntaxUid: JPEG_LS, elements: imageElements({ ...spec, rows: 70 }), encapsulated: encapsulatedPixelData([jpegLsFrame()]) });
    await expectPixelError(decodeInstance(bytes), 'corrupt-pixel-data', /97x73 but the data set says 97x70/);
  });
  for (const enc of ['jpeg-lossless-sv1', 'jpeg-extended-12', 'jpeg-ls-near']) {
    it(`${enc}: codestream header disagreeing with rows/columns is refused before decoding`, async () => {
      const f = expected.fixtures.find((x) => x.file === `u16b12_mono2.${enc}.dcm`)!;
      const frame = (await parseInstance(fixture(f.file))).frameBytes(0).slice();
      const bytes = writeDicom({ transferSyntaxUid: f.transferSyntax, elements: imageElements({ ...spec, rows: 60000 }), encapsulated: encapsulatedPixelData([frame]) });
      await expectPixelError(decodeInstance(bytes), 'corrupt-pixel-data', /97x73 but the data set says 97x60000/);
    });
  }
  it.skipIf(!hasShared)('JPEG 2000: SIZ disagreeing with rows/columns is refused before decoding', async () => {
    const real = new Uint8Array(readFileSync(join(sharedDicomDir, 'RG3_J2KR.dcm')));
    const frame = (await parseInstance(real)).frameBytes(0).slice();
    const bytes = writeDicom({ transferSyntaxUid: '1.2.840.10008.1.2.4.90', elements: imageElements({ ...spec, rows: 1000, columns: 1000 }), encapsulated: encapsulatedPixelData([frame]) });
    await expectPixelError(decodeInstance(bytes), 'corrupt-pixel-data', /1760x1760 but the data set says 1000x1000/);
  });
  it('RLE segment offsets outside the frame', async () => {
    const rle = (await parseInstance(fixture('u16b12_mono2.rle.dcm'))).frameBytes(0).slice();
    new DataView(rle.buffer).setUint32(8, 1 << 30, true);
    const bytes = writeDicom({ transferSyntaxUid: '1.2.840.10008.1.2.5', elements: imageElements(spec), encapsulated: encapsulatedPixelData([rle]) });
    await expectPixelError(decodeInstance(bytes), 'corrupt-pixel-data', /RLE segment/);
  });
});

describe('garbage inside every codec: typed error or a decode, never a crash or hang', () => {
  const compressed = expected.fixtures.filter((f) => !['explicit-le', 'implicit-le', 'explicit-be', 'deflated'].includes(f.encoding) && f.frames === 1 && f.source === 'u16b12_mono2' || f.file === 'u8_mono2.jpeg-baseline.dcm');
  for (const f of compressed) {
    it(`${f.file}: corrupted and cut codestreams`, async () => {
      const frame = (await parseInstance(fixture(f.file))).frameBytes(0).slice();
      let seed = 7;
      const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
      const variants: Uint8Array[] = [frame.subarray(0, 40), frame.subarray(0, frame.length >> 1), new Uint8Array(64).fill(0xff)];
      for (let k = 0; k < 6; k++) {
        const v = frame.slice();
        for (let j = 0; j < 30; j++) v[Math.floor(rand() * v.length)] = Math.floor(rand() * 256);
        variants.push(v);
      }
      for (const v of variants) {
        const bytes = writeDicom({ transferSyntaxUid: f.transferSyntax, elements: imageElements(f.source === 'u8_mono2' ? { rows: 47, columns: 63, bitsAllocated: 8, bitsStored: 8, pixelRepresentation: 0 } : spec), encapsulated: encapsulatedPixelData([v]) });
        try {
          const img = await decodeInstance(bytes);
          expect(img.display.data.length).toBe(img.width * img.height);
        } catch (e) {
          expect(e).toBeInstanceOf(PixelDataError);
        }
      }
      // and the codec still works after the failures
      const ok = await decodeInstance(fixture(f.file));
      expect(ok.width).toBeGreaterThan(0);
    });
  }
});

describe('deflate', () => {
  it('a deflated data set that does not inflate gives a typed error', async () => {
    const good = fixture('u16b12_mono2.deflated.dcm');
    const ds = parseInstanceSafeOffset(good);
    const bad = good.slice();
    for (let i = ds; i < bad.length; i += 7) bad[i] ^= 0x5a;
    const err = await decodeInstance(bad).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PixelDataError);
  });
});

/** Offset just past the file meta group (where deflated data begins). */
function parseInstanceSafeOffset(bytes: Uint8Array): number {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // (0002,0000) UL group length at 132: tag(4) VR(2) len(2) value(4)
  return 132 + 12 + dv.getUint32(140, true);
}

const layoutSource = 'u16b12_3frames.jpeg-ls-lossless.dcm';
const layoutParsed = await parseInstance(fixture(layoutSource));
describe('encapsulated frame layout', () => {
  const f = expected.fixtures.find((x) => x.file === layoutSource)!;
  const frames = [0, 1, 2].map((i) => layoutParsed.frameBytes(i).slice());
  const spec3 = { rows: 37, columns: 41, frames: 3, bitsAllocated: 16, bitsStored: 12, pixelRepresentation: 0 as const };
  const halves = frames.flatMap((fr) => {
    const cut = (fr.length >> 2) * 2;
    return [fr.subarray(0, cut), fr.subarray(cut)];
  });
  it('several fragments per frame, no offset table: frames found by their SOI marker', async () => {
    const bytes = writeDicom({ transferSyntaxUid: f.transferSyntax, elements: imageElements(spec3), encapsulated: encapsulatedPixelData(halves) });
    for (let i = 0; i < 3; i++) expect(sha((await decodeRaw(bytes, { frame: i })).values)).toBe(f.sha256[i]);
  });
  it('several fragments per frame with a basic offset table', async () => {
    const offsets: number[] = [];
    let o = 0;
    halves.forEach((h, k) => {
      if (k % 2 === 0) offsets.push(o);
      o += 8 + h.length + (h.length % 2);
    });
    const bytes = writeDicom({ transferSyntaxUid: f.transferSyntax, elements: imageElements(spec3), encapsulated: encapsulatedPixelData(halves, offsets) });
    for (let i = 0; i < 3; i++) expect(sha((await decodeRaw(bytes, { frame: i })).values)).toBe(f.sha256[i]);
  });
  it('offset table entry not at a fragment boundary', async () => {
    const bytes = writeDicom({ transferSyntaxUid: f.transferSyntax, elements: imageElements(spec3), encapsulated: encapsulatedPixelData(frames, [0, 10, 20]) });
    await expectPixelError(decodeRaw(bytes, { frame: 1 }), 'corrupt-pixel-data', /entry 1 \(10\) does not point at a fragment/);
  });
});
