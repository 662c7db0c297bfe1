/**
 * Failure and warning reasons used in STOW-RS responses (PS3.18 §10.5.3, PS3.4 Annex B).
 * The human-readable text goes in Error Comment (0000,0902) next to the code.
 */
export const FailureReason = {
  /** Processing failure (our side, e.g. the database is down). */
  ProcessingFailure: 0x0110,
  /** Referenced SOP Class not supported: not an image we store. */
  SopClassNotSupported: 0x0122,
  /** Out of resources: too large, or no space left. */
  OutOfResources: 0xa700,
  /** Data set does not match SOP class (or not the study named in the URL). */
  DataSetMismatch: 0xa900,
  /** Cannot understand: not DICOM, truncated, required attributes missing. */
  CannotUnderstand: 0xc000,
  /** Referenced Transfer Syntax not supported. */
  TransferSyntaxNotSupported: 0xc122,
} as const;

export const WarningReason = {
  /** Elements discarded: a different object with the same SOP Instance UID was already stored; we kept that one. */
  ElementsDiscarded: 0xb006,
} as const;

/** Why an uploaded object was refused; safe to return to the client and to log (no patient data). */
export class DicomRejection extends Error {
  constructor(
    readonly failureReason: number,
    readonly reason: string,
    readonly sopClassUid?: string,
    readonly sopInstanceUid?: string,
  ) {
    super(reason);
    this.name = 'DicomRejection';
  }
}
