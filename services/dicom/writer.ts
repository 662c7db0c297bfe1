/**
 * The one DICOM Part 10 writer: file meta header, explicit or implicit VR little endian data set,
 * sequences (defined length), and encapsulated Pixel Data with a basic offset table. Samples,
 * fixtures, tests, benchmarks and the server's own output objects (SR, Secondary Capture) use it.
 * Values are written as given: the caller supplies valid DICOM values.
 */
import { LONG_LENGTH_VRS, tagNumbers } from './dictionary.js';
import { EXPLICIT_LITTLE, IMPLICIT_LITTLE } from './transfer-syntax.js';

/** Compressed frames for Pixel Data: one item per fragment after the basic offset table item. */
export interface EncapsulatedPixels {
  fragments: Uint8Array[];
  /** Basic offset table: byte offset of each frame's first fragment item (empty: no table). */
  basicOffsetTable: number[];
}

export type DicomValue = string | number | number[] | Uint8Array | Uint16Array | DicomItem[] | EncapsulatedPixels;
/** Elements by tag ('00280010', 'x00280010' or '(0028,0010)'), each with its VR and value. */
export type DicomItem = Record<string, { vr: string; value: DicomValue }>;

export interface Part10Options {
  /** Implicit or explicit VR little endian for the data set, or a compressed syntax (explicit VR). Default explicit VR LE. */
  transferSyntaxUid?: string;
  /** Leave out the 128-byte preamble, "DICM" and the meta header: a bare data set. */
  bare?: boolean;
  /** Implementation Class UID (0002,0012); default: this server's. */
  implementationClassUid?: string;
  /** Implementation Version Name (0002,0013); default FRACTURE_TRIAGE, null leaves it out. */
  implementationVersionName?: string | null;
}

/** This server's implementation class UID (under the project's UID root). */
export const IMPLEMENTATION_CLASS_UID = '1.2.826.0.1.3680043.10.1431.1';
export const IMPLEMENTATION_VERSION_NAME = 'FRACTURE_TRIAGE';

const ITEM = 0xe000;
const SEQUENCE_DELIMITER = 0xe0dd;
const UNDEFINED_LENGTH = 0xffffffff;

function isEncapsulated(value: DicomValue): value is EncapsulatedPixels {
  return typeof value === 'object' && value !== null && 'fragments' in value && 'basicOffsetTable' in value;
}

function itemHeader(element: number, length: number): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt16LE(0xfffe, 0);
  header.writeUInt16LE(element, 2);
  header.writeUInt32LE(length, 4);
  return header;
}

function evenLength(data: Buffer, padByte = 0): Buffer {
  return data.length % 2 ? Buffer.concat([data, Buffer.from([padByte])]) : data;
}

/** Frames as one fragment each, with the basic offset table that points at them. */
export function encapsulate(frames: Uint8Array[]): EncapsulatedPixels {
  const basicOffsetTable: number[] = [];
  let offset = 0;
  for (const frame of frames) {
    basicOffsetTable.push(offset);
    offset += 8 + frame.length + (frame.length % 2);
  }
  return { fragments: frames, basicOffsetTable };
}

function encodeEncapsulated(pixels: EncapsulatedPixels): Buffer {
  const table = Buffer.alloc(pixels.basicOffsetTable.length * 4);
  pixels.basicOffsetTable.forEach((offset, i) => table.writeUInt32LE(offset, i * 4));
  const items = [table, ...pixels.fragments.map((f) => Buffer.from(f.buffer, f.byteOffset, f.byteLength))].map((body) => {
    const padded = evenLength(body);
    return Buffer.concat([itemHeader(ITEM, padded.length), padded]);
  });
  return Buffer.concat([...items, itemHeader(SEQUENCE_DELIMITER, 0)]);
}

