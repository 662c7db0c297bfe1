/**
 * Loads the maintained Cornerstone WASM codecs (OpenJPEG, CharLS, libjpeg-turbo) from node_modules
 * by file path (never a URL) and runs one decode. Each module is created once per thread; after a
 * decode that aborts inside WASM the module is thrown away and re-created on next use.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { PixelDataError } from '../errors.js';

const require = createRequire(import.meta.url);

interface FrameInfo {
  width: number;
  height: number;
  bitsPerSample: number;
  componentCount: number;
  isSigned: boolean;
}
interface WasmDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  getDecodedBuffer(): Uint8Array;
  decode(): void;
  /** OpenJPEG only: skip `level` wavelet levels (each halves both sides); layer 0 = all quality layers. */
  decodeSubResolution?(level: number, layer: number): void;
  getFrameInfo(): FrameInfo;
  delete(): void;
}
interface WasmModule {
  [className: string]: unknown;
}

export type WasmCodec = 'openjpeg' | 'charls' | 'libjpeg-turbo-8bit';

const spec: Record<WasmCodec, { pkg: string; className: string }> = {
  openjpeg: { pkg: '@cornerstonejs/codec-openjpeg', className: 'J2KDecoder' },
  charls: { pkg: '@cornerstonejs/codec-charls', className: 'JpegLSDecoder' },
  'libjpeg-turbo-8bit': { pkg: '@cornerstonejs/codec-libjpeg-turbo-8bit', className: 'JPEGDecoder' },
};

const modules = new Map<WasmCodec, Promise<WasmModule>>();

/**
 * What the codec printed during the current decode. Decodes are synchronous inside WASM, so one
 * collector per thread is enough. OpenJPEG reports a damaged codestream as "[ERROR] …" /
 * "[WARNING] …" lines and still returns pixels; libjpeg would print its "Corrupt JPEG data" warnings.
 */
let printed: string[] | undefined;
const collect = (line: string) => {
  if (printed && /\[(ERROR|WARNING)\]|corrupt|premature|warning/i.test(line)) printed.push(line.replace(/^\[(ERROR|WARNING)\]\s*/, '').trim());
};

function load(codec: WasmCodec): Promise<WasmModule> {
  let p = modules.get(codec);
  if (!p) {
    const { pkg } = spec[codec];
    const factory = require(`${pkg}/decodewasmjs`) as (arg: object) => Promise<WasmModule>;
    const wasmBinary = readFileSync(require.resolve(`${pkg}/decodewasm`));
    p = factory({ wasmBinary, print: collect, printErr: collect });
    modules.set(codec, p);
  }
  return p;
}

export interface DecodedSamples {
  width: number;
  height: number;
  bitsPerSample: number;
  components: number;
  signed: boolean;
  /** One sample per element, copied out of WASM memory. */
  samples: Uint8Array | Uint16Array | Int16Array;
  /** Errors and warnings the codec printed while still returning pixels (treat as errors). */
  warnings: string[];
}

/**
 * `reduceLevel` (OpenJPEG only): decode at 1/2^level of the size on each side; the caller has
 * checked the codestream has that many levels. The result's width and height are the reduced size.
 */
export async function decodeWasm(codec: WasmCodec, encoded: Uint8Array, opts: { reduceLevel?: number } = {}): Promise<DecodedSamples> {
  const mod = await load(codec);
  const Ctor = mod[spec[codec].className] as new () => WasmDecoder;
  const decoder = new Ctor();
  const warnings: string[] = [];
  printed = warnings;
  try {
    decoder.getEncodedBuffer(encoded.length).set(encoded);
    const level = opts.reduceLevel ?? 0;
    if (level > 0) {
      if (!decoder.decodeSubResolution) throw new Error(`${spec[codec].className} cannot decode a reduced resolution`);
      decoder.decodeSubResolution(level, 0);
    } else {
      decoder.decode();
    }
    printed = undefined;
    // The frame info keeps the full size; a reduced decode holds ceil(size / 2^level) samples per side.
    const full = decoder.getFrameInfo();
    const info = { ...full, width: Math.ceil(full.width / 2 ** level), height: Math.ceil(full.height / 2 ** level) };
    const buf = decoder.getDecodedBuffer();
    const n = info.width * info.height * info.componentCount;
    let samples: Uint8Array | Uint16Array | Int16Array;
    if (info.bitsPerSample <= 8) {
      if (buf.length < n) throw new Error('decoded buffer shorter than the frame');
      samples = buf.slice(0, n);
    } else {
      if (buf.length < 2 * n) throw new Error('decoded buffer shorter than the frame');
      const copy = buf.slice(0, 2 * n);
      samples = info.isSigned ? new Int16Array(copy.buffer, 0, n) : new Uint16Array(copy.buffer, 0, n);
    }
    return { width: info.width, height: info.height, bitsPerSample: info.bitsPerSample, components: info.componentCount, signed: info.isSigned, samples, warnings };
  } catch (e) {
    // An abort leaves the emscripten runtime unusable: start a fresh instance next time.
    modules.delete(codec);
    const msg = e instanceof Error ? e.message : typeof e === 'number' ? `WASM exception ${e}` : String(e);
    throw new PixelDataError('corrupt-pixel-data', `${spec[codec].className} could not decode the frame: ${msg}`);
  } finally {
    printed = undefined;
    try {
      decoder.delete();
    } catch {
      /* runtime already aborted */
    }
  }
}
