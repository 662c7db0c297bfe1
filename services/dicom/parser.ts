/**
 * The one DICOM parser: ingest validates with it and the image pipeline decodes from it, so what
 * ingest accepts the worker can read. Wraps dicom-parser (the only file that imports it on the
 * server) and adds what it lacks: bare data sets without the 128-byte preamble, bounded async
 * inflation of Deflated data sets, a bound on fragment counts, and plain-language errors.
 */
import dicomParser from 'dicom-parser';
import { Tag, isVr } from './dictionary.js';
import { DicomRejection, FailureReason, Reason } from './failure-reason.js';
import { nativePixelDataBytes } from './image-size.js';
import { inflateBounded } from './inflate.js';
import { DEFLATED, EXPLICIT_BIG, EXPLICIT_LITTLE, IMPLICIT_LITTLE } from './transfer-syntax.js';
import { fileMetaHeader } from './writer.js';

export type DataSet = dicomParser.DataSet;
export type Element = dicomParser.Element;

/** The largest inflated data set by default: MAX_PART_MB's default, the largest object accepted at all. */
export const DEFAULT_MAX_INFLATED_BYTES = 100 * 1024 * 1024;
/** Inflated bytes read before the declared image size caps the rest (header + trailing elements). */
export const INFLATE_HEADER_ALLOWANCE = 1024 * 1024;
/** More fragments than this per frame is no real encoder's output (issue 16: 3,000,000 stalled the API). */
export const MAX_FRAGMENTS_PER_FRAME = 4096;

export interface ReadLimits {
  /** Hard cap on a Deflated data set once inflated (callers pass MAX_PART_MB); default 100 MiB. */
  maxInflatedBytes?: number;
}

export interface DicomFile {
  dataSet: DataSet;
  /** The bytes the data set indexes into: the input, or for Deflated its inflated copy. */
  byteArray: Uint8Array;
  hasPreamble: boolean;
  /** The encoding of the data set: from the meta header, or inferred from a bare data set. */
  transferSyntaxUid: string;
  /** A bare data set that still starts with a meta header: the syntax that header declares. */
  bareMetaTransferSyntaxUid?: string;
}

export function hasPart10Preamble(bytes: Uint8Array): boolean {
  return bytes.length >= 132 && bytes[128] === 0x44 && bytes[129] === 0x49 && bytes[130] === 0x43 && bytes[131] === 0x4d;
}

/**
 * A file without the 128-byte preamble + "DICM" is a bare data set. Its first element tells the
 * encoding: a two-letter VR after the tag means explicit VR; the byte order of the group number
 * tells little from big endian.
 */
export function inferBareTransferSyntax(bytes: Uint8Array): string | undefined {
  if (bytes.length < 8) return undefined;
  const groupLE = bytes[0] | (bytes[1] << 8);
  const groupBE = (bytes[0] << 8) | bytes[1];
  const explicit = isVr(String.fromCharCode(bytes[4], bytes[5]));
  if (groupLE === 0x0002 || groupLE === 0x0008) return explicit ? EXPLICIT_LITTLE : IMPLICIT_LITTLE;
  if (groupBE === 0x0008 && explicit) return EXPLICIT_BIG;
  return undefined;
}

function errorText(error: unknown): string {
  if (typeof error === 'string') return error;
  // parseDicom wraps failures as { exception, dataSet }.
  if (error && typeof error === 'object' && 'exception' in error) return errorText((error as { exception: unknown }).exception);
  if (error instanceof Error) return error.message;
  return String(error);
}

/** Any error from reading a data set (dicom-parser throws strings too) as a plain-language rejection. */
export function asRejection(error: unknown): DicomRejection {
  if (error instanceof DicomRejection) return error;
  const text = errorText(error);
  const reject = (reason: string, problem: DicomRejection['problem']) =>
    new DicomRejection(FailureReason.CannotUnderstand, reason, undefined, undefined, problem);
  if (/call stack/i.test(text)) return reject(Reason.nestedTooDeep, 'corrupt');
  if (/DICM prefix/i.test(text)) return reject(Reason.notDicom, 'not-dicom');
  if (/overrun|overread|past end|beyond|eof|end of buffer|reached end|truncat|unexpected end|outside/i.test(text)) return reject(Reason.truncated, 'truncated');
  return reject(Reason.unreadable, 'corrupt');
}

