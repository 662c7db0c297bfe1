import type { IngestOrigin } from '../db/schema.js';
import { failpoint } from '../failpoints.js';
import type { Logger } from '../logger.js';
import { DicomRejection, FailureReason, Reason, WarningReason, parseInstance, type InstanceMetadata, type ReadLimits } from '../../dicom/index.js';
import { priorityFromDicom, type ClassifyJobs } from '../queue/classify-queue.js';
import type { AuditRepository } from '../repositories/audit.repository.js';
import { StudyPatientConflictError, type InstanceRepository } from '../repositories/instance.repository.js';
import { stage } from '../stage-timing.js';
import { ObjectTooLargeError, type ObjectWriter, type ReceivedObject, type StorageRepository } from '../repositories/storage.repository.js';

export interface IngestContext {
  /**
   * The door it came in by: STOW-RS, the single-file upload API, DIMSE C-STORE, or `ai` for an
   * object our AI made (SR, Secondary Capture): stored and served like any instance, never queued
   * for classification. Recorded per instance.
   */
  origin: IngestOrigin;
  siteId: string;
  /** Who sent it, recorded per instance and in the audit log: the API key id, for DIMSE the calling AE title, for `ai` the algorithm ("name/version"). */
  actorId: string;
  /** STOW to /studies/{uid}: every instance must belong to that study. */
  expectedStudyUid?: string;
  /** Priority requested by the sender; overrides what the DICOM says. */
  priority?: number;
}

interface Identified {
  sopClassUid: string;
  sopInstanceUid: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  instanceId: number;
}

export type IngestOutcome =
  | ({ status: 'stored' } & Identified)
  /** Same SOP Instance UID and the same bytes: acknowledged again, not queued again. */
  | ({ status: 'duplicate' } & Identified)
  /** Same SOP Instance UID, different bytes: the original is kept, the new bytes dropped. */
  | ({ status: 'conflict'; warningReason: number; reason: string } & Identified)
  | { status: 'failed'; failureReason: number; reason: string; sopClassUid?: string; sopInstanceUid?: string; retryable?: boolean; kind?: 'patient-identity' };

type Failed = Extract<IngestOutcome, { status: 'failed' }>;

/** One object being received, for a caller that pushes chunks (a multipart part, DIMSE PDVs). */
export interface IngestPart {
  /** Appends bytes. After a storage error the rest is accepted and dropped; `end()` then reports the failure. */
  write(chunk: Buffer): Promise<void>;
  /** The object is complete: fsync, parse, commit, queue. Resolves when it is durable, or with the reason it failed. */
  end(): Promise<IngestOutcome>;
  /** The sender went away mid-object: nothing is stored. */
  abort(): Promise<void>;
}

/**
 * A storage or database error as the sender sees it: out of space → 0xA700 (the response becomes
 * 507), anything else on our side (read-only folder, database away) → 0x0110 (503 + Retry-After).
 * Either way nothing was stored and the same upload can simply be sent again.
 */
export function serverFailure(error: unknown): Failed {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return { status: 'failed', failureReason: FailureReason.OutOfResources, reason: 'storage is full; try again later', retryable: true };
  }
  if (code === 'EROFS') {
    return { status: 'failed', failureReason: FailureReason.ProcessingFailure, reason: 'storage is read-only; try again later', retryable: true };
  }
  return { status: 'failed', failureReason: FailureReason.ProcessingFailure, reason: 'the server could not store this instance; try again later', retryable: true };
}

const ENQUEUE_TIMEOUT_MS = 2_000;

/**
 * The one door into the store, whatever the protocol (STOW-RS, the upload API, DIMSE C-STORE):
 * the caller says where an object came from (IngestContext) and hands over its bytes; this turns
 * them into a stored, recorded, queued instance, in the order that makes "stored" true when we
 * say it: file written at its final path (a new name), fdatasynced, its folder fsynced → row (with
 * its audit entry, status "queued") committed →
 * job added under its deterministic id. If the add fails the row is still unfinished and the
 * reconciler adds the missing job later; the id makes a second add a no-op, so it runs once.
 */
export class IngestService {
  constructor(
    private readonly storage: StorageRepository,
    private readonly instances: InstanceRepository,
    private readonly audit: AuditRepository,
    private readonly jobs: ClassifyJobs,
    private readonly log: Logger,
    /** Bounds for reading uploads (the inflated size of Deflated data sets: MAX_PART_MB). */
    private readonly readLimits: ReadLimits = {},
  ) {}

