import { randomBytes } from 'node:crypto';
import { dxImage, writeDicom, type DicomItem, type WriteOptions } from '../../services/core/dicom/write-dicom.js';

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

/** A Basic Text SR (a report: no pixels) in a study, for "non-image objects are stored" tests. */
export function makeSr(opts: { studyUid?: string; seriesUid?: string; sopInstanceUid?: string; patientId?: string; patientName?: string; text?: string } = {}) {
  const studyUid = opts.studyUid ?? uid();
  const seriesUid = opts.seriesUid ?? uid();
  const sopInstanceUid = opts.sopInstanceUid ?? uid();
  const code = (value: string, meaning: string): DicomItem => ({
    '00080100': { vr: 'SH', value }, '00080102': { vr: 'SH', value: 'DCM' }, '00080104': { vr: 'LO', value: meaning },
  });
  const bytes = writeDicom({
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
