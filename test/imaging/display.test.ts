/**
 * The LUT chain against dcmtk's own rendering (dcmj2pnm, 8-bit PGM made from the same pixels with
 * the options recorded in expected.json), MONOCHROME1 / INVERSE polarity, VOI choices, the real
 * JPEG 2000 CR files.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeInstance, decodeRaw } from '../../services/imaging/index.js';
import { blockMeans, expected, fixture, fixtureDir, hasShared, readPgm, sha, sharedDicomDir } from './helpers.js';

const to8 = (v: number) => Math.round(Math.min(1, Math.max(0, v)) * 255);

describe('display LUT chain vs dcmj2pnm', () => {
  for (const [source, r] of Object.entries(expected.renders)) {
    it(`${source}: display matches dcmj2pnm ${r.options.join(' ')} within 1 grey level`, async () => {
      const pgm = readPgm(readFileSync(join(fixtureDir, r.file)));
      const opts = r.options[0] === '+Wl' ? { voi: 'voi-lut' as const } : { windowIndex: Number(r.options[1]) - 1 };
      const files = expected.fixtures.filter((f) => f.source === source && f.lossless).map((f) => f.file);
      expect(files.length).toBeGreaterThanOrEqual(5);
      for (const file of files) {
        const img = await decodeInstance(fixture(file), opts);
        expect([img.width, img.height]).toEqual([pgm.width, pgm.height]);
        let maxDiff = 0;
        for (let i = 0; i < pgm.values.length; i++) maxDiff = Math.max(maxDiff, Math.abs(to8(img.display.data[i]) - pgm.values[i]));
        expect(maxDiff).toBeLessThanOrEqual(1);
      }
    });
  }
});

/** Mean display intensity inside the synthetic "bone" bar vs the soft tissue beside it. */
function boneVsTissue(img: { width: number; height: number; display: { data: Float32Array } }) {
  const { width: w, height: h } = img;
  let bone = 0, nb = 0, soft = 0, ns = 0;
  for (let y = Math.ceil(h / 4); y < (3 * h) / 4; y++) {
    for (let x = 0; x < w; x++) {
      const dx = Math.abs(x - w / 2);
      const v = img.display.data[y * w + x];
      if (dx < w / 10) (bone += v), nb++;
      else if (dx > w / 6 && dx < w / 4) (soft += v), ns++;
    }
  }
  return { bone: bone / nb, soft: soft / ns };
}

describe('polarity', () => {
  it('MONOCHROME2: bone bright, no inversion', async () => {
    const img = await decodeInstance(fixture('u16b12_mono2.explicit-le.dcm'));
    const { bone, soft } = boneVsTissue(img);
    expect(bone).toBeGreaterThan(soft + 0.1);
    expect(img.transforms.join('|')).not.toMatch(/invert|INVERSE/);
  });
  it('MONOCHROME1 (bone stored low): comes out bone bright', async () => {
    const raw = await decodeRaw(fixture('u16b12_mono1.explicit-le.dcm'));
    const img = await decodeInstance(fixture('u16b12_mono1.explicit-le.dcm'));
    expect(img.photometric).toBe('MONOCHROME1');
    const mid = Math.floor(img.height / 2) * img.width;
    expect(raw.values[mid + Math.floor(img.width / 2)]).toBeLessThan(raw.values[mid + Math.floor(img.width / 5)]);
    const { bone, soft } = boneVsTissue(img);
    expect(bone).toBeGreaterThan(soft + 0.1);
    expect(img.transforms.join('|')).toMatch(/MONOCHROME1 inverted/);
  });
  it('MONOCHROME1 with INVERSE (DX convention): one inversion, bone bright', async () => {
    const img = await decodeInstance(fixture('u16b12_mono1_inverse.explicit-le.dcm'));
    const { bone, soft } = boneVsTissue(img);
    expect(bone).toBeGreaterThan(soft + 0.1);
  });
  it('MONOCHROME1 with a contradictory IDENTITY shape: still bone bright, and recorded', async () => {
    const { imageElements, packPixels, syntheticImage, writeDicom } = await import('../helpers/images.js');
    const px = syntheticImage(40, 30, 0, 4095, 3, false);
    const bytes = writeDicom({ elements: imageElements({ rows: 30, columns: 40, bitsAllocated: 16, bitsStored: 12, pixelRepresentation: 0, photometric: 'MONOCHROME1', presentationLutShape: 'IDENTITY', windows: [{ center: 2048, width: 4096 }] }), pixelData: packPixels(px, 16, 12) });
    const img = await decodeInstance(bytes);
    const { bone, soft } = boneVsTissue(img);
    expect(bone).toBeGreaterThan(soft + 0.1);
    expect(img.transforms.join('|')).toMatch(/IDENTITY ignored/);
  });
  it('MONOCHROME2 with Presentation LUT Shape INVERSE: inverted, bone bright', async () => {
    const img = await decodeInstance(fixture('u16b12_inverse.explicit-le.dcm'));
    const { bone, soft } = boneVsTissue(img);
    expect(bone).toBeGreaterThan(soft + 0.1);
    expect(img.transforms.join('|')).toMatch(/presentation LUT shape INVERSE/);
  });
});

