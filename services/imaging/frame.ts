/** Turns one frame's bytes (native or encapsulated) into stored pixel values (sign-extended, masked to bits stored). */
import { decodeJpegDct } from './codecs/jpeg-dct.js';
import { decodeJpegLossless } from './codecs/lossless.js';
import { decodeRle } from './codecs/rle.js';
import { decodeWasm } from './codecs/wasm.js';
import type { ImageInfo } from './dataset.js';
import { PixelDataError } from './errors.js';

export interface RawFrame {
  /** Stored pixel values, one per pixel, row-major; signed values sign-extended from bits stored. */
  values: Int32Array;
  /** What decoded it, for the record. */
  decoder: string;
  /** Size of `values`: the frame's own size, or smaller when the decoder reduced it (see `reduction`). */
  width: number;
  height: number;
  /** Original pixels per decoded pixel along each axis (1, 2, 4…); decoded (x, y) covers original (x·r … x·r+r). */
  reduction: number;
  /** Damage the decoder reported while still returning pixels (premature end of data, corrupt segment). */
  warnings: string[];
}

export interface FrameDecodeOptions {
  /**
   * The caller needs the image only this large on its longer side (the model's input size). A
   * decoder that can cheaply decode a reduced resolution (JPEG 2000 wavelet levels) returns the
   * smallest such image whose longer side is still at least this; omitted = full resolution
   * (viewer, exports, anything pixel-exact).
   */
  minLongSide?: number;
}

type Samples = ArrayLike<number>;

export async function decodeFrame(info: ImageInfo, bytes: Uint8Array, opts: FrameDecodeOptions = {}): Promise<RawFrame> {
  let { rows, columns } = info;
  let reduction = 1;
  const codec = info.transferSyntax.codec;
  if (codec === 'native' || codec === 'deflate') {
    return { values: nativeValues(info, bytes), decoder: info.transferSyntax.bigEndian ? 'native big endian' : 'native little endian', warnings: [], width: columns, height: rows, reduction };
  }
  if (bytes.length === 0) throw new PixelDataError('corrupt-pixel-data', 'frame has zero length');
  let samples: Samples;
  let decoder: string;
  let warnings: string[] = [];
  let shift = 0;
  let mask = true;
  switch (codec) {
    case 'rle':
      samples = decodeRle(bytes, rows, columns, info.bitsAllocated);
      decoder = 'RLE (built in)';
      // RLE carries whole allocated words: bits stored sit under high bit as in native data.
      shift = info.highBit + 1 - info.bitsStored;
      break;
    case 'jpeg-lossless': {
      checkHeader(findSof(bytes), info, 'JPEG Lossless');
      ({ samples, warnings } = decodeJpegLossless(bytes, rows, columns, info.bitsAllocated));
      decoder = 'jpeg-lossless-decoder-js';
      break;
    }
    case 'jpeg-dct': {
      const sof = checkHeader(findSof(bytes), info, 'JPEG');
      if (sof.precision <= 8) {
        const d = await decodeWasm('libjpeg-turbo-8bit', bytes);
        checkSize(d.width, d.height, columns, rows, 'JPEG');
        if (d.components !== 1) throw new PixelDataError('unsupported-photometric', `JPEG frame has ${d.components} components in a greyscale image`);
        samples = d.samples;
        warnings = d.warnings;
        decoder = '@cornerstonejs/codec-libjpeg-turbo-8bit';
      } else {
        const d = decodeJpegDct(bytes);
        checkSize(d.width, d.height, columns, rows, 'JPEG');
        samples = d.samples;
        warnings = d.warnings;
        decoder = 'jpeg-dct (built in, IJG islow IDCT, 12-bit)';
      }
      break;
    }
    case 'jpeg-ls': {
      // CharLS spins for seconds on a cut stream: refuse one without its EOI marker up front.
      if (!endsWithEoi(bytes)) throw new PixelDataError('truncated', 'JPEG-LS codestream does not end with an EOI marker (cut short?)');
      checkHeader(findSof(bytes), info, 'JPEG-LS');
      const d = await decodeWasm('charls', bytes);
      checkSize(d.width, d.height, columns, rows, 'JPEG-LS');
      if (d.components !== 1) throw new PixelDataError('unsupported-photometric', `JPEG-LS frame has ${d.components} components in a greyscale image`);
      samples = d.samples;
      warnings = d.warnings;
      decoder = '@cornerstonejs/codec-charls';
      break;
    }
    case 'j2k': {
      const siz = checkHeader(findSiz(bytes), info, 'JPEG 2000');
      const level = j2kReduceLevel(bytes, siz, opts.minLongSide);
      if (level > 0) {
        // Resolution level r of a codestream anchored at 0: ceil(size / 2^r) samples (ISO 15444-1 B.5).
        reduction = 2 ** level;
        columns = Math.ceil(columns / reduction);
        rows = Math.ceil(rows / reduction);
      }
      const d = await decodeWasm('openjpeg', bytes, { reduceLevel: level });
      checkSize(d.width, d.height, columns, rows, 'JPEG 2000');
      if (d.components !== 1) throw new PixelDataError('unsupported-photometric', `JPEG 2000 frame has ${d.components} components in a greyscale image`);
      samples = d.samples;
      warnings = d.warnings;
      decoder = level > 0 ? `@cornerstonejs/codec-openjpeg (resolution reduced ${reduction}×)` : '@cornerstonejs/codec-openjpeg';
      // The codestream carries its own signedness and precision; trust its values.
      mask = !(d.signed && info.pixelRepresentation === 1);
      break;
    }
    default:
      throw new PixelDataError('unsupported-transfer-syntax', `no decoder for ${info.transferSyntax.name}`);
  }
  const n = rows * columns;
  if (samples.length < n) throw new PixelDataError('corrupt-pixel-data', `frame decodes to ${samples.length} samples, ${n} expected`);
  const values = new Int32Array(n);
  if (mask) toStored(samples, values, info.bitsStored, shift, info.pixelRepresentation === 1);
  else for (let i = 0; i < n; i++) values[i] = samples[i];
  return { values, decoder, warnings, width: columns, height: rows, reduction };
}

