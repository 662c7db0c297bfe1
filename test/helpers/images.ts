/**
 * Builders for the image-pipeline tests, fixtures and the decode benchmark: greyscale image
 * elements, packed pixels, a synthetic radiograph, all written by the one Part 10 writer
 * (services/dicom/writer.ts). Not for clinical data.
 */
import { SopClass, writePart10, type DicomItem, type DicomValue, type EncapsulatedPixels } from '../../services/dicom/index.js';

export type Vr = 'US' | 'SS' | 'UL' | 'CS' | 'DS' | 'IS' | 'UI' | 'LO' | 'SH' | 'OB' | 'OW' | 'SQ' | 'UN';

export interface DicomElement {
  /** (gggg,eeee) as 0xggggeeee */
  tag: number;
  vr: Vr;
  value: string | number[] | Uint8Array | DicomElement[][];
}

function toItem(elements: DicomElement[]): DicomItem {
  const item: DicomItem = {};
  for (const el of elements) {
    const value = el.vr === 'SQ' ? (el.value as DicomElement[][]).map(toItem) : el.value;
    item[el.tag.toString(16).padStart(8, '0')] = { vr: el.vr, value: value as DicomValue };
  }
  return item;
}

/** Encapsulated Pixel Data: the fragments as given, with the given (possibly wrong, for tests) offset table. */
export function encapsulatedPixelData(fragments: Uint8Array[], offsets: number[] = []): EncapsulatedPixels {
  return { fragments, basicOffsetTable: offsets };
}

export interface WriteOptions {
  transferSyntaxUid?: string;
  elements: DicomElement[];
  /** Native pixel bytes (written as OW/OB), or encapsulated fragments from encapsulatedPixelData(). */
  pixelData?: Uint8Array;
  encapsulated?: EncapsulatedPixels;
  bitsAllocated?: number;
}

/** A CR image file with fixed UIDs (the committed fixtures were made this way: keep them byte-identical). */
export function writeDicom(opts: WriteOptions): Uint8Array {
  const item = toItem([
    { tag: 0x00080016, vr: 'UI', value: SopClass.ComputedRadiography },
    { tag: 0x00080018, vr: 'UI', value: '2.25.1234567890123456789' },
    ...opts.elements,
  ]);
  if (opts.pixelData) item['7fe00010'] = { vr: (opts.bitsAllocated ?? 16) > 8 ? 'OW' : 'OB', value: opts.pixelData };
  if (opts.encapsulated) item['7fe00010'] = { vr: 'OB', value: opts.encapsulated };
  return new Uint8Array(writePart10(item, { transferSyntaxUid: opts.transferSyntaxUid, implementationClassUid: '2.25.999', implementationVersionName: null }));
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
