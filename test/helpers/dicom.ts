import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { createDeflateRaw } from 'node:zlib';
import { parseInstance } from '../../services/imaging/dataset.js';
import { DEFLATED, SopClass, encodeDataSet, writePart10, type DicomItem, type Part10Options } from '../../services/dicom/index.js';

/** Elements of a plain greyscale DX image; callers override what they need. */
export function dxImage(opts: {
  studyUid: string; seriesUid: string; sopInstanceUid: string; rows: number; columns: number;
  bitsStored?: number; pixels?: Uint16Array; patientName?: string; patientId?: string; bodyPart?: string;
  accession?: string; priority?: string; extra?: DicomItem;
}): DicomItem {
  const bitsStored = opts.bitsStored ?? 12;
  const pixels = opts.pixels ?? new Uint16Array(opts.rows * opts.columns);
  return {
    '00080016': { vr: 'UI', value: SopClass.DigitalXRayForPresentation },
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

export type WriteOptions = Part10Options;
export type { DicomItem };
/** The project's one Part 10 writer, under the name the tests and benchmarks use. */
export const writeDicom = writePart10;

let counter = 0;
/** A fresh UID under a test root, unique across test processes. */
export function uid(): string {
  return `1.2.826.0.1.3680043.10.1431.9.${parseInt(randomBytes(4).toString('hex'), 16)}.${process.pid}.${++counter}`;
}

export function makeDx(opts: Partial<Parameters<typeof dxImage>[0]> & { write?: WriteOptions; extra?: DicomItem } = {}): { bytes: Buffer; studyUid: string; seriesUid: string; sopInstanceUid: string } {
  const studyUid = opts.studyUid ?? uid();
  const seriesUid = opts.seriesUid ?? uid();
  const sopInstanceUid = opts.sopInstanceUid ?? uid();
  const rows = opts.rows ?? 32;
  const columns = opts.columns ?? 32;
  const pixels = opts.pixels ?? Uint16Array.from({ length: rows * columns }, (_, i) => (i * 7) % 4096);
  const bytes = writeDicom(dxImage({ ...opts, studyUid, seriesUid, sopInstanceUid, rows, columns, pixels }), opts.write);
  return { bytes, studyUid, seriesUid, sopInstanceUid };
}

/** Builds a multipart/related body with one part per buffer. */
export function multipart(parts: (Buffer | { body: Buffer; type?: string | null })[], boundary = `b-${randomBytes(8).toString('hex')}`) {
  const chunks: Buffer[] = [];
  for (const part of parts) {
    const { body, type } = Buffer.isBuffer(part) ? { body: part, type: 'application/dicom' } : part;
    chunks.push(Buffer.from(`--${boundary}\r\n${type === null ? '' : `Content-Type: ${type ?? 'application/dicom'}\r\n`}\r\n`));
    chunks.push(body, Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/related; type="application/dicom"; boundary=${boundary}`, boundary };
}

/** A DX with a JPEG Lossless transfer syntax whose single fragment is not a JPEG stream: stored at upload, undecodable by the worker. */
export function corruptJpegLossless(rows = 64, columns = 64): Buffer {
  const dx = makeDx({ rows, columns });
  const text = dx.bytes;
  const tsAt = text.indexOf('1.2.840.10008.1.2.1\0');
  const pixelTag = Buffer.from([0xe0, 0x7f, 0x10, 0x00]);
  const pixelAt = text.lastIndexOf(pixelTag);
  const head = Buffer.from(text.subarray(0, pixelAt));
  const uid = '1.2.840.10008.1.2.4.70';
  const value = Buffer.from(uid.length % 2 ? `${uid}\0` : uid, 'latin1');
  const oldLength = head.readUInt16LE(tsAt - 2);
  const meta = Buffer.concat([head.subarray(0, tsAt - 2), Buffer.from([value.length & 0xff, value.length >> 8]), value, head.subarray(tsAt + oldLength)]);
  const groupLengthAt = 132 + 8;
  meta.writeUInt32LE(meta.readUInt32LE(groupLengthAt) + value.length - oldLength, groupLengthAt);
  const fragment = Buffer.from(Array.from({ length: 200 }, (_, i) => (i * 37 + 11) & 0xff));
  const item = (len: number) => { const b = Buffer.alloc(8); b.writeUInt16LE(0xfffe, 0); b.writeUInt16LE(0xe000, 2); b.writeUInt32LE(len, 4); return b; };
  const pixelHeader = Buffer.from([0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x42, 0, 0, 0xff, 0xff, 0xff, 0xff]);
  const delimiter = Buffer.from([0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0]);
  return Buffer.concat([meta, pixelHeader, item(0), item(fragment.length), fragment, delimiter]);
}

/**
 * A Deflated Explicit VR LE DX whose data set inflates to about `inflatedBytes` (Pixel Data of zeros,
 * so the file stays near inflatedBytes / 1000): a "deflate bomb". Rows/columns/frames are what it declares.
 */
export async function deflateBomb(opts: { rows: number; columns: number; frames?: number; inflatedBytes: number }): Promise<Buffer> {
  const ids = { studyUid: uid(), seriesUid: uid(), sopInstanceUid: uid() };
  const elements = dxImage({ ...ids, rows: opts.rows, columns: opts.columns, pixels: new Uint16Array(0) });
  delete elements['7fe00010'];
  if (opts.frames) elements['00280008'] = { vr: 'IS', value: String(opts.frames) };
  const head = encodeDataSet(elements);
  const pixelLength = opts.inflatedBytes - head.length - 12;
  const pixelHeader = Buffer.alloc(12);
  pixelHeader.writeUInt16LE(0x7fe0, 0);
  pixelHeader.writeUInt16LE(0x0010, 2);
  pixelHeader.write('OW', 4, 'latin1');
  pixelHeader.writeUInt32LE(pixelLength, 8);
  const deflater = createDeflateRaw({ level: 9 });
  const out: Buffer[] = [];
  deflater.on('data', (c: Buffer) => out.push(c));
  const done = new Promise((resolve, reject) => deflater.on('end', resolve).on('error', reject));
  const zeros = Buffer.alloc(4 * 1024 * 1024);
  const write = (chunk: Buffer) => new Promise<void>((resolve) => (deflater.write(chunk) ? resolve() : deflater.once('drain', () => resolve())));
  await write(head);
  await write(pixelHeader);
  for (let left = pixelLength; left > 0; left -= zeros.length) await write(left >= zeros.length ? zeros : zeros.subarray(0, left));
  deflater.end();
  await done;
  const part10 = writePart10({ ...elements, '7fe00010': { vr: 'OW', value: new Uint8Array(0) } }, { transferSyntaxUid: DEFLATED });
  const metaEnd = 132 + 12 + part10.readUInt32LE(140);
  return Buffer.concat([part10.subarray(0, metaEnd), ...out]);
}

/**
 * The FracAtlas JPEG Lossless sample with its compressed data scrambled after byte 600 (issue 15):
 * a well-formed data set whose frame still decodes, without an exception, to a nearly black image.
 * dcmtk says "Corrupt JPEG data: premature end of data segment"; the worker must say "unreadable".
 */
export async function scrambledJpegLossless(seed = 1): Promise<Buffer> {
  const bytes = Buffer.from(fs.readFileSync(path.resolve(import.meta.dirname, '../../samples/fracatlas/02-hand-fractured-jpeg-lossless.dcm')));
  const frame = (await parseInstance(bytes)).frameBytes(0);
  const at = bytes.indexOf(Buffer.from(frame.subarray(0, 64)));
  let state = seed;
  const random = () => ((state = (state * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  // Keep the last two bytes (the EOI marker): the stream still looks complete.
  for (let i = at + 600; i < at + frame.length - 2; i++) bytes[i] = Math.floor(random() * 256);
  return bytes;
}

/** A Basic Text SR (a report: no pixels) in a study, for "non-image objects are stored" tests. */
export function makeSr(opts: { studyUid?: string; seriesUid?: string; sopInstanceUid?: string; patientId?: string; patientName?: string; text?: string } = {}) {
  const studyUid = opts.studyUid ?? uid();
  const seriesUid = opts.seriesUid ?? uid();
  const sopInstanceUid = opts.sopInstanceUid ?? uid();
  const code = (value: string, meaning: string): DicomItem => ({
    '00080100': { vr: 'SH', value }, '00080102': { vr: 'SH', value: 'DCM' }, '00080104': { vr: 'LO', value: meaning },
  });
  const bytes = writePart10({
    '00080016': { vr: 'UI', value: '1.2.840.10008.5.1.4.1.1.88.11' },
    '00080018': { vr: 'UI', value: sopInstanceUid },
    '00080020': { vr: 'DA', value: '20261129' },
    '00080030': { vr: 'TM', value: '101500' },
    '00080050': { vr: 'SH', value: 'ACC0001' },
    '00080060': { vr: 'CS', value: 'SR' },
    '00100010': { vr: 'PN', value: opts.patientName ?? 'TEST^PATIENT' },
    '00100020': { vr: 'LO', value: opts.patientId ?? 'PID0001' },
    '0020000d': { vr: 'UI', value: studyUid },
    '0020000e': { vr: 'UI', value: seriesUid },
    '00200011': { vr: 'IS', value: '99' },
    '00200013': { vr: 'IS', value: '1' },
    '0040a040': { vr: 'CS', value: 'CONTAINER' },
    '0040a043': { vr: 'SQ', value: [code('121070', 'Findings')] },
    '0040a050': { vr: 'CS', value: 'SEPARATE' },
    '0040a491': { vr: 'CS', value: 'COMPLETE' },
    '0040a493': { vr: 'CS', value: 'UNVERIFIED' },
    '0040a730': { vr: 'SQ', value: [{
      '0040a010': { vr: 'CS', value: 'CONTAINS' },
      '0040a040': { vr: 'CS', value: 'TEXT' },
      '0040a043': { vr: 'SQ', value: [code('121071', 'Finding')] },
      '0040a160': { vr: 'UT', value: opts.text ?? 'No acute bony injury.' },
    }] },
  });
  return { bytes, studyUid, seriesUid, sopInstanceUid };
}