  /** One object from a stream, e.g. a request body. Errors of the source (client timeout, size limit) are thrown after its file is removed. */
  async receive(source: AsyncIterable<Buffer>, ctx: IngestContext): Promise<IngestOutcome> {
    const part = this.openPart(ctx);
    try {
      for await (const chunk of source) await part.write(chunk);
    } catch (error) {
      await part.abort().catch(() => {});
      throw error;
    }
    return part.end();
  }

  /** One object pushed chunk by chunk. A storage error (disk full, read-only folder) fails this object only. */
  openPart(ctx: IngestContext): IngestPart {
    // Made, with its file, at the first byte: an empty part (a hostile body may hold thousands) costs no disk I/O.
    let writer: ObjectWriter | undefined;
    let failed: Failed | undefined;
    return {
      write: async (chunk) => {
        if (!chunk.length || failed) return; // after a failure: read the rest, store nothing
        writer ??= this.storage.startObject(ctx.siteId);
        try {
          await writer.write(chunk);
        } catch (error) {
          await writer.abort();
          if (!isSystemError(error)) throw error;
          failed = serverFailure(error);
        }
      },
      end: async () => {
        if (!writer) return { status: 'failed', failureReason: FailureReason.CannotUnderstand, reason: 'empty part: no bytes' };
        return failed ?? this.finish(writer, ctx);
      },
      abort: async () => {
        await writer?.abort();
      },
    };
  }

  private async finish(writer: ObjectWriter, ctx: IngestContext): Promise<IngestOutcome> {
    let received: ReceivedObject;
    try {
      received = await writer.finish();
    } catch (error) {
      if (error instanceof ObjectTooLargeError) return { status: 'failed', failureReason: FailureReason.OutOfResources, reason: error.message };
      // The open or an earlier write failed (no space, read-only): nothing stored.
      await writer.abort();
      if (isSystemError(error)) return serverFailure(error);
      throw error;
    }
    return stage('store-all', this.store(received, ctx));
  }

  private async store(received: ReceivedObject, ctx: IngestContext): Promise<IngestOutcome> {
    // Set once a row points to the file; until then the file is ours to take back.
    const recorded = { yes: false };
    try {
      return await this.ingestOrReject(received, ctx, recorded);
    } catch (error) {
      if (error instanceof StudyPatientConflictError) {
        return { status: 'failed', failureReason: FailureReason.DataSetMismatch, reason: Reason.studyOfAnotherPatient, sopClassUid: error.sopClassUid, sopInstanceUid: error.sopInstanceUid, kind: 'patient-identity' };
      }
      if (error instanceof DicomRejection) {
        return { status: 'failed', failureReason: error.failureReason, reason: error.reason, sopClassUid: error.sopClassUid, sopInstanceUid: error.sopInstanceUid };
      }
      this.log.error({ err: error, site: ctx.siteId }, 'ingest failed');
      return serverFailure(error);
    } finally {
      // Whatever happened, the file is either recorded or no longer needed, and its bytes were read for the last time.
      received.release();
      if (!recorded.yes) await this.storage.remove(received.storageKey).catch(() => {});
    }
  }