/** Trimmed text of a string element as stored (a NUL inside it is kept, so a cut value shows). */
export function rawString(ds: DataSet, tag: string): string | undefined {
  const el = ds.elements[tag];
  if (!el || el.dataOffset === undefined || !el.length) return undefined;
  const bytes = ds.byteArray.subarray(el.dataOffset, el.dataOffset + el.length);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1').replace(/[\0 ]+$/, '').replace(/^ +/, '');
}

/** Where the File Meta Information ends, from its Group Length (0002,0000); the whole buffer if it has none. */
function metaHeaderEnd(bytes: Uint8Array): number | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 144 || view.getUint32(132, true) !== 0x00000002 || bytes[136] !== 0x55 || bytes[137] !== 0x4c) return undefined;
  const end = 144 + view.getUint32(140, true);
  return end <= bytes.length ? end : undefined;
}

type DataSetClass = new (parser: dicomParser.ByteArrayParser, byteArray: Uint8Array, elements: Record<string, Element>) => DataSet;
/** dicom-parser's DataSet class (exported at run time, declared only as an interface in its types). */
const DataSetOf = (dicomParser as unknown as { DataSet: DataSetClass }).DataSet;

/** Elements of an explicit VR LE stream up to Pixel Data; stops quietly where the bytes end. */
function readUntilPixelData(bytes: Uint8Array): DataSet {
  const elements: Record<string, Element> = {};
  const ds = new DataSetOf(dicomParser.littleEndianByteArrayParser, bytes, elements);
  const stream = new dicomParser.ByteStream(dicomParser.littleEndianByteArrayParser, bytes, 0);
  try {
    dicomParser.parseDicomDataSetExplicit(ds, stream, bytes.length, { untilTag: Tag.PixelData });
  } catch {
    // The bytes end inside an element: what was read before it is what we have.
  }
  for (const [tag, el] of Object.entries(elements)) {
    if (el.dataOffset + (el.hadUndefinedLength ? 0 : el.length) > bytes.length) delete elements[tag];
  }
  return ds;
}

/** Pixel Data bytes the image declared in a (partial) inflated data set needs; undefined if it declares no image. */
function declaredPixelBytes(prefix: Uint8Array): number | undefined {
  const ds = readUntilPixelData(prefix);
  const rows = ds.uint16(Tag.Rows);
  const columns = ds.uint16(Tag.Columns);
  if (!rows || !columns) return undefined;
  return nativePixelDataBytes({
    rows, columns,
    samplesPerPixel: ds.uint16(Tag.SamplesPerPixel) || 1,
    bitsAllocated: ds.uint16(Tag.BitsAllocated) || 16,
    frames: Math.max(1, ds.intString(Tag.NumberOfFrames) || 1),
    photometricInterpretation: ds.string(Tag.PhotometricInterpretation),
  });
}

function parseWith(bytes: Uint8Array, options: dicomParser.ParseDicomOptions): DataSet {
  try {
    return dicomParser.parseDicom(bytes, options);
  } catch (error) {
    throw asRejection(error);
  }
}

/** Refuses encapsulated Pixel Data split into more fragments than any encoder writes. */
function checkFragmentCount(ds: DataSet): void {
  const fragments = ds.elements[Tag.PixelData]?.fragments?.length ?? 0;
  const frames = Math.max(1, ds.intString(Tag.NumberOfFrames) || 1);
  if (fragments > MAX_FRAGMENTS_PER_FRAME * frames) {
    throw new DicomRejection(FailureReason.CannotUnderstand, Reason.tooManyFragments, undefined, undefined, 'corrupt');
  }
}

/**
 * Reads a DICOM object: a Part 10 file (any byte order, Deflated included) or a bare data set in
 * implicit or explicit VR little endian or explicit VR big endian. Throws DicomRejection with a
 * plain-language reason; the data set is not otherwise validated (see instance.ts for ingest's rules).
 */