describe('modality and VOI', () => {
  it('rescale slope/intercept gives modality values (signed, float slope)', async () => {
    const raw = await decodeRaw(fixture('s16_slope.explicit-le.dcm'));
    const img = await decodeInstance(fixture('s16_slope.explicit-le.dcm'));
    expect(raw.values.some((v) => v < 0)).toBe(true);
    expect(img.stored).toBeInstanceOf(Float32Array);
    for (const i of [0, 17, 1000, raw.values.length - 1]) expect(img.stored[i]).toBeCloseTo(raw.values[i] * 0.5 - 100, 3);
    expect(img.transforms.join('|')).toMatch(/rescale slope 0.5 intercept -100/);
  });
  it('integer rescale keeps Int32 modality values', async () => {
    const raw = await decodeRaw(fixture('u16b12_mono2.explicit-le.dcm'));
    const img = await decodeInstance(fixture('u16b12_mono2.explicit-le.dcm'));
    expect(img.stored).toBeInstanceOf(Int32Array);
    expect(img.stored[5]).toBe(raw.values[5] - 1024);
  });
  it('several windows: the first by default, another by index', async () => {
    const a = await decodeInstance(fixture('u16b12_mono2.explicit-le.dcm'));
    const b = await decodeInstance(fixture('u16b12_mono2.explicit-le.dcm'), { windowIndex: 1 });
    expect(a.window).toEqual({ center: 900, width: 2400, source: 'dicom' });
    expect(b.window).toEqual({ center: -300, width: 600, source: 'dicom' });
    // value at the window centre maps to ~0.5
    const i = a.stored.findIndex((v) => v > 850 && v < 950);
    expect(a.display.data[i]).toBeCloseTo((a.stored[i] - 899.5) / 2399 + 0.5, 4);
  });
  it('VOI LUT sequence is used when the file has no window', async () => {
    const img = await decodeInstance(fixture('u16b12_voilut.explicit-le.dcm'));
    expect(img.window.source).toBe('voi-lut');
    const i = 10;
    expect(img.display.data[i]).toBeCloseTo(Math.round(65535 * Math.pow(img.stored[i] / 4095, 0.6)) / 65535, 5);
  });
  it('modality LUT sequence maps stored values', async () => {
    const raw = await decodeRaw(fixture('u16b12_modlut.explicit-le.dcm'));
    const img = await decodeInstance(fixture('u16b12_modlut.explicit-le.dcm'));
    expect(img.stored[3]).toBe(Math.round(64 * Math.sqrt(raw.values[3] * 16)));
  });
  it('no window in the file: robust percentile window', async () => {
    const img = await decodeInstance(fixture('u16b16.explicit-le.dcm'));
    expect(img.window.source).toBe('percentile');
    const sorted = Float64Array.from(img.stored).sort();
    const lo = sorted[Math.floor(0.005 * sorted.length)];
    const hi = sorted[Math.floor(0.995 * sorted.length)];
    expect(Math.abs(img.window.center - (lo + hi) / 2)).toBeLessThan(0.01 * (hi - lo));
    expect(Math.abs(img.window.width - (hi - lo))).toBeLessThan(0.02 * (hi - lo));
    // not dominated by the extremes: about 1% of pixels clip at 0 or 1
    const clipped = img.display.data.filter((v) => v <= 0 || v >= 1).length / img.display.data.length;
    expect(clipped).toBeLessThan(0.03);
    expect(Math.min(...img.display.data)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...img.display.data)).toBeLessThanOrEqual(1);
  });
  it('forcing the percentile window ignores the stored one', async () => {
    const img = await decodeInstance(fixture('u16b12_mono2.explicit-le.dcm'), { voi: 'percentile' });
    expect(img.window.source).toBe('percentile');
  });
});

