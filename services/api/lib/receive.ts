import type { IngestContext, IngestOutcome, IngestService } from '../../core/services/ingest.service.js';
import { ObjectTooLargeError, type StorageRepository, type TempObjectWriter } from '../../core/repositories/storage.repository.js';
import { FailureReason } from '../../core/dicom/failure-reason.js';
import { MultipartError, readMultipartRelated, type PartSink } from './multipart-related.js';
import { parseMediaType } from './media-type.js';

/** Thrown when the whole request body passes the configured limit. */
export class RequestTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`request body larger than the ${Math.round(limit / 1024 / 1024)} MB limit`);
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
  const writer = await storage.openTemp();
  try {
    for await (const chunk of source) await writer.write(chunk);
  } catch (error) {
    await writer.abort();
    throw error;
  }
  return finishAndIngest(writer, ingest, ctx);
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
): Promise<{ outcomes: IngestOutcome[]; error?: MultipartError | RequestTooLargeError }> {
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
    const writer = await storage.openTemp();
    return {
      write: (chunk) => writer.write(chunk),
      end: async () => { outcomes.push(await finishAndIngest(writer, ingest, ctx)); },
      abort: () => writer.abort(),
    };
  });
  } catch (error) {
    // Parts that arrived whole before the body broke are stored; report them with the error.
    if (error instanceof MultipartError || error instanceof RequestTooLargeError) return { outcomes, error };
    throw error;
  }
  return { outcomes };
}
