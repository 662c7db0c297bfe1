import { EXPLICIT_LITTLE, IMPLICIT_LITTLE } from './transfer-syntax.js';

/**
 * A small DICOM Part 10 writer for native (uncompressed) little-endian data sets. Used to make
 * samples, test inputs and benchmark images; compressed syntaxes are made from its output with dcmtk.
 */
export type DicomValue = string | number | number[] | Uint8Array | Uint16Array | DicomItem[];
export type DicomItem = Record<string, { vr: string; value: DicomValue }>;

export interface WriteOptions {
  transferSyntaxUid?: typeof EXPLICIT_LITTLE | typeof IMPLICIT_LITTLE;
  /** Leave out the 128-byte preamble, "DICM" and the meta header: a bare data set. */
  bare?: boolean;
}

const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'UC', 'UN', 'UR', 'UT', 'SV', 'UV']);

function tagOf(key: string): [number, number] {
  const hex = key.replace(/[^0-9a-fA-F]/g, '');
  return [parseInt(hex.slice(0, 4), 16), parseInt(hex.slice(4, 8), 16)];
}

function encodeValue(vr: string, value: DicomValue, explicit: boolean): Buffer {
  if (vr === 'SQ') {
    const items = (value as DicomItem[]).map((item) => {
      const body = encodeDataSet(item, explicit);
      const header = Buffer.alloc(8);
      header.writeUInt16LE(0xfffe, 0);
      header.writeUInt16LE(0xe000, 2);
      header.writeUInt32LE(body.length, 4);
      return Buffer.concat([header, body]);
    });
    return Buffer.concat(items);
  }
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (value instanceof Uint16Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (vr === 'US' || vr === 'SS') {
    const values = (Array.isArray(value) ? value : [Number(value)]) as number[];
    const buf = Buffer.alloc(values.length * 2);
    values.forEach((v, i) => (vr === 'US' ? buf.writeUInt16LE(v, i * 2) : buf.writeInt16LE(v, i * 2)));
    return buf;
  }
  if (vr === 'UL') {
    const values = (Array.isArray(value) ? value : [Number(value)]) as number[];
    const buf = Buffer.alloc(values.length * 4);
    values.forEach((v, i) => buf.writeUInt32LE(v, i * 4));
    return buf;
  }
  let text = Array.isArray(value) ? value.join('\\') : String(value);
  const pad = vr === 'UI' ? '\0' : ' ';
  if (text.length % 2) text += pad;
  return Buffer.from(text, 'latin1');
}

function encodeElement(key: string, vr: string, value: DicomValue, explicit: boolean): Buffer {
  const [group, element] = tagOf(key);
  let data = encodeValue(vr, value, explicit);
  if (data.length % 2) data = Buffer.concat([data, Buffer.alloc(1)]);
  let header: Buffer;
  if (!explicit) {
    header = Buffer.alloc(8);
    header.writeUInt32LE(data.length, 4);
  } else if (LONG_VRS.has(vr)) {
    header = Buffer.alloc(12);
    header.write(vr, 4, 'latin1');
    header.writeUInt32LE(data.length, 8);
  } else {
    header = Buffer.alloc(8);
    header.write(vr, 4, 'latin1');
    header.writeUInt16LE(data.length, 6);
  }
  header.writeUInt16LE(group, 0);
  header.writeUInt16LE(element, 2);
  return Buffer.concat([header, data]);
}

/** Encodes elements (keys like '00280010'), sorted by tag; explicit or implicit VR little endian. */
export function encodeDataSet(elements: DicomItem, explicit = true): Buffer {
  const keys = Object.keys(elements).sort((a, b) => {
    const [ga, ea] = tagOf(a);
    const [gb, eb] = tagOf(b);
    return ga - gb || ea - eb;
  });
  return Buffer.concat(keys.map((k) => encodeElement(k, elements[k].vr, elements[k].value, explicit)));
}

export function writeDicom(elements: DicomItem, opts: WriteOptions = {}): Buffer {
  const ts = opts.transferSyntaxUid ?? EXPLICIT_LITTLE;
  const explicit = ts === EXPLICIT_LITTLE;
  const dataSet = encodeDataSet(Object.fromEntries(Object.entries(elements).filter(([k]) => !k.startsWith('0002'))), explicit);
  if (opts.bare) return dataSet;
  return Buffer.concat([fileMetaHeader({ sopClassUid: elements['00080016']?.value as string, sopInstanceUid: elements['00080018']?.value as string, transferSyntaxUid: ts }), dataSet]);
}

/**
 * Preamble, "DICM" and File Meta Information (PS3.10 §7.1) for a data set encoded in
 * `transferSyntaxUid`; the data set's bytes follow as they are (a C-STORE's, for instance).
 */
export function fileMetaHeader(opts: { sopClassUid: string; sopInstanceUid: string; transferSyntaxUid: string; sourceAeTitle?: string }): Buffer {
  const metaBody = encodeDataSet({
    '00020001': { vr: 'OB', value: new Uint8Array([0, 1]) },
    '00020002': { vr: 'UI', value: opts.sopClassUid },
    '00020003': { vr: 'UI', value: opts.sopInstanceUid },
    '00020010': { vr: 'UI', value: opts.transferSyntaxUid },
    '00020012': { vr: 'UI', value: '1.2.826.0.1.3680043.10.1431.1' },
    '00020013': { vr: 'SH', value: 'FRACTURE_TRIAGE' },
    ...(opts.sourceAeTitle ? { '00020016': { vr: 'AE', value: opts.sourceAeTitle } } : {}),
  }, true);
  const groupLength = encodeElement('00020000', 'UL', metaBody.length, true);
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM', 'latin1'), groupLength, metaBody]);
}

/** Elements of a plain greyscale DX image; callers override what they need. */
export function dxImage(opts: {
  studyUid: string; seriesUid: string; sopInstanceUid: string; rows: number; columns: number;
  bitsStored?: number; pixels?: Uint16Array; patientName?: string; patientId?: string; bodyPart?: string;
  accession?: string; priority?: string; extra?: DicomItem;
}): DicomItem {
  const bitsStored = opts.bitsStored ?? 12;
  const pixels = opts.pixels ?? new Uint16Array(opts.rows * opts.columns);
  return {
    '00080016': { vr: 'UI', value: '1.2.840.10008.5.1.4.1.1.1.1' },
    '00080018': { vr: 'UI', value: opts.sopInstanceUid },
    '00080020': { vr: 'DA', value: '20261129' },
    '00080030': { vr: 'TM', value: '101500' },
    '00080050': { vr: 'SH', value: opts.accession ?? 'ACC0001' },
    '00080060': { vr: 'CS', value: 'DX' },
    '00100010': { vr: 'PN', value: opts.patientName ?? 'TEST^PATIENT' },
    '00100020': { vr: 'LO', value: opts.patientId ?? 'PID0001' },
    '00180015': { vr: 'CS', value: opts.bodyPart ?? 'HAND' },
    '0020000d': { vr: 'UI', value: opts.studyUid },
    '0020000e': { vr: 'UI', value: opts.seriesUid },
    '00200013': { vr: 'IS', value: '1' },
    '00280002': { vr: 'US', value: 1 },
    '00280004': { vr: 'CS', value: 'MONOCHROME2' },
    '00280010': { vr: 'US', value: opts.rows },
    '00280011': { vr: 'US', value: opts.columns },
    '00280100': { vr: 'US', value: 16 },
    '00280101': { vr: 'US', value: bitsStored },
    '00280102': { vr: 'US', value: bitsStored - 1 },
    '00280103': { vr: 'US', value: 0 },
    ...(opts.priority ? { '00401003': { vr: 'SH', value: opts.priority } } : {}),
    '7fe00010': { vr: 'OW', value: pixels },
    ...opts.extra,
  };
}
