/**
 * The image pipeline: a stored DICOM instance in, a correct greyscale image out (modality values,
 * display intensities in [0, 1] with bone bright, geometry, and the transforms applied).
 * CPU-bound: call it from the classify worker, or through decode-pool.ts to keep an event loop free.
 */
import { parseInstance, type ImageInfo } from './dataset.js';
import { PixelDataError } from './errors.js';
import { decodeFrame } from './frame.js';
import type { GreyImage } from './letterbox.js';
import { applyModality, toDisplay, type VoiOptions, type WindowChoice } from './luts.js';

export { PixelDataError, isPixelDataError, type PixelDataErrorCode } from './errors.js';
export { inOriginalPixels, letterbox, letterboxGeometry, toOriginal, resize, type GreyImage, type Letterbox } from './letterbox.js';
export { readGreyPng, renderPng } from './png.js';
export { checkPlausibility, type PlausibilityVerdict } from './plausibility.js';
export { SUPPORTED_TRANSFER_SYNTAXES, transferSyntax } from '../dicom/index.js';
export { MAX_FRAME_PIXELS, MAX_TOTAL_PIXELS } from './dataset.js';

export interface DecodeOptions extends VoiOptions {
  /** Zero-based frame index (default 0). */
  frame?: number;
  /** Largest Deflated data set once inflated (MAX_PART_MB); the parser's default otherwise. */
  maxInflatedBytes?: number;
  /** See FrameDecodeOptions: the image may come back smaller (`reduction`), never below this on its longer side. */
  minLongSide?: number;
}

export interface DecodedImage {
  /** The original image size (Rows, Columns), also when `stored`/`display` are reduced. */
  width: number;
  height: number;
  /** Original pixels per `stored`/`display` pixel on each axis: 1, or 2^k after a reduced JPEG 2000 decode. */
  reduction: number;
  /** Number of frames in the instance. */
  frames: number;
  frameIndex: number;
  /** Modality values (after rescale / modality LUT), row-major. */
  stored: Int32Array | Float32Array;
  /** Display intensity in [0, 1], bone bright (after VOI and presentation LUT / MONOCHROME1 inversion). */
  display: GreyImage;
  window: WindowChoice;
  photometric: string;
  bitsAllocated: number;
  bitsStored: number;
  pixelRepresentation: number;
  transferSyntaxUid: string;
  /** Every transform applied, in order, for the record. */
  transforms: string[];
  /** Damage the decoder reported while still returning pixels; the worker treats these as errors (see plausibility.ts). */
  warnings: string[];
}

export interface RawDecoded {
  info: ImageInfo;
  frameIndex: number;
  /** Stored pixel values before any LUT (sign-extended from bits stored). */
  values: Int32Array;
  decoder: string;
  warnings: string[];
  /** Size of `values` and the reduction from the original (see RawFrame). */
  width: number;
  height: number;
  reduction: number;
}

/** Decodes one frame to stored pixel values, before any LUT (used by the tests against dcmtk). */
export async function decodeRaw(bytes: Uint8Array, opts: { frame?: number; maxInflatedBytes?: number; minLongSide?: number } = {}): Promise<RawDecoded> {
  const parsed = await parseInstance(bytes, { maxInflatedBytes: opts.maxInflatedBytes });
  const frameIndex = opts.frame ?? 0;
  if (!Number.isInteger(frameIndex) || frameIndex < 0 || frameIndex >= parsed.info.frames)
    throw new PixelDataError('frame-out-of-range', `frame ${frameIndex} requested, the instance has ${parsed.info.frames}`);
  try {
    const raw = await decodeFrame(parsed.info, parsed.frameBytes(frameIndex), { minLongSide: opts.minLongSide });
    return { info: parsed.info, frameIndex, values: raw.values, decoder: raw.decoder, warnings: raw.warnings, width: raw.width, height: raw.height, reduction: raw.reduction };
  } catch (e) {
    if (e instanceof PixelDataError) throw e;
    // Anything else from a codec is still the file's problem: never let it escape untyped.
    throw new PixelDataError('corrupt-pixel-data', `frame ${frameIndex} does not decode: ${e instanceof Error ? e.message : String(e)}`);
  }
}

export async function decodeInstance(bytes: Uint8Array, opts: DecodeOptions = {}): Promise<DecodedImage> {
  const raw = await decodeRaw(bytes, opts);
  const { info } = raw;
  const transforms = [`decoded ${info.transferSyntax.name} with ${raw.decoder}`];
  const stored = applyModality(info, raw.values, transforms);
  const { data, window } = toDisplay(info, stored, opts, transforms);
  return {
    width: info.columns,
    height: info.rows,
    reduction: raw.reduction,
    frames: info.frames,
    frameIndex: raw.frameIndex,
    stored,
    display: { width: raw.width, height: raw.height, data },
    window,
    photometric: info.photometric,
    bitsAllocated: info.bitsAllocated,
    bitsStored: info.bitsStored,
    pixelRepresentation: info.pixelRepresentation,
    transferSyntaxUid: info.transferSyntax.uid,
    transforms,
    warnings: raw.warnings,
  };
}
