/**
 * What ingest checks and records about an uploaded object: read with the one parser, refused with a
 * STOW/C-STORE failure reason and a plain-language Error Comment, or described by InstanceMetadata.
 */
import { Tag } from './dictionary.js';
import { DicomRejection, FailureReason, Reason, type RequiredAttribute } from './failure-reason.js';
import { nativePixelDataBytes } from './image-size.js';
import { asRejection, rawString, readDicom, type DataSet, type ReadLimits } from './parser.js';
import { isNonImageStorage, isStorableSopClass } from './sop-class.js';
import { EXPLICIT_LITTLE, isSupportedTransferSyntax, transferSyntax } from './transfer-syntax.js';
import { isValidUid } from './uid.js';

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
  const direct = str(ds, Tag.RequestedProcedurePriority);
  if (direct) return direct.toUpperCase();
  for (const item of ds.elements[Tag.RequestAttributesSequence]?.items ?? []) {
    const value = item.dataSet ? str(item.dataSet, Tag.RequestedProcedurePriority) : null;
    if (value) return value.toUpperCase();
  }
  return null;
}

/**
 * Parses and validates an uploaded object. Throws DicomRejection with the failure reason and a
 * plain-language explanation; returns the attributes we record otherwise.
 */
export async function parseInstance(bytes: Uint8Array, limits: ReadLimits = {}): Promise<InstanceMetadata> {
  const file = await readDicom(bytes, limits);
  try {
    return describe(file.dataSet, file.transferSyntaxUid, file.hasPreamble, file.bareMetaTransferSyntaxUid);
  } catch (error) {
    // dicom-parser's accessors throw strings (e.g. reading an element that runs past the end):
    // still the file's fault, so a rejection with its reason, never a "processing failure".
    throw asRejection(error);
  }
}

