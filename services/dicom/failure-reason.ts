/**
 * Failure and warning reasons of STOW-RS responses (PS3.18 §10.5.3) and C-STORE statuses (PS3.4
 * Annex B), and the plain-language text that goes with them in Error Comment (0000,0902).
 * Error Comment is LO: every text here is at most 64 characters and names no parser internals;
 * test/dicom/reasons.test.ts checks each one.
 */
export const FailureReason = {
  /** Processing failure (our side, e.g. the database is down). */
  ProcessingFailure: 0x0110,
  /** Referenced SOP Class not supported: not an object we store. */
  SopClassNotSupported: 0x0122,
  /** Out of resources: too large, or no space left. */
  OutOfResources: 0xa700,
  /** Data set does not match SOP class (e.g. an image without Pixel Data, or another study than the URL's). */
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

/** Longest Error Comment (VR LO). */
export const MAX_ERROR_COMMENT = 64;

/** The attributes whose absence is named in a reason. */
export type RequiredAttribute = 'SOP Class UID' | 'SOP Instance UID' | 'Study Instance UID' | 'Series Instance UID';

/** Every reason this module gives, by what went wrong. */
export const Reason = {
  notDicom: 'not a DICOM file',
  truncated: 'truncated DICOM file: an element runs past the end',
  nestedTooDeep: 'sequences are nested too deeply to read',
  unreadable: 'the DICOM data set cannot be read',
  cannotInflate: 'deflated data set cannot be inflated',
  inflatedTooLarge: 'inflated data set is over the size limit',
  inflatedOverImage: 'inflated data set is larger than its image needs',
  missingAttribute: (name: RequiredAttribute) => `missing required attribute: ${name}`,
  invalidUid: (name: RequiredAttribute) => `invalid ${name}: digits and dots, at most 64`,
  metaNeedsPreamble: 'no preamble, and the meta header names another encoding',
  metaMismatch: 'SOP Class or Instance UID differs from the file meta header',
  sopClassNotStored: 'SOP class is not an image storage class we store',
  transferSyntaxNotSupported: 'transfer syntax is not supported',
  noPixelData: 'image object without Pixel Data',
  noRowsColumns: 'Rows and Columns must be present and non-zero',
  badBitsAllocated: 'Bits Allocated must be 1, 8, 16 or 32',
  noPhotometric: 'Photometric Interpretation is missing',
  pixelDataShort: 'Pixel Data is shorter than the image size needs',
  nativeButEncapsulated: 'uncompressed syntax but Pixel Data is in fragments',
  noFragments: 'compressed Pixel Data holds no fragments',
  emptyFragment: 'compressed Pixel Data has an empty fragment',
  tooManyFragments: 'compressed Pixel Data has too many fragments',
  otherStudy: 'instance belongs to another study than the URL names',
  studyOfAnotherPatient: 'Study UID is stored for another Patient ID, not merged',
} as const;

/** What kind of problem a parse found; the image pipeline maps it to its own error codes. */
export type DicomProblem = 'not-dicom' | 'truncated' | 'corrupt' | 'too-large' | 'unsupported-syntax' | 'not-an-image' | 'refused';

/** Why an object was refused; its reason is safe to return to the client and to log (no patient data). */
export class DicomRejection extends Error {
  constructor(
    readonly failureReason: number,
    readonly reason: string,
    readonly sopClassUid?: string,
    readonly sopInstanceUid?: string,
    readonly problem: DicomProblem = 'refused',
  ) {
    super(reason);
    this.name = 'DicomRejection';
  }
}

/**
 * A DICOM string value fit to quote in a message or log: only a short defined-term-like text
 * (capitals, digits, space, underscore) is shown; anything else becomes "(unrecognised value)".
 */
export function quotable(value: string | undefined | null, maxLength = 16): string {
  const text = (value ?? '').replace(/[\0 ]+$/, '');
  return /^[A-Z0-9_ ]+$/.test(text) && text.length <= maxLength ? text : '(unrecognised value)';
}
