import { inflateSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { createDecodePool } from '../../services/imaging/decode-pool.js';
import { imageElements, packPixels, syntheticImage, writeDicom } from '../helpers/images.js';
import { decodeInstance, letterbox, PixelDataError, renderPng, toOriginal, type GreyImage } from '../../services/imaging/index.js';
import { fixture } from './helpers.js';

describe('decode pool (worker threads)', () => {
  const pool = createDecodePool(2, { timeoutMs: 20_000 });
  afterAll(() => pool.close());

  it('round trip: same result as in-process, input transferred (detached), output typed arrays', async () => {
    const local = await decodeInstance(fixture('u16b12_mono1.jpeg-ls-lossless.dcm'));
    const bytes = fixture('u16b12_mono1.jpeg-ls-lossless.dcm');
    const p = pool.decode(bytes);
    expect(bytes.buffer.byteLength).toBe(0); // transferred, not copied
    const img = await p;
    expect(img.display.data).toBeInstanceOf(Float32Array);
    expect(img.stored).toBeInstanceOf(Int32Array);
    expect(Array.from(img.display.data)).toEqual(Array.from(local.display.data));
    expect(img.transforms).toEqual(local.transforms);
  });

  it('typed errors cross the thread boundary', async () => {
    const err = await pool.decode(new Uint8Array(200)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PixelDataError);
    expect((err as PixelDataError).code).toBe('not-an-image');
  });

  it('runs decodes in parallel while the caller event loop stays free', async () => {
    const files = ['u16b12_3frames.rle.dcm', 'u16b16.jpeg-lossless-sv1.dcm', 'u8_mono2.jpeg-baseline.dcm', 'u16b12_mono2.jpeg-extended-12.dcm'];
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const out = await Promise.all(files.map((f) => pool.decode(fixture(f))));
    clearInterval(timer);
    expect(out.map((o) => o.width)).toEqual([41, 45, 63, 97]);
    expect(ticks).toBeGreaterThan(0);
  });

  it('a decode past its time limit is rejected, the thread replaced, and the pool keeps working', async () => {
    const big = syntheticImage(4096, 4096, 0, 4095, 3);
    const bytes = writeDicom({ elements: imageElements({ rows: 4096, columns: 4096, bitsAllocated: 16, bitsStored: 12, pixelRepresentation: 0 }), pixelData: packPixels(big, 16, 12) });
    const err = await pool.decode(bytes, {}, { timeoutMs: 5 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PixelDataError);
    expect((err as PixelDataError).code).toBe('decode-timeout');
    const after = await Promise.all([pool.decode(fixture('u8_mono2.rle.dcm')), pool.decode(fixture('u8_mono2.rle.dcm'))]);
    expect(after.map((a) => a.width)).toEqual([63, 63]);
  });

  it('close() rejects queued work and ends the threads', async () => {
    const p2 = createDecodePool(1);
    const a = p2.decode(fixture('u16b16.rle.dcm')).catch((e: Error) => e);
    const b = p2.decode(fixture('u16b16.rle.dcm')).catch((e: Error) => e);
    await p2.close();
    expect(String(await b)).toMatch(/closed/);
    await a;
    await expect(p2.decode(fixture('u16b16.rle.dcm'))).rejects.toThrow(/closed/);
  });
});

describe('letterbox mapping', () => {
  const img = (w: number, h: number): GreyImage => ({ width: w, height: h, data: new Float32Array(w * h) });
  it('a bright dot lands where toOriginal says, for wide, tall and odd sizes', () => {
    for (const [w, h, px, py] of [[2048, 2500, 1500, 400], [97, 73, 10, 60], [1841, 1955, 900, 1900], [50, 20, 40, 5]] as const) {
      const im = img(w, h);
      // a 3% square around (px,py)
      const r = Math.max(1, Math.round(Math.max(w, h) * 0.015));
      for (let y = py - r; y <= py + r; y++) for (let x = px - r; x <= px + r; x++) if (x >= 0 && y >= 0 && x < w && y < h) im.data[y * w + x] = 1;
      const lb = letterbox(im, 384);
      expect(lb.data.length).toBe(384 * 384);
      // centroid of the dot on the model input, in pixel-centre coordinates
      let sx = 0, sy = 0, s = 0;
      for (let y = 0; y < 384; y++) for (let x = 0; x < 384; x++) { const v = lb.data[y * 384 + x]; sx += v * (x + 0.5); sy += v * (y + 0.5); s += v; }
      const back = toOriginal(lb, sx / s, sy / s);
      const cx = Math.min(w, px + r + 1) / 2 + Math.max(0, px - r) / 2;
      const cy = Math.min(h, py + r + 1) / 2 + Math.max(0, py - r) / 2;
      expect(Math.abs(back.x - cx)).toBeLessThan(Math.max(1, 1 / lb.scale));
      expect(Math.abs(back.y - cy)).toBeLessThan(Math.max(1, 1 / lb.scale));
      // padding is black and content is centred
      expect(lb.contentWidth === 384 || lb.contentHeight === 384).toBe(true);
      if (lb.offsetX > 0) expect(lb.data[0]).toBe(0);
    }
  });
  it('corners map back to the image corners (within one model pixel: content size is rounded)', () => {
    for (const [w, h] of [[2048, 2500], [1841, 1955], [97, 73]]) {
      const lb = letterbox(img(w, h), 384);
      const tl = toOriginal(lb, lb.offsetX, lb.offsetY);
      const br = toOriginal(lb, lb.offsetX + lb.contentWidth, lb.offsetY + lb.contentHeight);
      expect(tl.x).toBeCloseTo(0, 5);
      expect(tl.y).toBeCloseTo(0, 5);
      expect(Math.abs(br.x - w)).toBeLessThanOrEqual(1 / lb.scale);
      expect(Math.abs(br.y - h)).toBeLessThanOrEqual(1 / lb.scale);
    }
  });
});

describe('renderPng', () => {
  function parsePng(buf: Buffer) {
    expect(buf.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    let pos = 8;
    const chunks: { type: string; data: Buffer }[] = [];
    while (pos < buf.length) {
      const len = buf.readUInt32BE(pos);
      const type = buf.subarray(pos + 4, pos + 8).toString('latin1');
      chunks.push({ type, data: buf.subarray(pos + 8, pos + 8 + len) });
      pos += 12 + len;
    }
    return chunks;
  }
  it('a valid 8-bit greyscale PNG, aspect kept, pixels from the display image', async () => {
    const img = await decodeInstance(fixture('u16b12_mono1.explicit-le.dcm'));
    const png = renderPng(img.display, 48);
    const chunks = parsePng(png);
    expect(chunks.map((c) => c.type)).toEqual(['IHDR', 'IDAT', 'IEND']);
    const ihdr = chunks[0].data;
    const w = ihdr.readUInt32BE(0);
    const h = ihdr.readUInt32BE(4);
    expect([w, h, ihdr[8], ihdr[9]]).toEqual([48, Math.round((73 * 48) / 97), 8, 0]);
    const raw = inflateSync(chunks[1].data);
    expect(raw.length).toBe((w + 1) * h);
    // bone bar (centre) brighter than soft tissue in the thumbnail too
    const row = Math.floor(h / 2) * (w + 1) + 1;
    expect(raw[row + Math.floor(w / 2)]).toBeGreaterThan(raw[row + Math.floor(w / 2) - Math.floor(w / 5)] + 20);
  });
  it('does not enlarge small images', () => {
    const png = renderPng({ width: 3, height: 2, data: new Float32Array([0, 0.5, 1, 1, 0.5, 0]) }, 256);
    const ihdr = parsePng(png)[0].data;
    expect([ihdr.readUInt32BE(0), ihdr.readUInt32BE(4)]).toEqual([3, 2]);
    const raw = inflateSync(parsePng(png)[1].data);
    expect(Array.from(raw)).toEqual([0, 0, 128, 255, 0, 255, 128, 0]);
  });
});
