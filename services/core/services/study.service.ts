import { Readable } from 'node:stream';
import { DEFLATED, inflatedPart10 } from '../../dicom/index.js';
import { AppError } from '../errors.js';
import type { AuditRepository } from '../repositories/audit.repository.js';
import type { ReviewRepository } from '../repositories/review.repository.js';
import type { StorageRepository } from '../repositories/storage.repository.js';
import type { WorklistFilter, WorklistRepository, WorklistSort } from '../repositories/worklist.repository.js';

export type { WorklistAiState, WorklistFilter, WorklistRow, WorklistSort, WorklistSortKey } from '../repositories/worklist.repository.js';
export { WORKLIST_SORT_KEYS } from '../repositories/worklist.repository.js';

/** Who is reading: their id for the audit log and the sites they may see. */
export interface Reader {
  type: 'api_key' | 'user';
  id: string;
  siteIds: string[];
}

/**
 * What radiologists read: the worklist, a study with its images, AI results and decisions, an
 * image's original file and heat map. Everything is scoped to the reader's sites (another site's
 * study is "not found"); every study open and file read is audited.
 */
export class StudyService {
  constructor(
    private readonly worklist: WorklistRepository,
    private readonly reviews: ReviewRepository,
    private readonly audit: AuditRepository,
    private readonly storage: StorageRepository,
    /** Bound for inflating a Deflated original for the viewer (MAX_PART_MB, as at ingest). */
    private readonly maxInflatedBytes?: number,
  ) {}

  /** A worklist page in the clinical order, or by one allow-listed column with the clinical order as tiebreak. */
  page(reader: Reader, filter: WorklistFilter, limit: number, offset: number, sort?: WorklistSort) {
    return this.worklist.page(reader.siteIds, filter, limit, offset, sort);
  }

  bodyParts(reader: Reader) {
    return this.worklist.bodyParts(reader.siteIds);
  }

  private async study(reader: Reader, studyId: number) {
    const study = await this.worklist.getStudy(reader.siteIds, studyId);
    if (!study) throw new AppError('study_not_found');
    return study;
  }

  /** Opens a study: its images with AI results and its decision history; audited as study.open. */
  async open(reader: Reader, studyId: number) {
    const study = await this.study(reader, studyId);
    const [images, history] = await Promise.all([this.worklist.studyImages(studyId), this.reviews.history(studyId)]);
    await this.audit.record({
      actor_type: reader.type, actor_id: reader.id, site_id: study.site_id, action: 'study.open',
      target_type: 'study', target_id: String(studyId), details: { images: images.length, ai_flag: study.ai_flag },
    });
    return { study, images, history };
  }

  /** AI results only (no patient data) of a study, for an open viewer to refresh; not a study open. */
  async ai(reader: Reader, studyId: number) {
    const study = await this.study(reader, studyId);
    return { study, images: await this.worklist.studyImages(studyId) };
  }

  /** The stored original of an image, byte for byte; audited as instance.retrieve. */
  async originalFile(reader: Reader, instanceId: number): Promise<{ sizeBytes: number; stream: Readable }> {
    const row = await this.worklist.getInstance(reader.siteIds, instanceId);
    if (!row) throw new AppError('image_not_found');
    await this.audit.record({
      actor_type: reader.type, actor_id: reader.id, site_id: row.site_id, action: 'instance.retrieve',
      target_type: 'instance', target_id: String(row.id), details: { study_id: row.study_id },
    });
    if (row.transfer_syntax_uid === DEFLATED) {
      // The browser's loader would inflate it without a limit: it gets the same data set in
      // Explicit VR Little Endian, inflated here within the bounds ingest applied.
      const inflated = await inflatedPart10(await this.storage.readFile(row.storage_key), { maxInflatedBytes: this.maxInflatedBytes })
        .catch((error: Error) => { throw new AppError('image_not_found', `the stored image cannot be read: ${(error as { reason?: string }).reason ?? error.message}`); });
      return { sizeBytes: inflated.length, stream: Readable.from([Buffer.from(inflated.buffer, inflated.byteOffset, inflated.byteLength)]) };
    }
    return { sizeBytes: row.size_bytes, stream: this.storage.createReadStream(row.storage_key) };
  }

  /** The AI heat map of an image (PNG). */
  async heatmap(reader: Reader, instanceId: number): Promise<Buffer> {
    const row = await this.worklist.getInstance(reader.siteIds, instanceId);
    if (!row?.heatmap_key) throw new AppError('heatmap_not_found');
    return this.storage.readDerived(row.heatmap_key);
  }
}
