/**
 * Minimal DICOM Part 10 writer (Explicit VR Little Endian data set), for generated test images,
 * fixtures and the benchmark. Not for clinical data.
 */
import { encodeDataSet, type DicomItem, type DicomValue } from '../core/dicom/write-dicom.js';

export type Vr = 'US' | 'SS' | 'UL' | 'CS' | 'DS' | 'IS' | 'UI' | 'LO' | 'SH' | 'OB' | 'OW' | 'SQ' | 'UN';

export interface DicomElement {
  /** (gggg,eeee) as 0xggggeeee */
  tag: number;
  vr: Vr;
  value: string | number[] | Uint8Array | DicomElement[][];
}

function pad(bytes: Uint8Array, padByte: number): Uint8Array {
  if (bytes.length % 2 === 0) return bytes;
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  out[bytes.length] = padByte;
  return out;
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const total = parts.reduce((s, p) => s + p.length, 0);
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Explicit VR little endian encoding, by the one element encoder in core/dicom/write-dicom.ts. */
export function encodeElements(elements: DicomElement[]): Uint8Array {
  return new Uint8Array(encodeDataSet(toItem(elements)));
}

function toItem(elements: DicomElement[]): DicomItem {
  const item: DicomItem = {};
  for (const el of elements) {
    const key = el.tag.toString(16).padStart(8, '0');
    const value = el.vr === 'SQ' ? (el.value as DicomElement[][]).map(toItem) : el.value;
    item[key] = { vr: el.vr, value: value as DicomValue };
  }
  return item;
}

/** Encapsulated Pixel Data element (undefined length): offset table item, fragments, delimiter. */
export function encapsulatedPixelData(fragments: Uint8Array[], offsets: number[] = []): Uint8Array {
  const item = (body: Uint8Array) => {
    const b = pad(body, 0);
    const head = new Uint8Array(8);
    const dv = new DataView(head.buffer);
    dv.setUint16(0, 0xfffe, true);
    dv.setUint16(2, 0xe000, true);
    dv.setUint32(4, b.length, true);
    return concat([head, b]);
  };
  const bot = new Uint8Array(offsets.length * 4);
  offsets.forEach((o, i) => new DataView(bot.buffer).setUint32(4 * i, o, true));
  const head = new Uint8Array(12);
  const dv = new DataView(head.buffer);
  dv.setUint16(0, 0x7fe0, true);
  dv.setUint16(2, 0x0010, true);
  head[4] = 0x4f; // 'O'
  head[5] = 0x42; // 'B'
  dv.setUint32(8, 0xffffffff, true);
  const end = new Uint8Array(8);
  const de = new DataView(end.buffer);
  de.setUint16(0, 0xfffe, true);
  de.setUint16(2, 0xe0dd, true);
  return concat([head, item(bot), ...fragments.map(item), end]);
}

export interface WriteOptions {
  transferSyntaxUid?: string;
  elements: DicomElement[];
  /** Native pixel bytes (written as OW/OB), or a ready encoded element from encapsulatedPixelData(). */
  pixelData?: Uint8Array;
  encapsulated?: Uint8Array;
  bitsAllocated?: number;
}

export function writeDicom(opts: WriteOptions): Uint8Array {
  const ts = opts.transferSyntaxUid ?? '1.2.840.10008.1.2.1';
  const sopClass = '1.2.840.10008.5.1.4.1.1.1'; // CR Image Storage
  const sopInstance = '2.25.1234567890123456789';
  const meta = encodeElements([
    { tag: 0x00020001, vr: 'OB', value: new Uint8Array([0, 1]) },
    { tag: 0x00020002, vr: 'UI', value: sopClass },
    { tag: 0x00020003, vr: 'UI', value: sopInstance },
    { tag: 0x00020010, vr: 'UI', value: ts },
    { tag: 0x00020012, vr: 'UI', value: '2.25.999' },
  ]);
  const groupLength = encodeElements([{ tag: 0x00020000, vr: 'UL', value: [meta.length] }]);
  const elements: DicomElement[] = [
    { tag: 0x00080016, vr: 'UI', value: sopClass },
    { tag: 0x00080018, vr: 'UI', value: sopInstance },
    ...opts.elements,
  ];
  if (opts.pixelData) elements.push({ tag: 0x7fe00010, vr: (opts.bitsAllocated ?? 16) > 8 ? 'OW' : 'OB', value: opts.pixelData });
  const body = encodeElements(elements);
  const preamble = new Uint8Array(132);
  preamble.set([0x44, 0x49, 0x43, 0x4d], 128);
  return concat([preamble, groupLength, meta, body, opts.encapsulated ?? new Uint8Array(0)]);
}

export interface ImageSpec {
  rows: number;
  columns: number;
  frames?: number;
  bitsAllocated: number;
  bitsStored: number;
  highBit?: number;
  pixelRepresentation: 0 | 1;
  photometric?: 'MONOCHROME1' | 'MONOCHROME2';
  rescaleSlope?: number;
  rescaleIntercept?: number;
  windows?: { center: number; width: number }[];
  presentationLutShape?: 'IDENTITY' | 'INVERSE';
  extra?: DicomElement[];
}

/** Image pixel module elements for a greyscale image. */
export function imageElements(s: ImageSpec): DicomElement[] {
  const els: DicomElement[] = [
    { tag: 0x00080060, vr: 'CS', value: 'CR' },
    { tag: 0x00280002, vr: 'US', value: [1] },
    { tag: 0x00280004, vr: 'CS', value: s.photometric ?? 'MONOCHROME2' },
    { tag: 0x00280010, vr: 'US', value: [s.rows] },
    { tag: 0x00280011, vr: 'US', value: [s.columns] },
    { tag: 0x00280100, vr: 'US', value: [s.bitsAllocated] },
    { tag: 0x00280101, vr: 'US', value: [s.bitsStored] },
    { tag: 0x00280102, vr: 'US', value: [s.highBit ?? s.bitsStored - 1] },
    { tag: 0x00280103, vr: 'US', value: [s.pixelRepresentation] },
  ];
  if ((s.frames ?? 1) > 1) els.push({ tag: 0x00280008, vr: 'IS', value: String(s.frames) });
  if (s.rescaleSlope !== undefined || s.rescaleIntercept !== undefined) {
    els.push({ tag: 0x00281052, vr: 'DS', value: String(s.rescaleIntercept ?? 0) });
    els.push({ tag: 0x00281053, vr: 'DS', value: String(s.rescaleSlope ?? 1) });
  }
  if (s.windows?.length) {
    els.push({ tag: 0x00281050, vr: 'DS', value: s.windows.map((w) => String(w.center)).join('\\') });
    els.push({ tag: 0x00281051, vr: 'DS', value: s.windows.map((w) => String(w.width)).join('\\') });
  }
  if (s.presentationLutShape) els.push({ tag: 0x20500020, vr: 'CS', value: s.presentationLutShape });
  return [...els, ...(s.extra ?? [])];
}

/** Stored values (already within bits stored) to native little-endian pixel bytes. */
export function packPixels(values: ArrayLike<number>, bitsAllocated: number, bitsStored: number, highBit = bitsStored - 1): Uint8Array {
  const shift = highBit + 1 - bitsStored;
  const mask = (1 << bitsStored) - 1;
  if (bitsAllocated === 8) {
    const out = new Uint8Array(values.length);
    for (let i = 0; i < values.length; i++) out[i] = (values[i] & mask) << shift;
    return out;
  }
  const out = new Uint8Array(values.length * 2);
  for (let i = 0; i < values.length; i++) {
    const w = ((values[i] & mask) << shift) & 0xffff;
    out[2 * i] = w & 0xff;
    out[2 * i + 1] = w >> 8;
  }
  return out;
}

/** A deterministic synthetic radiograph-like image: soft-tissue gradient, a bright "bone" bar, noise. */
export function syntheticImage(columns: number, rows: number, lo: number, hi: number, seed = 1, boneBright = true): Int32Array {
  let s = seed >>> 0 || 1;
  const rand = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
  const out = new Int32Array(columns * rows);
  const range = hi - lo;
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < columns; x++) {
      const cx = columns / 2;
      const inBone = Math.abs(x - cx) < columns / 8 && y > rows / 6 && y < (5 * rows) / 6;
      const inBody = Math.abs(x - cx) < columns / 3;
      let v = inBone ? 0.8 : inBody ? 0.35 + 0.1 * (y / rows) : 0.05;
      if (!boneBright) v = 1 - v;
      v += (rand() - 0.5) * 0.06;
      out[y * columns + x] = Math.max(lo, Math.min(hi, Math.round(lo + v * range)));
    }
  }
  return out;
}
