import dicomParser, { type DataSet } from 'dicom-parser';
import zlib from 'node:zlib';
import { DicomRejection, FailureReason } from './failure-reason.js';
import { isNonImageSopClass, isStorableSopClass } from './sop-class.js';
import { isValidUid } from './uid.js';
import {
  DEFLATED, EXPLICIT_BIG, EXPLICIT_LITTLE, IMPLICIT_LITTLE, NATIVE_SYNTAXES, TRANSFER_SYNTAXES,
  isSupportedTransferSyntax,
} from './transfer-syntax.js';

/** What we record about an instance. Patient fields are stored, never logged. */
export interface InstanceMetadata {
  transferSyntaxUid: string;
  hasPreamble: boolean;
  sopClassUid: string;
  sopInstanceUid: string;
  instanceNumber: number | null;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  patientName: string | null;
  patientId: string | null;
  patientBirthDate: string | null;
  patientSex: string | null;
  patientAge: string | null;
  accessionNumber: string | null;
  studyDate: string | null;
  studyTime: string | null;
  studyDescription: string | null;
  requestedPriority: string | null;
  seriesNumber: number | null;
  seriesDescription: string | null;
  modality: string | null;
  bodyPart: string | null;
  laterality: string | null;
  viewPosition: string | null;
  rows: number;
  columns: number;
  bitsAllocated: number;
  bitsStored: number;
  highBit: number;
  pixelRepresentation: number;
  samplesPerPixel: number;
  photometricInterpretation: string;
  numberOfFrames: number;
}

/** Inflated deflate streams are capped so a tiny zip bomb cannot exhaust memory. */
const MAX_INFLATED_BYTES = 1024 * 1024 * 1024;

const VRS = new Set('AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV'.split(' '));

/**
 * A file without the 128-byte preamble + "DICM" is a bare data set. Its first element tells the
 * encoding: a two-letter VR after the tag means explicit VR; the byte order of the group number
 * tells little from big endian.
 */
export function inferRawTransferSyntax(bytes: Uint8Array): string | undefined {
  if (bytes.length < 8) return undefined;
  const groupLE = bytes[0] | (bytes[1] << 8);
  const groupBE = (bytes[0] << 8) | bytes[1];
  const explicit = VRS.has(String.fromCharCode(bytes[4], bytes[5]));
  if (groupLE === 0x0002 || groupLE === 0x0008) return explicit ? EXPLICIT_LITTLE : IMPLICIT_LITTLE;
  if (groupBE === 0x0008 && explicit) return EXPLICIT_BIG;
  return undefined;
}

function hasPart10Preamble(bytes: Uint8Array): boolean {
  return bytes.length >= 132 && bytes[128] === 0x44 && bytes[129] === 0x49 && bytes[130] === 0x43 && bytes[131] === 0x4d;
}

function message(error: unknown): string {
  if (typeof error === 'string') return error;
  // parseDicom wraps failures as { exception, dataSet }.
  if (error && typeof error === 'object' && 'exception' in error) return message((error as { exception: unknown }).exception);
  if (error instanceof Error) return error.message;
  return String(error);
}

function parse(bytes: Uint8Array): { dataSet: DataSet; hasPreamble: boolean } {
  const hasPreamble = hasPart10Preamble(bytes);
  let rawSyntax: string | undefined;
  if (!hasPreamble) {
    rawSyntax = inferRawTransferSyntax(bytes);
    if (!rawSyntax) {
      throw new DicomRejection(FailureReason.CannotUnderstand, 'not a DICOM file: no "DICM" marker at byte 128 and the data does not start with a DICOM element');
    }
  }
  try {
    const dataSet = dicomParser.parseDicom(bytes, {
      ...(rawSyntax ? { TransferSyntaxUID: rawSyntax } : {}),
      inflater: (byteArray: Uint8Array, position: number) => {
        const inflated = zlib.inflateRawSync(byteArray.subarray(position), { maxOutputLength: MAX_INFLATED_BYTES });
        const full = new Uint8Array(position + inflated.length);
        full.set(byteArray.subarray(0, position));
        full.set(inflated, position);
        return full;
      },
    } as dicomParser.ParseDicomOptions);
    return { dataSet, hasPreamble };
  } catch (error) {
    throw rejectionFor(error);
  }
}

/** Any error from reading a data set, as the rejection (and plain reason) the sender gets. */
function rejectionFor(error: unknown): DicomRejection {
  if (error instanceof DicomRejection) return error;
  const text = message(error);
  if (/call stack/i.test(text)) {
    return new DicomRejection(FailureReason.CannotUnderstand, 'sequences are nested too deeply to read');
  }
  if (/overrun|overread|past end|beyond|eof|end of buffer|reached end|truncat|unexpected end/i.test(text)) {
    return new DicomRejection(FailureReason.CannotUnderstand, 'truncated DICOM file: an element runs past the end of the data');
  }
  if (/incorrect header check|invalid (stored block|distance|code)|unexpected end of file|buffer size/i.test(text)) {
    return new DicomRejection(FailureReason.CannotUnderstand, 'deflated data set cannot be inflated');
  }
  return new DicomRejection(FailureReason.CannotUnderstand, `cannot parse DICOM: ${text.replace(/^dicomParser\.\w+:\s*/, '')}`);
}

