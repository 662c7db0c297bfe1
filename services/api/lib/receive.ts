import type { IngestContext, IngestOutcome, IngestService } from '../../core/services/ingest.service.js';
import { FailureReason } from '../../dicom/index.js';
import { MultipartError, readMultipartRelated, type PartSink } from './multipart-related.js';
import { parseMediaType } from './media-type.js';

/** Thrown when the whole request body passes the configured limit. */
export class RequestTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`request body larger than the ${Math.round(limit / 1024 / 1024)} MB limit`);
  }
}

/** The client sent nothing for too long, or took longer than allowed for the whole body. */
export class ClientTimeoutError extends Error {}

/** What a request body may take: time (see readBody) and bytes. */
export interface BodyLimits {
  /** Longest wait for the next chunk. */
  idleMs: number;
  /** The whole body must have arrived within this long of `startedAt`. */
  totalMs: number;
  startedAt: number;
  /** Past this many bytes the body stops with RequestTooLargeError. */
  maxBytes: number;
  /** Told each chunk's size as it arrives (the bytes-received metric). */
  counted?: (bytes: number) => void;
}

/**
 * A request body as it arrives, cut off when the client is too slow or sends too much: nothing
 * received for `idleMs` while we wait for the next chunk, or the whole body not received within
 * `totalMs` of `startedAt` (a 1-byte-per-second client is never idle), or more than `maxBytes`.
 * Only time spent waiting for the client counts: the socket's own inactivity timer also ran while
 * the server was busy storing parts (many small parts, a slow disk), and then dropped a client
 * that had sent everything and was waiting for its answer.
 *
 * One generator with two timers for the whole body (re-armed, not made anew per chunk): it replaced
 * three nested generators and a timer and a race per chunk, a cost every upload paid on each of
 * its network reads.
 */
export async function* readBody(source: AsyncIterable<Buffer>, limits: BodyLimits): AsyncGenerator<Buffer> {
  const iterator = source[Symbol.asyncIterator]();
  /** Fails the wait in progress; unset while the server, not the client, is the one busy. */
  let failWait: ((error: Error) => void) | undefined;
  /** The whole-body deadline passed (perhaps while the server was busy): no wait from now on. */
  let late: ClientTimeoutError | undefined;
  const idle = setTimeout(() => failWait?.(new ClientTimeoutError(`client sent nothing for ${Math.round(limits.idleMs / 1000)} s`)), limits.idleMs);
  const deadline = setTimeout(() => {
    late = new ClientTimeoutError(`request body not received within ${Math.round(limits.totalMs / 1000)} s`);
    failWait?.(late);
  }, Math.max(0, limits.startedAt + limits.totalMs - Date.now()));
  let total = 0;
  try {
    for (;;) {
      idle.refresh(); // the idle wait starts now, whatever the server did since the last chunk
      const result = await new Promise<IteratorResult<Buffer>>((resolve, reject) => {
        failWait = reject;
        iterator.next().then(resolve, reject);
        // Past the deadline: what has already arrived (or the body's end) is still taken, nothing more is waited for.
        if (late) setImmediate(() => failWait === reject && reject(late));
      });
      failWait = undefined;
      if (result.done) return;
      const chunk = result.value;
      total += chunk.length;
      if (total > limits.maxBytes) throw new RequestTooLargeError(limits.maxBytes);
      limits.counted?.(chunk.length);
      yield chunk;
    }
  } finally {
    failWait = undefined;
    clearTimeout(idle);
    clearTimeout(deadline);
    void iterator.return?.();
  }
}

/**
 * Reads a multipart/related body part by part; each part is ingested as soon as it has fully
 * arrived, so outcomes are known per instance even if a later part breaks the body.
 */
export async function receiveMultipart(
  source: AsyncIterable<Buffer>,
  boundary: string,
  ingest: IngestService,
  ctx: IngestContext,
): Promise<{ outcomes: IngestOutcome[]; error?: MultipartError | RequestTooLargeError | ClientTimeoutError }> {
  const outcomes: IngestOutcome[] = [];
  try {
    await readMultipartRelated(source, boundary, async (headers): Promise<PartSink> => {
      const type = parseMediaType(headers['content-type'])?.essence ?? 'application/dicom';
      if (type !== 'application/dicom') {
        // Drain and refuse this part; the others are still processed.
        return {
          write: async () => {},
          end: async () => { outcomes.push({ status: 'failed', failureReason: FailureReason.CannotUnderstand, reason: `part media type ${type} is not application/dicom` }); },
          abort: async () => {},
        };
      }
      const part = ingest.openPart(ctx);
      return { write: part.write, end: async () => { outcomes.push(await part.end()); }, abort: part.abort };
    });
  } catch (error) {
    // Parts that arrived whole before the body broke are stored; report them with the error.
    if (error instanceof MultipartError || error instanceof RequestTooLargeError || error instanceof ClientTimeoutError) return { outcomes, error };
    throw error;
  }
  return { outcomes };
}
