import { DicomRejection, Tag, quotable, readDicom, transferSyntax, type DataSet, type DicomProblem, type Element, type ReadLimits, type TransferSyntax } from '../dicom/index.js';
import { PixelDataError, type PixelDataErrorCode } from './errors.js';

/** Refuse anything larger before allocating (2^28 pixels = 1 GiB of Int32 working memory). */
export const MAX_TOTAL_PIXELS = 2 ** 28;
export const MAX_FRAME_PIXELS = 2 ** 26; // e.g. 8192 x 8192

export interface Lut {
  /** Number of entries (descriptor value 0 means 65536). */
  entries: number;
  firstMapped: number;
  bits: number;
  data: Uint16Array;
  explanation?: string;
}

export interface ImageInfo {
  transferSyntax: TransferSyntax;
  rows: number;
  columns: number;
  frames: number;
  samplesPerPixel: number;
  photometric: string;
  bitsAllocated: number;
  bitsStored: number;
  highBit: number;
  pixelRepresentation: number;
  planarConfiguration: number;
  rescaleSlope: number;
  rescaleIntercept: number;
  modalityLut?: Lut;
  windows: { center: number; width: number }[];
  voiLuts: Lut[];
  voiLutFunction: string;
  presentationLutShape?: string;
  pixelPaddingValue?: number;
}

export interface ParsedInstance {
  info: ImageInfo;
  /** Bytes of one frame as stored (native) or as one codestream (encapsulated). */
  frameBytes(index: number): Uint8Array;
  encapsulated: boolean;
}

function fail(code: ConstructorParameters<typeof PixelDataError>[0], msg: string): never {
  throw new PixelDataError(code, msg);
}

const CODE_FOR_PROBLEM: Record<DicomProblem, PixelDataErrorCode> = {
  'not-dicom': 'not-an-image',
  'not-an-image': 'not-an-image',
  truncated: 'truncated',
  'too-large': 'too-large',
  'unsupported-syntax': 'unsupported-transfer-syntax',
  corrupt: 'corrupt-pixel-data',
  refused: 'corrupt-pixel-data',
};

/** Reads the data set with the one parser ingest validates with (so whatever ingest accepts parses here). */
async function read(bytes: Uint8Array, limits: ReadLimits) {
  if (!(bytes instanceof Uint8Array)) fail('not-an-image', 'not a DICOM file');
  try {
    return await readDicom(bytes, limits);
  } catch (e) {
    if (e instanceof DicomRejection) fail(CODE_FOR_PROBLEM[e.problem], e.reason);
    throw e;
  }
}

