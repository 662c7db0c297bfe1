import type { Readable } from 'node:stream';
import type { Study } from '../db/schema.js';
import { AppError } from '../errors.js';
import type { AuditRepository } from '../repositories/audit.repository.js';
import type { InstanceRepository, StudyFilter } from '../repositories/instance.repository.js';
import type { StorageRepository } from '../repositories/storage.repository.js';
import type { Reader } from './study.service.js';

export type { StudyFilter } from '../repositories/instance.repository.js';
type InstanceRow = Awaited<ReturnType<InstanceRepository['listInstances']>>[number];
/** A study as DICOMweb answers about it. */
export type StudyRecord = Study;

/**
 * QIDO-RS searches and WADO-RS retrieves for the reader's own sites. Another site's study is
 * indistinguishable from one that does not exist, so a key cannot probe for UIDs. Searches and
 * retrieves are audited.
 */
export class DicomwebService {
  constructor(
    private readonly store: InstanceRepository,
    private readonly audit: AuditRepository,
    private readonly storage: StorageRepository,
  ) {}

  async searchStudies(reader: Reader, filter: StudyFilter, limit: number, offset: number) {
    const studies = await this.store.findStudies(reader.siteIds, filter, limit, offset);
    const counts = await this.store.studyCounts(studies.map((s) => s.id));
    await this.audit.record({ actor_type: reader.type, actor_id: reader.id, site_id: reader.siteIds.length === 1 ? reader.siteIds[0] : null, action: 'study.search', details: { results: studies.length } });
    return { studies, counts };
  }

  async study(reader: Reader, studyUid: string): Promise<StudyRecord> {
    const study = await this.store.getStudy(reader.siteIds, studyUid);
    if (!study) throw new AppError('study_not_found');
    return study;
  }

  series(study: StudyRecord) {
    return this.store.listSeries(study.id);
  }

  instances(study: StudyRecord, where: { seriesUid?: string; sopInstanceUid?: string } = {}) {
    return this.store.listInstances({ studyId: study.id, ...where });
  }

  /**
   * The stored originals of a study, series or instance, with a reader for each; audited as
   * study.retrieve. `accept` may refuse an instance the client cannot take as stored (we never
   * transcode): its reason becomes a 406, before anything is read or audited.
   */
  async retrieve(reader: Reader, studyUid: string, where: { seriesUid?: string; sopInstanceUid?: string }, opts: { accept?: (row: InstanceRow) => string | undefined } = {}) {
    const study = await this.study(reader, studyUid);
    const rows = await this.instances(study, where);
    if (!rows.length) throw new AppError('image_not_found', 'no such series or instance');
    for (const row of rows) {
      const refusal = opts.accept?.(row);
      if (refusal) throw new AppError('not_acceptable', refusal);
    }
    await this.audit.record({
      actor_type: reader.type, actor_id: reader.id, site_id: study.site_id,
      action: 'study.retrieve', target_type: 'study', target_id: String(study.id), details: { instances: rows.length },
    });
    return {
      study, rows,
      open: (row: { storage_key: string }): Readable => this.storage.createReadStream(row.storage_key),
      read: (row: { storage_key: string }): Promise<Buffer> => this.storage.readFile(row.storage_key),
    };
  }
}
