import type { Insertable } from 'kysely';
import type { Db } from '../core/db/database.js';
import type { DeliveryStatus, ResultDelivery, ResultDestination, ResultDestinationsTable, ResultVersion, ResultVersionsTable } from '../core/db/schema.js';
import { ORIGINAL_IMAGE } from '../core/repositories/instance.repository.js';
import type { ReportBox, ReportImage, StudyReport } from './study-report.js';

export type NewDestination = Omit<Insertable<ResultDestinationsTable>, 'id' | 'created_at'>;

/** Destinations, output versions and deliveries of AI results (the only I/O of services/results). */
export class ResultsRepository {
  constructor(private readonly db: Db) {}

  async addDestination(destination: NewDestination): Promise<ResultDestination> {
    return this.db.insertInto('result_destinations').values({ ...destination, created_at: Date.now() }).returningAll().executeTakeFirstOrThrow();
  }

  listDestinations(siteId?: string): Promise<ResultDestination[]> {
    let query = this.db.selectFrom('result_destinations').selectAll().orderBy('site_id').orderBy('name');
    if (siteId) query = query.where('site_id', '=', siteId);
    return query.execute();
  }

  destination(id: number): Promise<ResultDestination | undefined> {
    return this.db.selectFrom('result_destinations').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** Removes a destination; deliveries still queued for it are dropped when their job runs. */
  async removeDestination(siteId: string, name: string): Promise<boolean> {
    const result = await this.db.deleteFrom('result_destinations').where('site_id', '=', siteId).where('name', '=', name).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  /** Everything a study report is made of, or undefined when the study is unknown. */
  async studyReport(studyId: number, algorithm: StudyReport['algorithm'] | undefined): Promise<StudyReport | undefined> {
    const study = await this.db.selectFrom('studies').selectAll().where('id', '=', studyId).executeTakeFirst();
    if (!study) return undefined;
    const rows = await this.db.selectFrom('instances')
      .innerJoin('series', 'series.id', 'instances.series_id')
      .leftJoin('ai_results', 'ai_results.instance_id', 'instances.id')
      .select([
        'instances.sop_class_uid', 'instances.sop_instance_uid', 'series.series_uid', 'instances.rows', 'instances.columns', 'instances.storage_key',
        'ai_results.status', 'ai_results.flag', 'ai_results.probability', 'ai_results.reason', 'ai_results.boxes', 'ai_results.heatmap_key',
        'ai_results.model_name', 'ai_results.model_version',
      ])
      .where('instances.study_id', '=', studyId).where(ORIGINAL_IMAGE).orderBy('series.series_number').orderBy('instances.instance_number').orderBy('instances.id').execute();
    const images: ReportImage[] = rows.map((r) => ({
      sopClassUid: r.sop_class_uid, sopInstanceUid: r.sop_instance_uid, seriesUid: r.series_uid, rows: r.rows, columns: r.columns,
      storageKey: r.storage_key, status: r.status ?? 'failed', flag: r.flag, probability: r.probability,
      reason: r.status ? r.reason : 'no AI result yet', boxes: r.boxes ? (JSON.parse(r.boxes) as ReportBox[]) : [], heatmapKey: r.heatmap_key,
    }));
    const model = rows.find((r) => r.model_name);
    return {
      siteId: study.site_id, studyId: study.id, studyUid: study.study_uid, accessionNumber: study.accession_number,
      algorithm: algorithm ?? { name: model?.model_name ?? 'unknown', version: model?.model_version ?? 'unknown' },
      images, studyFlag: study.ai_flag, studyScore: study.ai_score,
    };
  }

  /**
   * Whether every original image of the study has a result, and when its newest one arrived. Our
   * own SR / captures (origin `ai`) never count: they have no result, and storing them must not
   * make the study look new again (that would send another version after each one).
   */
  async studyReadiness(studyId: number): Promise<{ complete: boolean; lastReceivedAt: number } | undefined> {
    const row = await this.db.selectFrom('instances').leftJoin('ai_results', 'ai_results.instance_id', 'instances.id')
      .select((eb) => [eb.fn.countAll<number>().as('images'), eb.fn.count<number>('ai_results.id').as('results'), eb.fn.max('instances.received_at').as('last')])
      .where('instances.study_id', '=', studyId).where(ORIGINAL_IMAGE).executeTakeFirst();
    if (!row || Number(row.images) === 0) return undefined;
    return { complete: Number(row.images) === Number(row.results), lastReceivedAt: Number(row.last) };
  }

  /** A stored instance of the site by SOP Instance UID (ours are looked up before being built again). */
  instanceBySop(siteId: string, sopInstanceUid: string) {
    return this.db.selectFrom('instances').select(['id', 'origin']).where('site_id', '=', siteId).where('sop_instance_uid', '=', sopInstanceUid).executeTakeFirst();
  }

  /** Storage keys of a site's instances by id. */
  async instanceStorageKeys(siteId: string, ids: number[]): Promise<Map<number, string>> {
    if (!ids.length) return new Map();
    const rows = await this.db.selectFrom('instances').select(['id', 'storage_key']).where('site_id', '=', siteId).where('id', 'in', ids).execute();
    return new Map(rows.map((r) => [Number(r.id), r.storage_key]));
  }

  /** SOP Instance UIDs of every object we made for a study (all versions). */
  async ownObjectUids(studyId: number): Promise<Set<string>> {
    const rows = await this.db.selectFrom('result_versions').select('objects').where('study_id', '=', studyId).execute();
    return new Set(rows.flatMap((r) => (JSON.parse(r.objects) as { sopInstanceUid: string }[]).map((o) => o.sopInstanceUid)));
  }

  latestVersion(studyId: number): Promise<ResultVersion | undefined> {
    return this.db.selectFrom('result_versions').selectAll().where('study_id', '=', studyId).orderBy('version', 'desc').limit(1).executeTakeFirst();
  }

  version(id: number): Promise<ResultVersion | undefined> {
    return this.db.selectFrom('result_versions').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** Inserts a version; undefined when the same content was stored meanwhile (a concurrent run). */
  async insertVersion(version: Omit<Insertable<ResultVersionsTable>, 'id'>): Promise<ResultVersion | undefined> {
    return this.db.insertInto('result_versions').values(version)
      .onConflict((oc) => oc.columns(['study_id', 'content_hash']).doNothing()).returningAll().executeTakeFirst();
  }

  /** Creates the deliveries of a version to the site's destinations; returns those that are new. */
  async createDeliveries(version: ResultVersion): Promise<ResultDelivery[]> {
    const destinations = await this.listDestinations(version.site_id);
    const created: ResultDelivery[] = [];
    for (const destination of destinations) {
      const now = Date.now();
      const row = await this.db.insertInto('result_deliveries')
        .values({ site_id: version.site_id, version_id: version.id, destination_id: destination.id, status: 'queued', queued_at: now, updated_at: now })
        .onConflict((oc) => oc.columns(['version_id', 'destination_id']).doNothing()).returningAll().executeTakeFirst();
      if (row) created.push(row);
    }
    return created;
  }

  delivery(id: number): Promise<ResultDelivery | undefined> {
    return this.db.selectFrom('result_deliveries').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async markDelivery(id: number, change: { status: DeliveryStatus; attempts?: number; lastError?: string | null; sentAt?: number; latencyMs?: number }): Promise<void> {
    await this.db.updateTable('result_deliveries').set({
      status: change.status, updated_at: Date.now(),
      ...(change.attempts !== undefined ? { attempts: change.attempts } : {}),
      ...(change.lastError !== undefined ? { last_error: change.lastError } : {}),
      ...(change.sentAt !== undefined ? { sent_at: change.sentAt } : {}),
      ...(change.latencyMs !== undefined ? { latency_ms: change.latencyMs } : {}),
    }).where('id', '=', id).execute();
  }

  /** A manual retry: back to queued, with a new generation (so its job id is new). */
  async requeueDelivery(id: number): Promise<ResultDelivery | undefined> {
    await this.db.updateTable('result_deliveries').set((eb) => ({ status: 'queued', generation: eb('generation', '+', 1), updated_at: Date.now() }))
      .where('id', '=', id).where('status', 'in', ['failed', 'retrying']).execute();
    return this.delivery(id);
  }

  /** Deliveries for the admin page: newest first, with destination and study identity (no patient data). */
  listDeliveries(filter: { status?: DeliveryStatus; siteId?: string; limit: number }) {
    let query = this.db.selectFrom('result_deliveries')
      .innerJoin('result_versions', 'result_versions.id', 'result_deliveries.version_id')
      .innerJoin('studies', 'studies.id', 'result_versions.study_id')
      .leftJoin('result_destinations', 'result_destinations.id', 'result_deliveries.destination_id')
      .select([
        'result_deliveries.id', 'result_deliveries.site_id', 'result_deliveries.status', 'result_deliveries.attempts', 'result_deliveries.last_error',
        'result_deliveries.queued_at', 'result_deliveries.sent_at', 'result_deliveries.latency_ms', 'result_deliveries.updated_at',
        'result_versions.version', 'result_versions.study_id', 'studies.study_uid', 'result_destinations.name as destination', 'result_destinations.kind',
      ])
      .orderBy('result_deliveries.updated_at', 'desc').limit(filter.limit);
    if (filter.status) query = query.where('result_deliveries.status', '=', filter.status);
    if (filter.siteId) query = query.where('result_deliveries.site_id', '=', filter.siteId);
    return query.execute();
  }

  deliveriesOfVersion(versionId: number) {
    return this.db.selectFrom('result_deliveries').leftJoin('result_destinations', 'result_destinations.id', 'result_deliveries.destination_id')
      .select(['result_destinations.name as destination', 'result_destinations.kind', 'result_deliveries.status', 'result_deliveries.attempts', 'result_deliveries.sent_at', 'result_deliveries.last_error'])
      .where('result_deliveries.version_id', '=', versionId).orderBy('result_deliveries.id').execute();
  }

  /** Counts and mean latency per status, for the admin page. */
  async deliveryStats(): Promise<{ status: string; count: number; meanLatencyMs: number | null }[]> {
    const rows = await this.db.selectFrom('result_deliveries')
      .select((eb) => ['status', eb.fn.countAll<number>().as('count'), eb.fn.avg<number>('latency_ms').as('mean')])
      .groupBy('status').execute();
    return rows.map((r) => ({ status: r.status, count: Number(r.count), meanLatencyMs: r.mean === null ? null : Math.round(Number(r.mean)) }));
  }

  /** Studies of a site by Study Instance UID or accession number, with their latest output version. */
  async studiesFor(siteId: string, by: { studyUid?: string; accession?: string }) {
    let query = this.db.selectFrom('studies').select(['id', 'study_uid', 'accession_number', 'ai_state', 'ai_flag', 'ai_score', 'review_state'])
      .where('site_id', '=', siteId).orderBy('id').limit(100);
    if (by.studyUid) query = query.where('study_uid', '=', by.studyUid);
    if (by.accession) query = query.where('accession_number', '=', by.accession);
    return query.execute();
  }
}