export async function parseInstance(bytes: Uint8Array, limits: ReadLimits = {}): Promise<ParsedInstance> {
  const file = await read(bytes, limits);
  const ds = file.dataSet;
  const ts = transferSyntax(file.transferSyntaxUid);
  if (!ts) fail('unsupported-transfer-syntax', `transfer syntax ${quotableUid(file.transferSyntaxUid)} is not supported`);
  const pixelEl = ds.elements.x7fe00010;
  if (!pixelEl) fail('not-an-image', 'no Pixel Data (7FE0,0010) in the data set');

  const rows = ds.uint16('x00280010') ?? 0;
  const columns = ds.uint16('x00280011') ?? 0;
  if (!rows || !columns) fail('not-an-image', `rows/columns missing or zero (${rows}x${columns})`);
  const frames = Math.max(1, parseInt(ds.string('x00280008') ?? '1', 10) || 1);
  const samplesPerPixel = ds.uint16('x00280002') ?? 1;
  const photometric = (ds.string('x00280004') ?? 'MONOCHROME2').trim().toUpperCase();
  const bitsAllocated = ds.uint16('x00280100') ?? 0;
  const bitsStored = ds.uint16('x00280101') ?? bitsAllocated;
  const highBit = ds.uint16('x00280102') ?? bitsStored - 1;
  const pixelRepresentation = ds.uint16('x00280103') ?? 0;
  const planarConfiguration = ds.uint16('x00280006') ?? 0;

  if (rows * columns > MAX_FRAME_PIXELS || rows * columns * frames > MAX_TOTAL_PIXELS)
    fail('too-large', `declared size ${columns}x${rows}x${frames} frames exceeds the limit`);
  if (photometric === 'PALETTE COLOR') fail('unsupported-photometric', 'PALETTE COLOR images are not supported (greyscale radiographs only)');
  if (samplesPerPixel !== 1 || !(photometric === 'MONOCHROME1' || photometric === 'MONOCHROME2'))
    fail('unsupported-photometric', `photometric interpretation ${quotable(photometric)} with ${samplesPerPixel} samples per pixel is not supported (greyscale radiographs only)`);
  if (bitsAllocated !== 8 && bitsAllocated !== 16)
    fail('unsupported-pixel-format', `bits allocated ${bitsAllocated} is not supported (8 or 16)`);
  if (bitsStored < 1 || bitsStored > bitsAllocated || highBit < bitsStored - 1 || highBit >= bitsAllocated)
    fail('unsupported-pixel-format', `inconsistent bits stored ${bitsStored} / high bit ${highBit} / bits allocated ${bitsAllocated}`);
  if (pixelRepresentation !== 0 && pixelRepresentation !== 1)
    fail('unsupported-pixel-format', `pixel representation ${pixelRepresentation} is not 0 or 1`);

  const signedLut = pixelRepresentation === 1;
  const modalityLut = readLutSequence(ds, 'x00283000', signedLut, ts.bigEndian)[0];
  const centers = numbers(ds, 'x00281050');
  const widths = numbers(ds, 'x00281051');
  const windows: { center: number; width: number }[] = [];
  for (let i = 0; i < Math.min(centers.length, widths.length); i++) {
    if (Number.isFinite(centers[i]) && Number.isFinite(widths[i]) && widths[i] > 0) windows.push({ center: centers[i], width: widths[i] });
  }
  const info: ImageInfo = {
    transferSyntax: ts,
    rows,
    columns,
    frames,
    samplesPerPixel,
    photometric,
    bitsAllocated,
    bitsStored,
    highBit,
    pixelRepresentation,
    planarConfiguration,
    rescaleSlope: numbers(ds, 'x00281053')[0] ?? 1,
    rescaleIntercept: numbers(ds, 'x00281052')[0] ?? 0,
    modalityLut,
    windows,
    voiLuts: readLutSequence(ds, 'x00283010', signedLut || (numbers(ds, 'x00281052')[0] ?? 0) < 0, ts.bigEndian),
    voiLutFunction: (ds.string('x00281056') ?? 'LINEAR').trim().toUpperCase(),
    presentationLutShape: ds.string('x20500020')?.trim().toUpperCase() || undefined,
    pixelPaddingValue: ds.elements.x00280120 ? (signedLut ? ds.int16('x00280120') : ds.uint16('x00280120')) : undefined,
  };
  if (!Number.isFinite(info.rescaleSlope) || info.rescaleSlope === 0) info.rescaleSlope = 1;
  if (!Number.isFinite(info.rescaleIntercept)) info.rescaleIntercept = 0;

  const data = file.byteArray;
  const encapsulated = pixelEl.encapsulatedPixelData === true || (pixelEl.hadUndefinedLength === true && ts.codec !== 'native' && ts.codec !== 'deflate');
  if (ts.codec === 'native' || ts.codec === 'deflate') {
    if (pixelEl.hadUndefinedLength) fail('corrupt-pixel-data', 'native transfer syntax but Pixel Data is encapsulated');
    const frameLen = (rows * columns * bitsAllocated) / 8;
    const available = Math.min(pixelEl.length, data.length - pixelEl.dataOffset);
    const needed = frameLen * frames;
    if (available < needed)
      fail('truncated', `Pixel Data has ${available} bytes, ${columns}x${rows}x${frames} frames at ${bitsAllocated} bits needs ${needed}`);
    return {
      info,
      encapsulated: false,
      frameBytes(index) {
        const start = pixelEl.dataOffset + index * frameLen;
        return data.subarray(start, start + frameLen);
      },
    };
  }
  if (!encapsulated) fail('corrupt-pixel-data', `${ts.name} requires encapsulated Pixel Data, found a native one`);
  const frameFragments = splitFrames(pixelEl, data, frames);
  return {
    info,
    encapsulated: true,
    frameBytes(index) {
      const frags = frameFragments[index];
      if (frags.length === 1) return data.subarray(frags[0].position, frags[0].position + frags[0].length);
      const total = frags.reduce((s, f) => s + f.length, 0);
      const out = new Uint8Array(total);
      let o = 0;
      for (const f of frags) {
        out.set(data.subarray(f.position, f.position + f.length), o);
        o += f.length;
      }
      return out;
    },
  };
}

type Fragment = { offset: number; position: number; length: number };