describe('multi-frame', () => {
  it('takes each frame, and the frames differ as generated', async () => {
    for (const enc of ['explicit-le', 'rle', 'jpeg-lossless-sv1', 'jpeg-ls-lossless', 'jpeg-extended-12']) {
      const frames = await Promise.all([0, 1, 2].map((frame) => decodeRaw(fixture(`u16b12_3frames.${enc}.dcm`), { frame })));
      expect(frames.map((f) => f.frameIndex)).toEqual([0, 1, 2]);
      const mean = (a: Int32Array) => a.reduce((s, v) => s + v, 0) / a.length;
      // frame 1 = frame-1-source >> 1 (darker), frame 2 = inverted
      expect(mean(frames[1].values)).toBeLessThan(mean(frames[0].values) * 0.75);
      expect(sha(frames[0].values)).not.toBe(sha(frames[2].values));
    }
    const img = await decodeInstance(fixture('u16b12_3frames.rle.dcm'), { frame: 2 });
    expect(img.frames).toBe(3);
    expect(img.frameIndex).toBe(2);
  });
});

describe.skipIf(!hasShared)('real CR files, JPEG 2000, MONOCHROME1 (../shared/dicom)', () => {
  for (const j of expected.j2k) {
    it(`${j.file}: pixels equal OpenJPEG opj_decompress; display matches dcmtk's rendering (bone bright)`, async () => {
      const bytes = new Uint8Array(readFileSync(join(sharedDicomDir, j.file)));
      const raw = await decodeRaw(bytes);
      expect(raw.info.transferSyntax.uid).toBe(j.transferSyntax);
      expect([raw.info.columns, raw.info.rows]).toEqual([j.width, j.height]);
      expect(sha(raw.values)).toBe(j.sha256);
      const img = await decodeInstance(bytes);
      expect(img.photometric).toBe('MONOCHROME1');
      expect(img.window.source).toBe('dicom');
      const ours = blockMeans(Float32Array.from(img.display.data, to8), img.width, img.height, j.renderBlocks.grid);
      let maxDiff = 0;
      ours.forEach((v, k) => (maxDiff = Math.max(maxDiff, Math.abs(v - j.renderBlocks.means[k]))));
      expect(maxDiff).toBeLessThan(1);
      // and not the inverse: inverted rendering would be far off
      const inverted = ours.map((v) => 255 - v);
      expect(inverted.some((v, k) => Math.abs(v - j.renderBlocks.means[k]) > 50)).toBe(true);
    });
  }
});

describe('VOI LUT functions (PS3.3 C.11.2.1.3)', () => {
  it('LINEAR, LINEAR_EXACT and SIGMOID follow the standard formulas', async () => {
    const { applyWindow } = await import('../../services/imaging/luts.js');
    const x = [-1000, 0, 39.5, 40, 80, 1000];
    const out = new Float32Array(x.length);
    applyWindow(x, out, 40, 80, 'LINEAR');
    x.forEach((v, i) => expect(out[i]).toBeCloseTo(v <= 40 - 0.5 - 39.5 ? 0 : v > 40 - 0.5 + 39.5 ? 1 : (v - 39.5) / 79 + 0.5, 6));
    applyWindow(x, out, 40, 80, 'LINEAR_EXACT');
    x.forEach((v, i) => expect(out[i]).toBeCloseTo(Math.min(1, Math.max(0, (v - 40) / 80 + 0.5)), 6));
    applyWindow(x, out, 40, 80, 'SIGMOID');
    x.forEach((v, i) => expect(out[i]).toBeCloseTo(1 / (1 + Math.exp((-4 * (v - 40)) / 80)), 6));
  });
});
