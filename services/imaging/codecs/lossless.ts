/** JPEG Lossless (process 14, any predictor) via the pure-JS jpeg-lossless-decoder-js. */
import { Decoder } from 'jpeg-lossless-decoder-js';
import { PixelDataError } from '../errors.js';

export function decodeJpegLossless(encoded: Uint8Array, rows: number, columns: number, bitsAllocated: number): Uint8Array | Uint16Array {
  let out: Uint8Array | Uint16Array;
  try {
    const copy = encoded.slice(); // the decoder keeps a reference to the buffer it reads
    out = new Decoder().decode(copy.buffer, 0, copy.length, bitsAllocated <= 8 ? 1 : 2) as Uint8Array | Uint16Array;
  } catch (e) {
    throw new PixelDataError('corrupt-pixel-data', `JPEG Lossless frame does not decode: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!out || out.length < rows * columns)
    throw new PixelDataError('corrupt-pixel-data', `JPEG Lossless frame decodes to ${out?.length ?? 0} samples, ${rows * columns} expected`);
  return out;
}