export async function readDicom(bytes: Uint8Array, limits: ReadLimits = {}): Promise<DicomFile> {
  const hasPreamble = hasPart10Preamble(bytes);
  if (!hasPreamble) {
    const inferred = inferBareTransferSyntax(bytes);
    if (!inferred) throw new DicomRejection(FailureReason.CannotUnderstand, Reason.notDicom, undefined, undefined, 'not-dicom');
    const dataSet = parseWith(bytes, { TransferSyntaxUID: inferred });
    checkFragmentCount(dataSet);
    const startsWithMeta = (bytes[0] | (bytes[1] << 8)) === 0x0002 && inferred === EXPLICIT_LITTLE;
    const bareMetaTransferSyntaxUid = startsWithMeta ? rawString(readUntilPixelData(bytes), Tag.TransferSyntaxUID) : undefined;
    return { dataSet, byteArray: dataSet.byteArray, hasPreamble, transferSyntaxUid: inferred, bareMetaTransferSyntaxUid };
  }

  let meta: DataSet;
  try {
    // Only the bytes of group 0002: dicom-parser reads one element past the meta header to find its
    // end, and in a Deflated file that element is compressed bytes (about 1 in 30 looked like a
    // sequence and made a valid file unreadable).
    meta = dicomParser.readPart10Header(bytes.subarray(0, metaHeaderEnd(bytes)));
  } catch (error) {
    throw asRejection(error);
  }
  const transferSyntaxUid = rawString(meta, Tag.TransferSyntaxUID);
  if (!transferSyntaxUid) throw new DicomRejection(FailureReason.CannotUnderstand, Reason.unreadable, undefined, undefined, 'corrupt');
  let inflated: Uint8Array | undefined;
  if (transferSyntaxUid === DEFLATED) {
    const position = (meta as DataSet & { position: number }).position;
    const body = await inflateBounded(bytes.subarray(position), {
      maxBytes: limits.maxInflatedBytes ?? DEFAULT_MAX_INFLATED_BYTES,
      headerAllowance: INFLATE_HEADER_ALLOWANCE,
      declaredPixelBytes,
    });
    const whole = new Uint8Array(position + body.length);
    whole.set(bytes.subarray(0, position));
    whole.set(body, position);
    inflated = whole;
  }
  // The inflated copy carries the same meta header followed by plain explicit VR LE: dicom-parser
  // reads its meta from there (see above), and its inflater hands back the same bytes.
  const dataSet = parseWith(inflated ?? bytes, inflated ? { inflater: () => inflated } : {});
  checkFragmentCount(dataSet);
  return { dataSet, byteArray: dataSet.byteArray, hasPreamble, transferSyntaxUid };
}

/**
 * A Deflated Part 10 file as the same data set in Explicit VR Little Endian (inflated with the same
 * bounds as readDicom), for clients that must not inflate themselves: the browser viewer's loader
 * inflates without a limit. Any other file comes back as it is.
 */
export async function inflatedPart10(bytes: Uint8Array, limits: ReadLimits = {}): Promise<Uint8Array> {
  if (!hasPart10Preamble(bytes)) return bytes;
  let meta: DataSet;
  try {
    meta = dicomParser.readPart10Header(bytes.subarray(0, metaHeaderEnd(bytes)));
  } catch (error) {
    throw asRejection(error);
  }
  if (rawString(meta, Tag.TransferSyntaxUID) !== DEFLATED) return bytes;
  const position = (meta as DataSet & { position: number }).position;
  const body = await inflateBounded(bytes.subarray(position), {
    maxBytes: limits.maxInflatedBytes ?? DEFAULT_MAX_INFLATED_BYTES,
    headerAllowance: INFLATE_HEADER_ALLOWANCE,
    declaredPixelBytes,
  });
  const header = fileMetaHeader({
    sopClassUid: rawString(meta, Tag.MediaStorageSOPClassUID) ?? '',
    sopInstanceUid: rawString(meta, Tag.MediaStorageSOPInstanceUID) ?? '',
    transferSyntaxUid: EXPLICIT_LITTLE,
  });
  return Buffer.concat([header, body]);
}

