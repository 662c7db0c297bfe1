/** DICOM RLE Lossless (PS3.5 Annex G): a 64-byte header of segment offsets, PackBits segments, most significant byte first. */
import { PixelDataError } from '../errors.js';

export function decodeRle(encoded: Uint8Array, rows: number, columns: number, bitsAllocated: number): Uint8Array | Uint16Array {
  const pixels = rows * columns;
  const bytesPerSample = bitsAllocated / 8;
  if (encoded.length < 64) throw new PixelDataError('corrupt-pixel-data', `RLE frame is ${encoded.length} bytes, shorter than its 64-byte header`);
  const view = new DataView(encoded.buffer, encoded.byteOffset, encoded.byteLength);
  const segments = view.getUint32(0, true);
  if (segments !== bytesPerSample)
    throw new PixelDataError('corrupt-pixel-data', `RLE header declares ${segments} segments, ${bytesPerSample} expected for ${bitsAllocated}-bit greyscale`);
  const offsets: number[] = [];
  for (let s = 0; s < segments; s++) offsets.push(view.getUint32(4 + 4 * s, true));
  const planes: Uint8Array[] = [];
  for (let s = 0; s < segments; s++) {
    const start = offsets[s];
    const end = s + 1 < segments ? offsets[s + 1] : encoded.length;
    if (start < 64 || start > encoded.length || end > encoded.length || end < start)
      throw new PixelDataError('corrupt-pixel-data', `RLE segment ${s} offset ${start} is outside the frame (${encoded.length} bytes)`);
    planes.push(unpackBits(encoded, start, end, pixels, s));
  }
  if (bytesPerSample === 1) return planes[0];
  const out = new Uint16Array(pixels);
  const [hi, lo] = planes;
  for (let i = 0; i < pixels; i++) out[i] = (hi[i] << 8) | lo[i];
  return out;
}

function unpackBits(src: Uint8Array, start: number, end: number, length: number, segment: number): Uint8Array {
  const out = new Uint8Array(length);
  let o = 0;
  let i = start;
  while (i < end && o < length) {
    const n = src[i++];
    if (n < 128) {
      const count = n + 1;
      if (i + count > end) throw new PixelDataError('corrupt-pixel-data', `RLE segment ${segment}: literal run past the end of the segment`);
      if (o + count > length) throw new PixelDataError('corrupt-pixel-data', `RLE segment ${segment}: decodes to more than ${length} bytes`);
      out.set(src.subarray(i, i + count), o);
      i += count;
      o += count;
    } else if (n > 128) {
      const count = 257 - n;
      if (i >= end) throw new PixelDataError('corrupt-pixel-data', `RLE segment ${segment}: replicate run past the end of the segment`);
      if (o + count > length) throw new PixelDataError('corrupt-pixel-data', `RLE segment ${segment}: decodes to more than ${length} bytes`);
      out.fill(src[i++], o, o + count);
      o += count;
    }
  }
  if (o < length) throw new PixelDataError('corrupt-pixel-data', `RLE segment ${segment} decodes to ${o} bytes, ${length} expected`);
  return out;
}
