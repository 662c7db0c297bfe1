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

/**
 * Cuts off a client that is too slow: nothing received for `idleMs` while we wait for the next
 * chunk, or the whole body not received within `totalMs` of `startedAt` (a 1-byte-per-second
 * client is never idle). Only time spent waiting for the client counts: the socket's own
 * inactivity timer also ran while the server was busy storing parts (many small parts, a slow
 * disk), and then dropped a client that had sent everything and was waiting for its answer.
 */
export async function* guardClient(source: AsyncIterable<Buffer>, opts: { idleMs: number; totalMs: number; startedAt: number }): AsyncGenerator<Buffer> {
  const iterator = source[Symbol.asyncIterator]();
  try {
    for (;;) {
      const left = opts.startedAt + opts.totalMs - Date.now();
      const wait = Math.min(opts.idleMs, left);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new ClientTimeoutError(wait < opts.idleMs
          ? `request body not received within ${Math.round(opts.totalMs / 1000)} s`
          : `client sent nothing for ${Math.round(opts.idleMs / 1000)} s`)), Math.max(0, wait));
      });
      let result: IteratorResult<Buffer>;
      try {
        result = await Promise.race([iterator.next(), timeout]);
      } finally {
        clearTimeout(timer);
      }
      if (result.done) return;
      yield result.value;
    }
  } finally {
    void iterator.return?.();
  }
}

/** Counts bytes as they stream past and stops the body at `limit`. */
export async function* limitBytes(source: AsyncIterable<Buffer>, limit: number): AsyncGenerator<Buffer> {
  let total = 0;
  for await (const chunk of source) {
    total += chunk.length;
    if (total > limit) throw new RequestTooLargeError(limit);
    yield chunk;
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