function splitFrames(el: Element, data: Uint8Array, frames: number): Fragment[][] {
  const fragments = (el.fragments ?? []) as Fragment[];
  if (fragments.length === 0) fail('corrupt-pixel-data', 'encapsulated Pixel Data has no fragments');
  for (const [i, f] of fragments.entries()) {
    if (f.position + f.length > data.length)
      fail('truncated', `fragment ${i} (${f.length} bytes) runs past the end of the file`);
  }
  const bot = el.basicOffsetTable ?? [];
  const result: Fragment[][] = [];
  if (bot.length > 0) {
    if (bot.length !== frames)
      fail('corrupt-pixel-data', `basic offset table has ${bot.length} entries for ${frames} frames`);
    const streamEnd = fragments[fragments.length - 1].offset + fragments[fragments.length - 1].length + 8;
    for (let i = 0; i < frames; i++) {
      const start = bot[i];
      const end = i + 1 < frames ? bot[i + 1] : Infinity;
      if (start >= streamEnd) fail('corrupt-pixel-data', `basic offset table entry ${i} (${start}) points past the end of the pixel data`);
      if (end !== Infinity && end < start) fail('corrupt-pixel-data', `basic offset table entries ${i} and ${i + 1} are not increasing`);
      if (!fragments.some((f) => f.offset === start))
        fail('corrupt-pixel-data', `basic offset table entry ${i} (${start}) does not point at a fragment`);
      result.push(fragments.filter((f) => f.offset >= start && f.offset < end));
    }
  } else if (frames === 1) {
    result.push(fragments);
  } else if (fragments.length === frames) {
    for (const f of fragments) result.push([f]);
  } else {
    // No offset table and more fragments than frames: a frame starts with a JPEG SOI or a J2K SOC marker.
    let current: Fragment[] = [];
    for (const f of fragments) {
      const b0 = data[f.position];
      const b1 = data[f.position + 1];
      const startsFrame = f.length >= 2 && b0 === 0xff && (b1 === 0xd8 || b1 === 0x4f);
      if (startsFrame && current.length) {
        result.push(current);
        current = [];
      }
      current.push(f);
    }
    if (current.length) result.push(current);
    if (result.length !== frames)
      fail('corrupt-pixel-data', `cannot split ${fragments.length} fragments into ${frames} frames (no offset table)`);
  }
  for (const [i, frags] of result.entries()) {
    if (frags.reduce((s, f) => s + f.length, 0) === 0) fail('corrupt-pixel-data', `frame ${i} has zero length`);
  }
  return result;
}

function numbers(ds: DataSet, tag: string): number[] {
  const s = ds.string(tag);
  if (!s) return [];
  return s.split('\\').map((v) => parseFloat(v)).filter((v) => Number.isFinite(v));
}

function readLutSequence(ds: DataSet, tag: string, signedFirst: boolean, bigEndian: boolean): Lut[] {
  const items = ds.elements[tag]?.items ?? [];
  const luts: Lut[] = [];
  for (const item of items) {
    const s = item.dataSet;
    if (!s) continue;
    const descEl = s.elements.x00283002;
    const dataEl = s.elements.x00283006;
    if (!descEl || !dataEl || descEl.length < 6) fail('corrupt-pixel-data', `LUT in ${tag} lacks a descriptor or data`);
    const raw = s.byteArray;
    const u16 = (pos: number) => (bigEndian ? (raw[pos] << 8) | raw[pos + 1] : raw[pos] | (raw[pos + 1] << 8));
    let entries = u16(descEl.dataOffset);
    if (entries === 0) entries = 65536;
    let firstMapped = u16(descEl.dataOffset + 2);
    if (signedFirst && firstMapped >= 0x8000) firstMapped -= 0x10000;
    const bits = u16(descEl.dataOffset + 4);
    if (bits < 1 || bits > 16) fail('corrupt-pixel-data', `LUT in ${tag} declares ${bits} bits per entry`);
    const data = new Uint16Array(entries);
    if (dataEl.length >= entries * 2) {
      for (let i = 0; i < entries; i++) data[i] = u16(dataEl.dataOffset + 2 * i);
    } else if (bits <= 8 && dataEl.length >= entries) {
      for (let i = 0; i < entries; i++) data[i] = raw[dataEl.dataOffset + i];
    } else {
      fail('corrupt-pixel-data', `LUT in ${tag} has ${dataEl.length} bytes of data for ${entries} entries`);
    }
    luts.push({ entries, firstMapped, bits, data, explanation: s.string('x00283003') });
  }
  return luts;
}

/** A UID fit for a message: shown only when it is digits and dots of UID length. */
function quotableUid(uid: string): string {
  return /^[0-9.]{1,64}$/.test(uid) ? uid : '(unrecognised value)';
}