const str = (ds: DataSet, tag: string): string | null => {
  const value = ds.string(tag);
  return value === undefined || value === '' ? null : value;
};

const num = (ds: DataSet, tag: string): number | null => {
  const element = ds.elements[tag];
  if (!element || element.length === 0) return null;
  const value = ds.uint16(tag);
  return value === undefined ? null : value;
};

const intString = (ds: DataSet, tag: string): number | null => {
  const value = ds.intString(tag);
  return value === undefined || Number.isNaN(value) ? null : value;
};

function requestedPriority(ds: DataSet): string | null {
  const direct = str(ds, 'x00401003');
  if (direct) return direct.toUpperCase();
  const items = ds.elements.x00400275?.items ?? [];
  for (const item of items) {
    const value = item.dataSet ? str(item.dataSet, 'x00401003') : null;
    if (value) return value.toUpperCase();
  }
  return null;
}

/**
 * Parses and validates an uploaded object. Throws DicomRejection with the STOW failure reason and
 * a plain-language explanation; returns the attributes we record otherwise.
 */
export function parseInstance(bytes: Uint8Array): InstanceMetadata {
  try {
    return readInstance(bytes);
  } catch (error) {
    // dicom-parser's accessors throw strings (e.g. reading an element that runs past the end):
    // still the file's fault, so a rejection with its reason, never a "processing failure".
    throw rejectionFor(error);
  }
}

function readInstance(bytes: Uint8Array): InstanceMetadata {
  const { dataSet: ds, hasPreamble } = parse(bytes);
  const transferSyntaxUid = str(ds, 'x00020010') ?? IMPLICIT_LITTLE;
  const sopClassUid = str(ds, 'x00080016');
  const sopInstanceUid = str(ds, 'x00080018');
  const studyInstanceUid = str(ds, 'x0020000d');
  const seriesInstanceUid = str(ds, 'x0020000e');

  const reject = (code: number, reason: string): never => {
    throw new DicomRejection(code, reason, sopClassUid ?? undefined, sopInstanceUid ?? undefined);
  };

  const missing = [
    ['SOP Class UID (0008,0016)', sopClassUid],
    ['SOP Instance UID (0008,0018)', sopInstanceUid],
    ['Study Instance UID (0020,000D)', studyInstanceUid],
    ['Series Instance UID (0020,000E)', seriesInstanceUid],
  ].filter(([, value]) => !value).map(([name]) => name);
  if (missing.length) reject(FailureReason.CannotUnderstand, `missing required attribute: ${missing.join(', ')}`);
  for (const uid of [sopClassUid, sopInstanceUid, studyInstanceUid, seriesInstanceUid] as string[]) {
    if (!isValidUid(uid)) reject(FailureReason.CannotUnderstand, 'invalid UID: need digits and dots, max 64, no empty parts');
  }
  // PS3.10: the meta header names the same object as the data set (C-STORE writes it from the request).
  const declaredClass = str(ds, 'x00020002');
  const declaredInstance = str(ds, 'x00020003');
  if ((declaredClass && declaredClass !== sopClassUid) || (declaredInstance && declaredInstance !== sopInstanceUid)) {
    reject(FailureReason.DataSetMismatch, 'SOP Class/Instance UID differ from the file meta header');
  }
  if (!hasPreamble && ds.elements.x00020010 && transferSyntaxUid !== EXPLICIT_LITTLE && transferSyntaxUid !== inferRawTransferSyntax(bytes)) {
    reject(FailureReason.CannotUnderstand, 'file has no 128-byte preamble and its meta header declares an encoding that cannot be read without it; send it as a DICOM Part 10 file');
  }
  if (!isStorableSopClass(sopClassUid!)) {
    reject(FailureReason.SopClassNotSupported, `SOP class ${sopClassUid} is not an image storage class this service accepts`);
  }
  if (!isSupportedTransferSyntax(transferSyntaxUid)) {
    reject(FailureReason.TransferSyntaxNotSupported, `transfer syntax ${transferSyntaxUid} is not supported; supported: ${Object.values(TRANSFER_SYNTAXES).join(', ')}`);
  }
  // A report, key-object note or presentation state: recorded without pixel attributes.
  if (isNonImageSopClass(sopClassUid!)) return { ...describe(ds, transferSyntaxUid, hasPreamble), ...NO_PIXELS };

  const pixelData = ds.elements.x7fe00010;
  if (!pixelData) reject(FailureReason.DataSetMismatch, 'image SOP class without Pixel Data (7FE0,0010)');
  const rows = num(ds, 'x00280010') ?? 0;
  const columns = num(ds, 'x00280011') ?? 0;
  const bitsAllocated = num(ds, 'x00280100') ?? 0;
  const samplesPerPixel = num(ds, 'x00280002') ?? 1;
  const numberOfFrames = Math.max(1, intString(ds, 'x00280008') ?? 1);
  const photometricInterpretation = str(ds, 'x00280004');
  if (!rows || !columns) reject(FailureReason.CannotUnderstand, 'Rows (0028,0010) and Columns (0028,0011) must be present and non-zero');
  if (![1, 8, 16, 32].includes(bitsAllocated)) reject(FailureReason.CannotUnderstand, `Bits Allocated (0028,0100) must be 1, 8, 16 or 32, got ${bitsAllocated}`);
  if (!photometricInterpretation) reject(FailureReason.CannotUnderstand, 'missing Photometric Interpretation (0028,0004)');

  if (NATIVE_SYNTAXES.has(transferSyntaxUid) || transferSyntaxUid === DEFLATED) {
    // YBR_FULL_422 shares each Cb/Cr pair between two pixels: 2 samples per pixel on average, not 3.
    const samplesStored = photometricInterpretation === 'YBR_FULL_422' ? 2 : samplesPerPixel;
    const expected = Math.ceil((rows * columns * samplesStored * numberOfFrames * bitsAllocated) / 8);
    if (pixelData!.length < expected) {
      reject(FailureReason.CannotUnderstand, `pixel data is shorter than declared: ${pixelData!.length} bytes for ${numberOfFrames} frame(s) of ${rows}x${columns}x${bitsAllocated} bits (${expected} bytes)`);
    }
  } else {
    const fragments = pixelData!.fragments ?? [];
    if (!pixelData!.encapsulatedPixelData || fragments.length === 0) {
      reject(FailureReason.CannotUnderstand, 'compressed transfer syntax but the pixel data holds no encapsulated fragments');
    }
    if (fragments.some((f) => f.length === 0)) reject(FailureReason.CannotUnderstand, 'compressed pixel data has a zero-length fragment');
  }

  return {
    ...describe(ds, transferSyntaxUid, hasPreamble),
    rows,
    columns,
    bitsAllocated,
    bitsStored: num(ds, 'x00280101') ?? bitsAllocated,
    highBit: num(ds, 'x00280102') ?? bitsAllocated - 1,
    pixelRepresentation: num(ds, 'x00280103') ?? 0,
    samplesPerPixel,
    photometricInterpretation: photometricInterpretation!,
    numberOfFrames,
  };
}

