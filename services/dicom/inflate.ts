/**
 * Bounded inflation of a Deflated Explicit VR Little Endian data set (issue 16, H1): zlib's async
 * stream (the work runs on libuv's thread pool, not the event loop), stopped as soon as the output
 * passes a limit, so a small "deflate bomb" costs a few megabytes, never gigabytes.
 */
import { createInflateRaw } from 'node:zlib';
import { DicomRejection, FailureReason, Reason } from './failure-reason.js';

export interface InflateLimits {
  /** Hard cap on the inflated size (the largest object the server accepts at all). */
  maxBytes: number;
  /** Once this much is inflated, the image size declared in it sets a tighter cap. */
  headerAllowance: number;
  /** Bytes of pixel data the data set prefix declares, or undefined when it declares none. */
  declaredPixelBytes(prefix: Uint8Array): number | undefined;
}

export function inflateBounded(deflated: Uint8Array, limits: InflateLimits): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const inflater = createInflateRaw({ chunkSize: 64 * 1024 });
    let chunks: Buffer[] = [];
    let total = 0;
    let limit = limits.maxBytes;
    let limitedByImage = false;
    let sized = false;
    let settled = false;
    const fail = (rejection: DicomRejection) => {
      if (settled) return;
      settled = true;
      chunks = [];
      inflater.destroy();
      reject(rejection);
    };
    inflater.on('data', (chunk: Buffer) => {
      if (settled) return;
      chunks.push(chunk);
      total += chunk.length;
      if (!sized && total >= limits.headerAllowance) {
        sized = true;
        chunks = [Buffer.concat(chunks, total)];
        const declared = limits.declaredPixelBytes(chunks[0]);
        // An image that declares more pixels than the limit allows cannot fit: refuse it now rather
        // than inflate up to the limit first (that cost the worker 100 MB per bomb).
        if (declared !== undefined && declared > limit) {
          fail(new DicomRejection(FailureReason.OutOfResources, Reason.inflatedTooLarge, undefined, undefined, 'too-large'));
          return;
        }
        // Header, pixel data and a header's worth of trailing elements; nothing a real image needs more.
        if (declared !== undefined && declared + 2 * limits.headerAllowance < limit) {
          limit = declared + 2 * limits.headerAllowance;
          limitedByImage = true;
        }
      }
      if (total > limit) {
        fail(limitedByImage
          ? new DicomRejection(FailureReason.CannotUnderstand, Reason.inflatedOverImage, undefined, undefined, 'corrupt')
          : new DicomRejection(FailureReason.OutOfResources, Reason.inflatedTooLarge, undefined, undefined, 'too-large'));
      }
    });
    inflater.on('end', () => {
      if (settled) return;
      settled = true;
      resolve(Buffer.concat(chunks, total));
    });
    inflater.on('error', () => fail(new DicomRejection(FailureReason.CannotUnderstand, Reason.cannotInflate, undefined, undefined, 'corrupt')));
    inflater.end(Buffer.from(deflated.buffer, deflated.byteOffset, deflated.byteLength));
  });
}
