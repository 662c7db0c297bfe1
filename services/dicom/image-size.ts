/** How many bytes native (uncompressed) Pixel Data needs for the image a data set declares. */
export interface DeclaredImage {
  rows: number;
  columns: number;
  samplesPerPixel: number;
  bitsAllocated: number;
  frames: number;
  photometricInterpretation?: string | null;
}

/**
 * PS3.3 C.7.6.3.1.2: YBR_FULL_422 (and YBR_PARTIAL_422) keep 4:2:2 subsampled chroma, so three
 * samples per pixel take two samples' worth of bytes; every other interpretation stores each sample.
 */
export function nativePixelDataBytes(image: DeclaredImage): number {
  const photometric = image.photometricInterpretation?.trim().toUpperCase();
  const samples = photometric === 'YBR_FULL_422' || photometric === 'YBR_PARTIAL_422' ? 2 : image.samplesPerPixel;
  return Math.ceil((image.rows * image.columns * samples * image.bitsAllocated * image.frames) / 8);
}