/**
 * How many wavelet levels to skip so the longer side stays at least `minLongSide`: bounded by the
 * levels the codestream has (COD, or a COC overriding it) and only for an image anchored at 0, so
 * a decoded pixel maps to original pixels exactly.
 */
function j2kReduceLevel(bytes: Uint8Array, siz: CodestreamHeader, minLongSide: number | undefined): number {
  if (!minLongSide || siz.offsetX !== 0 || siz.offsetY !== 0) return 0;
  const levels = decompositionLevels(bytes);
  let level = 0;
  while (level < levels && Math.ceil(Math.max(siz.width, siz.height) / 2 ** (level + 1)) >= minLongSide) level++;
  return level;
}

/** Fewest decomposition levels any COD/COC in the main header declares (0 if none is found). */
function decompositionLevels(b: Uint8Array): number {
  let levels = Infinity;
  // Main header: SOC, then marker segments (each FFxx + 2-byte length) until the first SOT.
  if (b[0] !== 0xff || b[1] !== 0x4f) return 0; // not a bare codestream (a JP2 wrapper): do not reduce
  let i = 2;
  while (i + 4 <= b.length) {
    if (b[i] !== 0xff) return 0;
    const marker = b[i + 1];
    if (marker === 0x90) break; // SOT
    const length = (b[i + 2] << 8) | b[i + 3];
    if (marker === 0x52 && i + 13 <= b.length) levels = Math.min(levels, b[i + 9]); // COD: Scod, SGcod(4), SPcod[0]
    if (marker === 0x53 && i + 8 <= b.length) levels = Math.min(levels, b[i + 6]); // COC (1 component): Ccoc(1), Scoc, SPcoc[0]
    i += 2 + length;
  }
  return Number.isFinite(levels) ? levels : 0;
}

function checkSize(w: number, h: number, columns: number, rows: number, what: string) {
  if (w !== columns || h !== rows)
    throw new PixelDataError('corrupt-pixel-data', `${what} frame is ${w}x${h} but the data set says ${columns}x${rows}`);
}

