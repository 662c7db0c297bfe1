import { sql, type CompiledQuery, type SqlBool } from 'kysely';
import { type Db, type Step } from '../db/database.js';
import { GroupCommit } from '../db/group-commit.js';
import { QueryTemplate } from '../db/query-template.js';
import type { IngestOrigin, Instance, InstanceStatus, NewInstance, Series, Study } from '../db/schema.js';
import type { InstanceMetadata } from '../../dicom/index.js';

export interface StoredObject {
  sha256: string;
  sizeBytes: number;
  storageKey: string;
}

/**
 * An image as received from the hospital, not an object our AI made (origin `ai`: its SR and
 * Secondary Captures, stored so DICOMweb serves them). Only originals are classified, counted,
 * rolled up into the study's AI flag, shown in the viewer, decided on, or make a study's results
 * due: an `ai` object counted as an image would leave the study waiting for its own result, or
 * make a new version of the results each time one is stored. Rows from before origins were
 * recorded (null) are originals. For queries on the `instances` table under its own name.
 */
export const ORIGINAL_IMAGE = sql<SqlBool>`(instances.origin is null or instances.origin <> 'ai')`;

/** How an instance arrived and who sent it (recorded on its row). */
export interface InstanceSource {
  origin: IngestOrigin;
  actorId: string;
}

/** Studies, series and instances: the record of what was received and what is pending. */
export class InstanceRepository {
  /** Inserts from concurrent uploads share one commit (see GroupCommit). */
  private readonly group: GroupCommit;

  /** `readDb`: committed data only, read without waiting for the writer (DatabaseHandle.readDb). */
  constructor(private readonly db: Db, private readonly readDb: Db = db) {
    this.group = new GroupCommit(db);
    this.record = recordStatements(db);
    this.bySop = new QueryTemplate((v: { siteId: string; sopInstanceUid: string }) => readDb.selectFrom('instances').selectAll()
      .where('site_id', '=', v.siteId).where('sop_instance_uid', '=', v.sopInstanceUid).compile());
  }

  /** The lookup every upload makes, compiled once (see QueryTemplate). */
  private readonly bySop: QueryTemplate<{ siteId: string; sopInstanceUid: string }>;

  /** The statements that record an upload, compiled once (see QueryTemplate). */
  private readonly record: ReturnType<typeof recordStatements>;

  /** The instance as committed (read on `readDb`: a concurrent upload's uncommitted row is not seen; its insert then finds the conflict). */
  async findBySop(siteId: string, sopInstanceUid: string): Promise<Instance | undefined> {
    const { rows } = await this.readDb.executeQuery<Instance>(this.bySop.fill({ siteId, sopInstanceUid }));
    return rows[0];
  }

