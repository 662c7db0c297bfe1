/** JPEG Lossless (process 14, any predictor) via the pure-JS jpeg-lossless-decoder-js. */
import { Decoder } from 'jpeg-lossless-decoder-js';
import { PixelDataError } from '../errors.js';

export interface LosslessResult {
  samples: Uint8Array | Uint16Array;
  /** The decoder stops quietly at the first marker it meets; a stop before the last row is reported here (treat as an error). */
  warnings: string[];
}

export function decodeJpegLossless(encoded: Uint8Array, rows: number, columns: number, bitsAllocated: number): LosslessResult {
  let out: Uint8Array | Uint16Array;
  const warnings: string[] = [];
  try {
    // The decoder reads from an ArrayBuffer at offset 0 and keeps it: give it a copy of its own.
    // (Not encoded.slice(): on a Node Buffer that is a view into a shared pool, not a copy.)
    const copy = new Uint8Array(encoded);
    const decoder = new Decoder();
    out = decoder.decode(copy.buffer, 0, copy.length, bitsAllocated <= 8 ? 1 : 2) as Uint8Array | Uint16Array;
    // Its position after the scan: a complete frame leaves it past the last row.
    if (decoder.yLoc < decoder.yDim) {
      warnings.push(`Corrupt JPEG data: premature end of data segment (the compressed data stops after ${decoder.yLoc} of ${decoder.yDim} rows)`);
    }
  } catch (e) {
    throw new PixelDataError('corrupt-pixel-data', `JPEG Lossless frame does not decode: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!out || out.length < rows * columns)
    throw new PixelDataError('corrupt-pixel-data', `JPEG Lossless frame decodes to ${out?.length ?? 0} samples, ${rows * columns} expected`);
  return { samples: out, warnings };
}