function describe(ds: DataSet, transferSyntaxUid: string, hasPreamble: boolean, bareMetaSyntax: string | undefined): InstanceMetadata {
  const uids: [RequiredAttribute, string | undefined][] = [
    ['SOP Class UID', rawString(ds, Tag.SOPClassUID)],
    ['SOP Instance UID', rawString(ds, Tag.SOPInstanceUID)],
    ['Study Instance UID', rawString(ds, Tag.StudyInstanceUID)],
    ['Series Instance UID', rawString(ds, Tag.SeriesInstanceUID)],
  ];
  const [sopClassUid, sopInstanceUid, studyInstanceUid, seriesInstanceUid] = uids.map(([, value]) => value);
  const reject = (code: number, reason: string): never => {
    const known = (uid: string | undefined) => (uid && isValidUid(uid) ? uid : undefined);
    throw new DicomRejection(code, reason, known(sopClassUid), known(sopInstanceUid));
  };

  for (const [name, value] of uids) if (!value) reject(FailureReason.CannotUnderstand, Reason.missingAttribute(name));
  for (const [name, value] of uids) if (!isValidUid(value!)) reject(FailureReason.CannotUnderstand, Reason.invalidUid(name));
  if (!hasPreamble && bareMetaSyntax && bareMetaSyntax !== EXPLICIT_LITTLE) {
    reject(FailureReason.CannotUnderstand, Reason.metaNeedsPreamble);
  }
  // PS3.10: the meta header names the same object as the data set (a C-STORE's is written from its request).
  const declaredClass = str(ds, Tag.MediaStorageSOPClassUID);
  const declaredInstance = str(ds, Tag.MediaStorageSOPInstanceUID);
  if ((declaredClass && declaredClass !== sopClassUid) || (declaredInstance && declaredInstance !== sopInstanceUid)) {
    reject(FailureReason.DataSetMismatch, Reason.metaMismatch);
  }
  if (!isStorableSopClass(sopClassUid!)) reject(FailureReason.SopClassNotSupported, Reason.sopClassNotStored);
  if (!isSupportedTransferSyntax(transferSyntaxUid)) reject(FailureReason.TransferSyntaxNotSupported, Reason.transferSyntaxNotSupported);
  // A report, key-object note or presentation state: recorded without pixel attributes, never decoded.
  const nonImage = isNonImageStorage(sopClassUid!);

  const pixelData = ds.elements[Tag.PixelData];
  if (nonImage) return { ...identity(ds, transferSyntaxUid, hasPreamble), ...NO_PIXELS };
  if (!pixelData) reject(FailureReason.DataSetMismatch, Reason.noPixelData);
  const rows = num(ds, Tag.Rows) ?? 0;
  const columns = num(ds, Tag.Columns) ?? 0;
  const bitsAllocated = num(ds, Tag.BitsAllocated) ?? 0;
  const samplesPerPixel = num(ds, Tag.SamplesPerPixel) ?? 1;
  const numberOfFrames = Math.max(1, intString(ds, Tag.NumberOfFrames) ?? 1);
  const photometricInterpretation = str(ds, Tag.PhotometricInterpretation);
  if (!rows || !columns) reject(FailureReason.CannotUnderstand, Reason.noRowsColumns);
  if (![1, 8, 16, 32].includes(bitsAllocated)) reject(FailureReason.CannotUnderstand, Reason.badBitsAllocated);
  if (!photometricInterpretation) reject(FailureReason.CannotUnderstand, Reason.noPhotometric);

  if (!transferSyntax(transferSyntaxUid)!.encapsulated) {
    if (pixelData!.hadUndefinedLength) reject(FailureReason.CannotUnderstand, Reason.nativeButEncapsulated);
    const expected = nativePixelDataBytes({ rows, columns, samplesPerPixel, bitsAllocated, frames: numberOfFrames, photometricInterpretation });
    if (pixelData!.length < expected) reject(FailureReason.CannotUnderstand, Reason.pixelDataShort);
  } else {
    const fragments = pixelData!.fragments ?? [];
    if (!pixelData!.encapsulatedPixelData || fragments.length === 0) reject(FailureReason.CannotUnderstand, Reason.noFragments);
    if (fragments.some((f) => f.length === 0)) reject(FailureReason.CannotUnderstand, Reason.emptyFragment);
  }

  return {
    ...identity(ds, transferSyntaxUid, hasPreamble),
    rows,
    columns,
    bitsAllocated,
    bitsStored: num(ds, Tag.BitsStored) ?? bitsAllocated,
    highBit: num(ds, Tag.HighBit) ?? bitsAllocated - 1,
    pixelRepresentation: num(ds, Tag.PixelRepresentation) ?? 0,
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
function identity(ds: DataSet, transferSyntaxUid: string, hasPreamble: boolean): Omit<InstanceMetadata, PixelAttributes> {
  return {
    transferSyntaxUid,
    hasPreamble,
    sopClassUid: rawString(ds, Tag.SOPClassUID)!,
    sopInstanceUid: rawString(ds, Tag.SOPInstanceUID)!,
    instanceNumber: intString(ds, Tag.InstanceNumber),
    studyInstanceUid: rawString(ds, Tag.StudyInstanceUID)!,
    seriesInstanceUid: rawString(ds, Tag.SeriesInstanceUID)!,
    patientName: str(ds, Tag.PatientName),
    patientId: str(ds, Tag.PatientID),
    patientBirthDate: str(ds, Tag.PatientBirthDate),
    patientSex: str(ds, Tag.PatientSex),
    patientAge: str(ds, Tag.PatientAge),
    accessionNumber: str(ds, Tag.AccessionNumber),
    studyDate: str(ds, Tag.StudyDate),
    studyTime: str(ds, Tag.StudyTime),
    studyDescription: str(ds, Tag.StudyDescription),
    requestedPriority: requestedPriority(ds),
    seriesNumber: intString(ds, Tag.SeriesNumber),
    seriesDescription: str(ds, Tag.SeriesDescription),
    modality: str(ds, Tag.Modality),
    bodyPart: str(ds, Tag.BodyPartExamined),
    laterality: str(ds, Tag.ImageLaterality) ?? str(ds, Tag.Laterality),
    viewPosition: str(ds, Tag.ViewPosition),
  };
}