type PixelAttributes = 'rows' | 'columns' | 'bitsAllocated' | 'bitsStored' | 'highBit' | 'pixelRepresentation' | 'samplesPerPixel' | 'photometricInterpretation' | 'numberOfFrames';

/** Pixel attributes of an object without pixels (the instances table keeps them non-null). */
const NO_PIXELS: Pick<InstanceMetadata, PixelAttributes> = {
  rows: 0, columns: 0, bitsAllocated: 0, bitsStored: 0, highBit: 0, pixelRepresentation: 0, samplesPerPixel: 0, photometricInterpretation: '', numberOfFrames: 0,
};

/** Identity, patient, study and series attributes (already checked present and valid). */
function describe(ds: DataSet, transferSyntaxUid: string, hasPreamble: boolean): Omit<InstanceMetadata, PixelAttributes> {
  return {
    transferSyntaxUid,
    hasPreamble,
    sopClassUid: str(ds, 'x00080016')!,
    sopInstanceUid: str(ds, 'x00080018')!,
    instanceNumber: intString(ds, 'x00200013'),
    studyInstanceUid: str(ds, 'x0020000d')!,
    seriesInstanceUid: str(ds, 'x0020000e')!,
    patientName: str(ds, 'x00100010'),
    patientId: str(ds, 'x00100020'),
    patientBirthDate: str(ds, 'x00100030'),
    patientSex: str(ds, 'x00100040'),
    patientAge: str(ds, 'x00101010'),
    accessionNumber: str(ds, 'x00080050'),
    studyDate: str(ds, 'x00080020'),
    studyTime: str(ds, 'x00080030'),
    studyDescription: str(ds, 'x00081030'),
    requestedPriority: requestedPriority(ds),
    seriesNumber: intString(ds, 'x00200011'),
    seriesDescription: str(ds, 'x0008103e'),
    modality: str(ds, 'x00080060'),
    bodyPart: str(ds, 'x00180015'),
    laterality: str(ds, 'x00200062') ?? str(ds, 'x00200060'),
    viewPosition: str(ds, 'x00185101'),
  };
}
