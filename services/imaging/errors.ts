export type PixelDataErrorCode =
  | 'unsupported-transfer-syntax'
  | 'unsupported-photometric'
  | 'unsupported-pixel-format'
  | 'corrupt-pixel-data'
  | 'truncated'
  | 'not-an-image'
  | 'too-large'
  | 'frame-out-of-range'
  | 'decode-timeout'
  | 'decode-failed';

/**
 * The one error type the pipeline throws for anything wrong with the input. `code` is stable and
 * machine-readable; the message names the problem in the file (never patient data).
 */
export class PixelDataError extends Error {
  override readonly name = 'PixelDataError';
  constructor(
    readonly code: PixelDataErrorCode,
    message: string,
    readonly detail?: Record<string, string | number>,
  ) {
    super(message);
  }
}

export function isPixelDataError(e: unknown): e is PixelDataError {
  return e instanceof PixelDataError;
}