/** EOI within the last few bytes (fragments are padded to even length, not always with zero). */
/** SIZ of a JPEG 2000 codestream (or JP2 file: the SIZ is found inside its jp2c box). */
function findSiz(b: Uint8Array): CodestreamHeader | undefined {
  for (let i = 0; i + 42 <= b.length && i < 4096; i++) {
    if (b[i] === 0xff && b[i + 1] === 0x51) {
      const dv = new DataView(b.buffer, b.byteOffset + i, Math.min(64, b.length - i));
      const offsetX = dv.getUint32(14);
      const offsetY = dv.getUint32(18);
      const width = dv.getUint32(6) - offsetX;
      const height = dv.getUint32(10) - offsetY;
      const components = dv.getUint16(38);
      const precision = (b[i + 40] & 0x7f) + 1;
      return { precision, width, height, components, offsetX, offsetY };
    }
  }
  return undefined;
}

/** Refuses a codestream whose own header disagrees with the data set, before a decoder allocates for it. */
function checkHeader(h: CodestreamHeader | undefined, info: ImageInfo, what: string): CodestreamHeader {
  if (!h) throw new PixelDataError('corrupt-pixel-data', `${what} frame has no readable frame header`);
  checkSize(h.width, h.height, info.columns, info.rows, what);
  if (h.components !== 1) throw new PixelDataError('unsupported-photometric', `${what} frame has ${h.components} components in a greyscale image`);
  return h;
}

function endsWithEoi(b: Uint8Array): boolean {
  for (let i = b.length - 2; i >= Math.max(0, b.length - 6); i--) if (b[i] === 0xff && b[i + 1] === 0xd9) return true;
  return false;
}

interface CodestreamHeader {
  precision: number;
  width: number;
  height: number;
  components: number;
  /** JPEG 2000 image offset on the reference grid (XOsiz, YOsiz); 0 elsewhere. */
  offsetX?: number;
  offsetY?: number;
}

/** SOFn of a JPEG / JPEG-LS (SOF55) stream, read before any decoder allocates. */
function findSof(b: Uint8Array): CodestreamHeader | undefined {
  for (let i = 2; i + 4 < b.length; ) {
    if (b[i] !== 0xff) return undefined;
    const m = b[i + 1];
    if (m === 0xff) {
      i++;
      continue;
    }
    if ((m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) || m === 0xf7)
      return { precision: b[i + 4], height: (b[i + 5] << 8) | b[i + 6], width: (b[i + 7] << 8) | b[i + 8], components: b[i + 9] };
    if (m === 0xda) return undefined;
    i += 2 + ((b[i + 2] << 8) | b[i + 3]);
  }
  return undefined;
}

function toStored(src: Samples, dst: Int32Array, bitsStored: number, shift: number, signed: boolean) {
  const n = dst.length;
  const m = bitsStored >= 32 ? -1 : (1 << bitsStored) - 1;
  const sign = 1 << (bitsStored - 1);
  if (signed) {
    for (let i = 0; i < n; i++) {
      const v = (src[i] >> shift) & m;
      dst[i] = v & sign ? v - (m + 1) : v;
    }
  } else {
    for (let i = 0; i < n; i++) dst[i] = (src[i] >> shift) & m;
  }
}

function nativeValues(info: ImageInfo, bytes: Uint8Array): Int32Array {
  const n = info.rows * info.columns;
  const shift = info.highBit + 1 - info.bitsStored;
  const signed = info.pixelRepresentation === 1;
  const out = new Int32Array(n);
  if (info.bitsAllocated === 8) {
    toStored(bytes, out, info.bitsStored, shift, signed);
    return out;
  }
  let words: Uint16Array;
  if (!info.transferSyntax.bigEndian && bytes.byteOffset % 2 === 0) {
    words = new Uint16Array(bytes.buffer, bytes.byteOffset, n);
  } else {
    words = new Uint16Array(n);
    const be = info.transferSyntax.bigEndian;
    for (let i = 0; i < n; i++) words[i] = be ? (bytes[2 * i] << 8) | bytes[2 * i + 1] : bytes[2 * i] | (bytes[2 * i + 1] << 8);
  }
  toStored(words, out, info.bitsStored, shift, signed);
  return out;
}