function encodeValue(vr: string, value: DicomValue, explicit: boolean): Buffer {
  if (vr === 'SQ') {
    return Buffer.concat((value as DicomItem[]).map((item) => {
      const body = encodeDataSet(item, explicit);
      return Buffer.concat([itemHeader(ITEM, body.length), body]);
    }));
  }
  if (value instanceof Uint8Array || value instanceof Uint16Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (vr === 'US' || vr === 'SS') {
    const values = (Array.isArray(value) ? value : [Number(value)]) as number[];
    const buf = Buffer.alloc(values.length * 2);
    values.forEach((v, i) => (vr === 'US' ? buf.writeUInt16LE(v, i * 2) : buf.writeInt16LE(v, i * 2)));
    return buf;
  }
  if (vr === 'UL' || vr === 'SL') {
    const values = (Array.isArray(value) ? value : [Number(value)]) as number[];
    const buf = Buffer.alloc(values.length * 4);
    values.forEach((v, i) => (vr === 'UL' ? buf.writeUInt32LE(v, i * 4) : buf.writeInt32LE(v, i * 4)));
    return buf;
  }
  let text = Array.isArray(value) ? value.join('\\') : String(value);
  if (text.length % 2) text += vr === 'UI' ? '\0' : ' ';
  return Buffer.from(text, 'latin1');
}

function elementHeader(group: number, element: number, vr: string, length: number, explicit: boolean): Buffer {
  let header: Buffer;
  if (!explicit) {
    header = Buffer.alloc(8);
    header.writeUInt32LE(length, 4);
  } else if (LONG_LENGTH_VRS.has(vr)) {
    header = Buffer.alloc(12);
    header.write(vr, 4, 'latin1');
    header.writeUInt32LE(length, 8);
  } else {
    header = Buffer.alloc(8);
    header.write(vr, 4, 'latin1');
    header.writeUInt16LE(length, 6);
  }
  header.writeUInt16LE(group, 0);
  header.writeUInt16LE(element, 2);
  return header;
}

function encodeElement(key: string, vr: string, value: DicomValue, explicit: boolean): Buffer {
  const [group, element] = tagNumbers(key);
  if (isEncapsulated(value)) {
    return Buffer.concat([elementHeader(group, element, vr, UNDEFINED_LENGTH, explicit), encodeEncapsulated(value)]);
  }
  const data = evenLength(encodeValue(vr, value, explicit));
  return Buffer.concat([elementHeader(group, element, vr, data.length, explicit), data]);
}

/** Encodes elements sorted by tag, explicit (default) or implicit VR little endian. */
export function encodeDataSet(elements: DicomItem, explicit = true): Buffer {
  const keys = Object.keys(elements).sort((a, b) => {
    const [ga, ea] = tagNumbers(a);
    const [gb, eb] = tagNumbers(b);
    return ga - gb || ea - eb;
  });
  return Buffer.concat(keys.map((k) => encodeElement(k, elements[k].vr, elements[k].value, explicit)));
}

/** A Part 10 file: preamble, "DICM", meta header (group 0002, from the data set's SOP UIDs), data set. */
export function writePart10(elements: DicomItem, opts: Part10Options = {}): Buffer {
  const ts = opts.transferSyntaxUid ?? EXPLICIT_LITTLE;
  const isMeta = (key: string) => tagNumbers(key)[0] === 0x0002;
  const dataSet = encodeDataSet(Object.fromEntries(Object.entries(elements).filter(([k]) => !isMeta(k))), ts !== IMPLICIT_LITTLE);
  if (opts.bare) return dataSet;
  const valueOf = (tag: string) => Object.entries(elements).find(([k]) => tagNumbers(k).join() === tagNumbers(tag).join())?.[1].value as string;
  const header = fileMetaHeader({
    sopClassUid: valueOf('00080016'), sopInstanceUid: valueOf('00080018'), transferSyntaxUid: ts,
    implementationClassUid: opts.implementationClassUid, implementationVersionName: opts.implementationVersionName,
  });
  return Buffer.concat([header, dataSet]);
}

/**
 * Preamble, "DICM" and File Meta Information (PS3.10 §7.1) for a data set encoded in
 * `transferSyntaxUid`, whose bytes follow as they are (e.g. a C-STORE's data set, never re-encoded).
 */
export function fileMetaHeader(opts: {
  sopClassUid: string; sopInstanceUid: string; transferSyntaxUid: string; sourceAeTitle?: string;
  implementationClassUid?: string; implementationVersionName?: string | null;
}): Buffer {
  const versionName = opts.implementationVersionName === undefined ? IMPLEMENTATION_VERSION_NAME : opts.implementationVersionName;
  const metaBody = encodeDataSet({
    '00020001': { vr: 'OB', value: new Uint8Array([0, 1]) },
    '00020002': { vr: 'UI', value: opts.sopClassUid },
    '00020003': { vr: 'UI', value: opts.sopInstanceUid },
    '00020010': { vr: 'UI', value: opts.transferSyntaxUid },
    '00020012': { vr: 'UI', value: opts.implementationClassUid ?? IMPLEMENTATION_CLASS_UID },
    ...(versionName === null ? {} : { '00020013': { vr: 'SH', value: versionName } }),
    ...(opts.sourceAeTitle ? { '00020016': { vr: 'AE', value: opts.sourceAeTitle } } : {}),
  });
  const groupLength = encodeElement('00020000', 'UL', metaBody.length, true);
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM', 'latin1'), groupLength, metaBody]);
}
