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