  get(id: number): Promise<Instance | undefined> {
    return this.db.selectFrom('instances').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /**
   * Records a new instance (and its study and series, if new) in one transaction.
   * Returns undefined when another request stored the same SOP Instance UID first.
   * An object our AI made (origin `ai`) is recorded as done (there is nothing to classify) and
   * leaves the study as it was: its priority, and its AI state that the object reports on.
   */
  async insert(
    siteId: string, meta: InstanceMetadata, object: StoredObject, priority: number, source: InstanceSource,
    /**
     * A write that must commit with the new row (its audit entry, which finds the row by its
     * unique key); run in the same list as the insert, only when the row is new.
     */
    withRow?: CompiledQuery,
  ): Promise<Instance | undefined> {
    const now = Date.now();
    const own = source.origin === 'ai';
    const studyKey = { siteId, studyUid: meta.studyInstanceUid };
    const key = { ...studyKey, seriesUid: meta.seriesInstanceUid };
    // Grouped with concurrent uploads' inserts: one commit for all, each answered after it.
    // The study and series ids are looked up by their unique keys inside the statements that need
    // them, so the whole record goes to the database as one list (runScript: with the other uploads'
    // lists, one message to the SQLite thread, begun and committed there). Statement texts are
    // compiled once (record).
    const steps: Step[] = [
      { query: this.record.study.fill({
        ...studyKey, patientName: meta.patientName, patientId: meta.patientId, patientBirthDate: meta.patientBirthDate, patientSex: meta.patientSex,
        patientAge: meta.patientAge, accessionNumber: meta.accessionNumber, studyDate: meta.studyDate, studyTime: meta.studyTime,
        description: meta.studyDescription, priority, now,
      }) },
      { query: this.record.studyRow.fill(studyKey) },
      // Never file one patient's image under another's study: nothing below is written unless the
      // study (new or not) is this patient's. The check is a statement, not JavaScript, because the
      // list is committed in the same message.
      { query: this.record.studyOfPatient.fill({ ...studyKey, patientId: meta.patientId ?? '' }) },
      { when: 2, query: this.record.series.fill({ ...key, seriesNumber: meta.seriesNumber, modality: meta.modality, bodyPart: meta.bodyPart, description: meta.seriesDescription }) },
      { when: 2, query: this.record.instance.fill({
        ...key, sopInstanceUid: meta.sopInstanceUid, sopClassUid: meta.sopClassUid, instanceNumber: meta.instanceNumber,
        transferSyntaxUid: meta.transferSyntaxUid, rows: meta.rows, columns: meta.columns, bitsAllocated: meta.bitsAllocated,
        bitsStored: meta.bitsStored, highBit: meta.highBit, pixelRepresentation: meta.pixelRepresentation, samplesPerPixel: meta.samplesPerPixel,
        photometricInterpretation: meta.photometricInterpretation, numberOfFrames: meta.numberOfFrames, laterality: meta.laterality,
        viewPosition: meta.viewPosition, sha256: object.sha256, sizeBytes: object.sizeBytes, storageKey: object.storageKey,
        // Recorded as handed to the queue: the caller adds the job (deterministic id) right after this
        // commit, and the reconciler re-adds the job of any unfinished row Redis lacks, so a separate
        // "queued" commit after the add would only cost a second WAL fsync per image.
        status: own ? 'done' : 'queued', priority, now, queuedAt: own ? null : now, origin: source.origin, actorId: source.actorId,
      }) },
    ];
    if (!own) {
      // Only when the row is new (step 4 returned it): a study only ever becomes more urgent (a
      // later STAT image raises it, a routine one never lowers it), and a new image means the
      // study's AI read is not complete any more.
      steps.push({ when: 4, query: this.record.raisePriority.fill({ siteId, studyUid: meta.studyInstanceUid, priority, now }) });
    }
    if (withRow) steps.push({ when: 4, query: withRow });
    return this.group.runScript({
      steps,
      result: ([, studyRows, ofPatient, , insertedRows]) => {
        if (!studyRows!.rows[0]) throw new Error('study row missing after its insert');
        if (!ofPatient!.rows[0]) throw new StudyPatientConflictError(meta.sopClassUid, meta.sopInstanceUid);
        return insertedRows!.rows[0] as Instance | undefined;
      },
    });
  }

  async markProcessing(id: number): Promise<void> {
    await this.db.updateTable('instances').set({ status: 'processing' }).where('id', '=', id).where('status', 'in', ['stored', 'queued']).execute();
  }

  /** What the worker needs to classify one instance. */
  forClassification(id: number) {
    return this.db.selectFrom('instances').innerJoin('series', 'series.id', 'instances.series_id')
      .select(['instances.id', 'instances.site_id', 'instances.study_id', 'instances.storage_key', 'instances.sop_class_uid', 'instances.origin',
        'instances.rows', 'instances.columns', 'instances.received_at', 'instances.queued_at', 'series.modality', 'series.body_part'])
      .where('instances.id', '=', id).executeTakeFirst();
  }

  async markQueued(ids: number[]): Promise<void> {
    if (!ids.length) return;
    await this.db.updateTable('instances').set({ status: 'queued', queued_at: Date.now() })
      .where('id', 'in', ids).where('status', '=', 'stored').execute();
  }

  /** Original images the record says are not finished; the reconciler checks each has a job (our own objects never get one). */
  listUnfinished(afterId: number, limit: number): Promise<Pick<Instance, 'id' | 'site_id' | 'sop_instance_uid' | 'status' | 'priority' | 'received_at'>[]> {
    return this.db.selectFrom('instances').select(['id', 'site_id', 'sop_instance_uid', 'status', 'priority', 'received_at'])
      .where('status', 'in', ['stored', 'queued', 'processing'] satisfies InstanceStatus[]).where(ORIGINAL_IMAGE)
      .where('id', '>', afterId).orderBy('id').limit(limit).execute();
  }

  async countByStatus(siteId?: string): Promise<Record<string, number>> {
    let query = this.db.selectFrom('instances').select(['status', (eb) => eb.fn.countAll<number>().as('n')]).groupBy('status');
    if (siteId) query = query.where('site_id', '=', siteId);
    const rows = await query.execute();
    return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
  }

  async hasStorageKey(storageKey: string): Promise<boolean> {
    const row = await this.db.selectFrom('instances').select('id').where('storage_key', '=', storageKey).executeTakeFirst();
    return row !== undefined;
  }

  // --- reads for DICOMweb (always scoped to one site) ---

  findStudies(siteIds: string[], filter: StudyFilter, limit: number, offset: number): Promise<Study[]> {
    if (!siteIds.length) return Promise.resolve([]);
    let query = this.db.selectFrom('studies').selectAll().where('site_id', 'in', siteIds);
    if (filter.studyUid) query = query.where('study_uid', '=', filter.studyUid);
    if (filter.studyUids?.length) query = query.where('study_uid', 'in', filter.studyUids);
    if (filter.patientId) query = /[*?]/.test(filter.patientId)
      ? query.where('patient_id', 'like', wildcard(filter.patientId))
      : query.where('patient_id', '=', filter.patientId);
    if (filter.modalities?.length) {
      const modalities = filter.modalities;
      query = query.where((eb) => eb.exists(eb.selectFrom('series').select('series.id')
        .whereRef('series.study_id', '=', 'studies.id').where('series.modality', 'in', modalities)));
    }
    if (filter.accessionNumber) query = query.where('accession_number', '=', filter.accessionNumber);
    if (filter.patientName) query = query.where('patient_name', 'like', wildcard(filter.patientName));
    if (filter.studyDateFrom) query = query.where('study_date', '>=', filter.studyDateFrom);
    if (filter.studyDateTo) query = query.where('study_date', '<=', filter.studyDateTo);
    return query.orderBy('received_at', 'desc').orderBy('id', 'desc').limit(limit).offset(offset).execute();
  }

  getStudy(siteIds: string | string[], studyUid: string): Promise<Study | undefined> {
    const sites = typeof siteIds === 'string' ? [siteIds] : siteIds;
    if (!sites.length) return Promise.resolve(undefined);
    return this.db.selectFrom('studies').selectAll().where('site_id', 'in', sites).where('study_uid', '=', studyUid)
      .orderBy('id').executeTakeFirst();
  }

  listSeries(studyId: number): Promise<Series[]> {
    return this.db.selectFrom('series').selectAll().where('study_id', '=', studyId).orderBy('series_number').orderBy('id').execute();
  }

  async studyCounts(studyIds: number[]): Promise<Map<number, { series: number; instances: number; modalities: string[] }>> {
    const result = new Map<number, { series: number; instances: number; modalities: string[] }>();
    if (!studyIds.length) return result;
    const rows = await this.db.selectFrom('instances').innerJoin('series', 'series.id', 'instances.series_id')
      .select(['instances.study_id as study_id', 'series.id as series_id', 'series.modality as modality'])
      .where('instances.study_id', 'in', studyIds).execute();
    for (const id of studyIds) result.set(id, { series: 0, instances: 0, modalities: [] });
    const seenSeries = new Set<number>();
    for (const row of rows) {
      const entry = result.get(row.study_id)!;
      entry.instances++;
      if (!seenSeries.has(row.series_id)) {
        seenSeries.add(row.series_id);
        entry.series++;
      }
      if (row.modality && !entry.modalities.includes(row.modality)) entry.modalities.push(row.modality);
    }
    return result;
  }

  /** Instances of a study the caller already found through its site scope (getStudy / findStudies). */
  listInstances(where: { studyId: number; seriesUid?: string; sopInstanceUid?: string }) {
    let query = this.db.selectFrom('instances').innerJoin('series', 'series.id', 'instances.series_id')
      .selectAll('instances').select(['series.series_uid as series_uid', 'series.modality as modality', 'series.body_part as body_part'])
      .where('instances.study_id', '=', where.studyId);
    if (where.seriesUid) query = query.where('series.series_uid', '=', where.seriesUid);
    if (where.sopInstanceUid) query = query.where('instances.sop_instance_uid', '=', where.sopInstanceUid);
    return query.orderBy('series.series_number').orderBy('instances.instance_number').orderBy('instances.id').execute();
  }
}

/** The study UID is already stored for another Patient ID at this site: the PACS rule is to refuse, never merge. */
export class StudyPatientConflictError extends Error {
  constructor(readonly sopClassUid: string, readonly sopInstanceUid: string) {
    super('this Study Instance UID is stored under another Patient ID');
    this.name = 'StudyPatientConflictError';
  }
}

/** A QIDO wildcard (`*`, `?`) as a LIKE pattern (SQLite has no default LIKE escape, so `%`/`_` are not escaped). */
function wildcard(value: string): string {
  return value.replace(/\*/g, '%').replace(/\?/g, '_');
}

export interface StudyFilter {
  studyUid?: string;
  /** Any of these Study Instance UIDs (a QIDO UID list). */
  studyUids?: string[];
  /** Studies with at least one series of one of these modalities (ModalitiesInStudy). */
  modalities?: string[];
  patientId?: string;
  patientName?: string;
  accessionNumber?: string;
  studyDateFrom?: string;
  studyDateTo?: string;
}

/** Identifies a study, and a series, by their unique keys; their ids are looked up inside the statements. */
interface StudyKey { siteId: string; studyUid: string }
interface RecordKey extends StudyKey { seriesUid: string }

/** The statements of InstanceRepository.insert, each built and compiled by Kysely once. */
function recordStatements(db: Db) {
  /** The study by its unique key: its id inside the inserts, and whether it is there and whose it is. */
  const study = (v: StudyKey) => db.selectFrom('studies').where('site_id', '=', v.siteId).where('study_uid', '=', v.studyUid);
  const studyId = (v: StudyKey) => study(v).select('id');
  const seriesId = (v: RecordKey) => db.selectFrom('series').select('id').where('study_id', '=', studyId(v)).where('series_uid', '=', v.seriesUid);
  return {
    study: new QueryTemplate((v: StudyKey & {
      patientName: string | null; patientId: string | null; patientBirthDate: string | null; patientSex: string | null; patientAge: string | null;
      accessionNumber: string | null; studyDate: string | null; studyTime: string | null; description: string | null; priority: number; now: number;
    }) => db.insertInto('studies').values({
      site_id: v.siteId,
      study_uid: v.studyUid,
      patient_name: v.patientName,
      patient_id: v.patientId,
      patient_birth_date: v.patientBirthDate,
      patient_sex: v.patientSex,
      patient_age: v.patientAge,
      accession_number: v.accessionNumber,
      study_date: v.studyDate,
      study_time: v.studyTime,
      description: v.description,
      priority: v.priority,
      received_at: v.now,
      updated_at: v.now,
    }).onConflict((oc) => oc.columns(['site_id', 'study_uid']).doNothing()).compile()),
    studyRow: new QueryTemplate((v: StudyKey) => study(v).select('id').compile()),
    /** The study, only if it is this patient's (no Patient ID matches only no Patient ID). */
    studyOfPatient: new QueryTemplate((v: StudyKey & { patientId: string }) => study(v).select('id')
      .where(sql`coalesce(patient_id, '')`, '=', v.patientId).compile()),
    series: new QueryTemplate((v: RecordKey & { seriesNumber: number | null; modality: string | null; bodyPart: string | null; description: string | null }) => db.insertInto('series').values({
      study_id: studyId(v),
      series_uid: v.seriesUid,
      series_number: v.seriesNumber,
      modality: v.modality,
      body_part: v.bodyPart,
      description: v.description,
    }).onConflict((oc) => oc.columns(['study_id', 'series_uid']).doNothing()).compile()),
    instance: new QueryTemplate((v: RecordKey & {
      sopInstanceUid: string; sopClassUid: string; instanceNumber: number | null; transferSyntaxUid: string; rows: number; columns: number;
      bitsAllocated: number; bitsStored: number; highBit: number; pixelRepresentation: number; samplesPerPixel: number;
      photometricInterpretation: string; numberOfFrames: number; laterality: string | null; viewPosition: string | null;
      sha256: string; sizeBytes: number; storageKey: string; status: InstanceStatus; priority: number; now: number; queuedAt: number | null;
      origin: IngestOrigin; actorId: string;
    }) => db.insertInto('instances').values({
      site_id: v.siteId,
      study_id: studyId(v),
      series_id: seriesId(v),
      sop_instance_uid: v.sopInstanceUid,
      sop_class_uid: v.sopClassUid,
      instance_number: v.instanceNumber,
      transfer_syntax_uid: v.transferSyntaxUid,
      rows: v.rows,
      columns: v.columns,
      bits_allocated: v.bitsAllocated,
      bits_stored: v.bitsStored,
      high_bit: v.highBit,
      pixel_representation: v.pixelRepresentation,
      samples_per_pixel: v.samplesPerPixel,
      photometric_interpretation: v.photometricInterpretation,
      number_of_frames: v.numberOfFrames,
      laterality: v.laterality,
      view_position: v.viewPosition,
      sha256: v.sha256,
      size_bytes: v.sizeBytes,
      storage_key: v.storageKey,
      status: v.status,
      priority: v.priority,
      received_at: v.now,
      queued_at: v.queuedAt,
      origin: v.origin,
      actor_id: v.actorId,
    }).onConflict((oc) => oc.columns(['site_id', 'sop_instance_uid']).doNothing()).returningAll().compile()),
    raisePriority: new QueryTemplate((v: { siteId: string; studyUid: string; priority: number; now: number }) => db.updateTable('studies')
      .set((eb) => ({ priority: eb.case().when('priority', '>', v.priority).then(v.priority).else(eb.ref('priority')).end(), ai_state: 'pending', updated_at: v.now }))
      .where('site_id', '=', v.siteId).where('study_uid', '=', v.studyUid).compile()),
  };
}
