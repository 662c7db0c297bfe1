import { serverFailure, type IngestContext, type IngestOutcome, type IngestService } from '../../core/services/ingest.service.js';
import { ObjectTooLargeError, type StorageRepository, type TempObjectWriter } from '../../core/repositories/storage.repository.js';
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

/** Streams one DICOM object into a temp file and ingests it. */
export async function receiveOne(
  source: AsyncIterable<Buffer>,
  storage: StorageRepository,
  ingest: IngestService,
  ctx: IngestContext,
): Promise<IngestOutcome> {
  let writer: TempObjectWriter | undefined;
  let failed: IngestOutcome | undefined;
  try {
    writer = await storage.openTemp();
  } catch (error) {
    failed = serverFailure(error);
  }
  try {
    for await (const chunk of source) {
      if (failed) continue; // read the rest of the body, store nothing
      try {
        await writer!.write(chunk);
      } catch (error) {
        if (!isSystemError(error)) throw error;
        await writer!.abort().catch(() => {});
        failed = serverFailure(error);
      }
    }
  } catch (error) {
    await writer?.abort().catch(() => {});
    throw error;
  }
  return failed ?? finishAndIngest(writer!, ingest, ctx);
}

/** An error from the file system (ENOSPC, EROFS, EIO…), not from the request. */
function isSystemError(error: unknown): boolean {
  return typeof (error as NodeJS.ErrnoException)?.code === 'string' && typeof (error as NodeJS.ErrnoException).errno === 'number';
}

async function finishAndIngest(writer: TempObjectWriter, ingest: IngestService, ctx: IngestContext): Promise<IngestOutcome> {
  try {
    const temp = await writer.finish();
    if (temp.sizeBytes === 0) {
      await writer.abort();
      return { status: 'failed', failureReason: FailureReason.CannotUnderstand, reason: 'empty part: no bytes' };
    }
    return await ingest.ingest(temp, ctx);
  } catch (error) {
    if (error instanceof ObjectTooLargeError) {
      return { status: 'failed', failureReason: FailureReason.OutOfResources, reason: error.message };
    }
    // fsync of the temp file failed (no space for its last blocks, read-only): nothing stored.
    if (isSystemError(error)) {
      await writer.abort().catch(() => {});
      return serverFailure(error);
    }
    throw error;
  }
}

/**
 * Reads a multipart/related body part by part; each part is ingested as soon as it has fully
 * arrived, so outcomes are known per instance even if a later part breaks the body.
 */
export async function receiveMultipart(
  source: AsyncIterable<Buffer>,
  boundary: string,
  storage: StorageRepository,
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
    // A storage error (disk full, read-only folder) fails this part; the body is still read to its end.
    let writer: TempObjectWriter | undefined;
    let failed: IngestOutcome | undefined;
    try {
      writer = await storage.openTemp();
    } catch (error) {
      if (!isSystemError(error)) throw error;
      failed = serverFailure(error);
    }
    return {
      write: async (chunk) => {
        if (failed) return;
        try {
          await writer!.write(chunk);
        } catch (error) {
          await writer!.abort().catch(() => {});
          if (!isSystemError(error)) throw error;
          failed = serverFailure(error);
        }
      },
      end: async () => { outcomes.push(failed ?? await finishAndIngest(writer!, ingest, ctx)); },
      abort: async () => { await writer?.abort(); },
    };
  });
  } catch (error) {
    // Parts that arrived whole before the body broke are stored; report them with the error.
    if (error instanceof MultipartError || error instanceof RequestTooLargeError || error instanceof ClientTimeoutError) return { outcomes, error };
    throw error;
  }
  return { outcomes };
}