  private async ingestOrReject(received: ReceivedObject, ctx: IngestContext, recorded: { yes: boolean }): Promise<IngestOutcome> {
    // Parsing and the resend lookup run while the file's fdatasync is in flight (received.durable);
    // nothing is recorded before it has returned (storage.makeDurable waits).
    // One in-memory copy of the file, for parsing; the bytes on disk are what we keep.
    const bytes = await this.storage.readReceived(received);
    const meta = await stage('parse', parseInstance(bytes, this.readLimits));
    if (ctx.expectedStudyUid && meta.studyInstanceUid !== ctx.expectedStudyUid) {
      throw new DicomRejection(FailureReason.DataSetMismatch, Reason.otherStudy, meta.sopClassUid, meta.sopInstanceUid);
    }

    const existing = await stage('findBySop', this.instances.findBySop(ctx.siteId, meta.sopInstanceUid));
    if (existing) return this.resend(existing, received, meta, ctx);

    const storageKey = await stage('file-commit', this.storage.makeDurable(received));
    failpoint('after-file-commit');
    const priority = ctx.priority ?? priorityFromDicom(meta.requestedPriority);
    let row: Awaited<ReturnType<InstanceRepository['insert']>>;
    try {
      // The audit entry commits with the row: one commit (one fsync) per group of uploads, not two per upload.
      row = await stage('db-insert', this.instances.insert(ctx.siteId, meta, { sha256: received.sha256, sizeBytes: received.sizeBytes, storageKey }, priority, { origin: ctx.origin, actorId: ctx.actorId },
        this.audit.recordForNewInstance({ ...actorOf(ctx), action: 'instance.store', details: { origin: ctx.origin } }, ctx.siteId, meta.sopInstanceUid)));
    } catch (error) {
      // Not recorded, so not stored: the file is taken back (store's finally) rather than left to the
      // orphan sweep, unless the commit went through after all and only its answer was lost.
      recorded.yes = await this.instances.hasStorageKey(storageKey).catch(() => true);
      throw error;
    }
    if (!row) {
      // Lost a race with a concurrent upload of the same instance: its file is the one kept.
      const winner = await this.instances.findBySop(ctx.siteId, meta.sopInstanceUid);
      if (!winner) throw new Error('instance vanished after a unique-key conflict');
      return this.resend(winner, received, meta, ctx);
    }
    recorded.yes = true;
    failpoint('after-db-commit');

    // Our own AI output is not an image to classify: a job would give it a result of its own and
    // make the study's results due again, which would store another SR, and so on.
    if (ctx.origin !== 'ai') await stage('enqueue', this.tryEnqueue(row.id, ctx.siteId, meta.sopInstanceUid, priority));
    return { status: 'stored', ...identify(meta, row.id) };
  }

  private async resend(existing: { id: number; sha256: string }, received: ReceivedObject, meta: InstanceMetadata, ctx: IngestContext): Promise<IngestOutcome> {
    if (existing.sha256 === received.sha256) return { status: 'duplicate', ...identify(meta, existing.id) };
    await this.audit.record({
      ...actorOf(ctx), site_id: ctx.siteId, action: 'instance.conflict', target_type: 'instance',
      target_id: String(existing.id), details: { origin: ctx.origin, keptSha256: existing.sha256, discardedSha256: received.sha256 },
    });
    this.log.warn({ instanceId: existing.id, site: ctx.siteId }, 'resent instance has different bytes; kept the original');
    return {
      status: 'conflict',
      warningReason: WarningReason.ElementsDiscarded,
      reason: 'an instance with this SOP Instance UID but different content is already stored; the stored original was kept and this copy discarded',
      ...identify(meta, existing.id),
    };
  }

  private async tryEnqueue(instanceId: number, siteId: string, sopInstanceUid: string, priority: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.jobs.add({ siteId, sopInstanceUid }, { instanceId, siteId }, { priority }),
        new Promise((_, reject) => { timer = setTimeout(() => reject(new Error('enqueue timed out')), ENQUEUE_TIMEOUT_MS); }),
      ]);
    } catch (error) {
      this.log.warn({ instanceId, err: error }, 'could not queue; the reconciler will retry');
    } finally {
      clearTimeout(timer);
    }
  }
}

/** An error from the file system (ENOSPC, EROFS, EIO…), not from the caller. */
function isSystemError(error: unknown): boolean {
  return typeof (error as NodeJS.ErrnoException)?.code === 'string' && typeof (error as NodeJS.ErrnoException).errno === 'number';
}

const ACTOR_TYPE = { dimse: 'dicom_ae', ai: 'device', stow: 'api_key', api: 'api_key' } as const;

/** Who the audit log names for a store: a DICOM peer by its AE title, our AI by its algorithm, anything else by its API key. */
function actorOf(ctx: IngestContext) {
  return { actor_type: ACTOR_TYPE[ctx.origin], actor_id: ctx.actorId };
}

function identify(meta: InstanceMetadata, instanceId: number): Identified {
  return {
    sopClassUid: meta.sopClassUid,
    sopInstanceUid: meta.sopInstanceUid,
    studyInstanceUid: meta.studyInstanceUid,
    seriesInstanceUid: meta.seriesInstanceUid,
    instanceId,
  };
}
