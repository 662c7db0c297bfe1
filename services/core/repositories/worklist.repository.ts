import { sql, type Expression, type OrderByDirection, type RawBuilder, type SqlBool } from 'kysely';
import type { Db } from '../db/database.js';
import type { Study } from '../db/schema.js';
import { ORIGINAL_IMAGE } from './instance.repository.js';

/** What the worklist shows for the AI: the study roll-up, with "pending" while results are outstanding. */
export type WorklistAiState = 'pending' | 'definite' | 'doubt' | 'unreadable' | 'none' | 'failed' | 'not_applicable';

/** Columns a radiologist may sort the worklist by (allow-listed: nothing else reaches the SQL). */
export const WORKLIST_SORT_KEYS = ['priority', 'ai', 'score', 'waiting', 'studyDate', 'patient', 'accession'] as const;
export type WorklistSortKey = (typeof WORKLIST_SORT_KEYS)[number];
export interface WorklistSort { key: WorklistSortKey; direction: 'asc' | 'desc' }

export interface WorklistFilter {
  /** AI states to include (any of). */
  flags?: WorklistAiState[];
  review?: 'unreviewed' | 'reviewed';
  /** DICOM dates, YYYYMMDD, inclusive. */
  dateFrom?: string;
  dateTo?: string;
  /** Body part examined (case-insensitive, any series of the study). */
  bodyPart?: string;
  /** Patient name, patient ID or accession number (case-insensitive, substring for names, prefix for IDs). */
  q?: string;
}

/** A study as the worklist shows it: the study row plus its body part, image count and why an image was unreadable. */
export type WorklistRow = Study & { body_part: string | null; images: number; unreadable_reason: string | null };

/**
 * Rank of a study's AI state (after clinical priority): the AI's most suspicious first; then what
 * needs a look because the AI could not say (an unreadable or failed image, or results still
 * pending: they may yet be flagged); then "nothing found"; last "not applicable" (not a limb X-ray).
 */
const flagRank = sql<number>`case
  when studies.ai_flag = 'definite' then 0
  when studies.ai_flag = 'doubt' then 1
  when studies.ai_flag = 'unreadable' then 2
  when studies.ai_flag = 'failed' then 2
  when studies.ai_flag = 'none' then 3
  when studies.ai_flag = 'not_applicable' then 4
  else 2 end`;

/** Why the study's first unreadable image is unreadable (the worklist says why the study needs a look). */
const unreadableReason = sql<string | null>`(select ai_results.reason from ai_results where ai_results.study_id = studies.id and ai_results.status = 'unreadable' order by ai_results.instance_id limit 1)`;

const reviewRank = sql<number>`case when studies.review_state = 'unreviewed' then 0 else 1 end`;

type OrderTerm = [RawBuilder<unknown> | 'studies.priority' | 'studies.received_at' | 'studies.id' | 'studies.study_date' | 'studies.study_time' | 'studies.accession_number', OrderByDirection];

/** Nulls last in either direction, the same on SQLite and PostgreSQL. */
const nullsLast = (column: string): RawBuilder<unknown> => sql`case when ${sql.ref(column)} is null then 1 else 0 end`;

/**
 * The clinical order: clinical priority first (STAT/ED above routine, always: the AI never lowers
 * it), then the AI flag, then the calibrated score (highest first), then the longest waiting.
 * Unreviewed studies come before reviewed ones (a decided study is no longer work to do).
 */
const CLINICAL_ORDER: OrderTerm[] = [
  [reviewRank, 'asc'],
  ['studies.priority', 'asc'],
  [flagRank, 'asc'],
  [nullsLast('studies.ai_score'), 'asc'],
  [sql`studies.ai_score`, 'desc'],
  ['studies.received_at', 'asc'],
];

/** What each sortable column orders by; "asc" means the column's natural reading order (most urgent, most suspicious, oldest, A→Z). */
const SORT_TERMS: Record<WorklistSortKey, (dir: OrderByDirection) => OrderTerm[]> = {
  priority: (d) => [['studies.priority', d]],
  ai: (d) => [[flagRank, d]],
  score: (d) => [[nullsLast('studies.ai_score'), 'asc'], [sql`studies.ai_score`, d]],
  waiting: (d) => [['studies.received_at', d]],
  studyDate: (d) => [[nullsLast('studies.study_date'), 'asc'], ['studies.study_date', d], ['studies.study_time', d]],
  patient: (d) => [[nullsLast('studies.patient_name'), 'asc'], [sql`lower(studies.patient_name)`, d]],
  accession: (d) => [[nullsLast('studies.accession_number'), 'asc'], ['studies.accession_number', d]],
};

/** The ORDER BY of a page: the chosen column (if any), then the clinical order, then the id (a stable, total order for paging). */
export function worklistOrder(sort?: WorklistSort): OrderTerm[] {
  const chosen = sort ? SORT_TERMS[sort.key](sort.direction) : [];
  return [...chosen, ...CLINICAL_ORDER, ['studies.id', 'asc']];
}

/** The worklist: one site-scoped, server-side paginated query, the same on SQLite and PostgreSQL. */
export class WorklistRepository {
  constructor(private readonly db: Db) {}

  private filtered(siteIds: string[], filter: WorklistFilter) {
    let query = this.db.selectFrom('studies').where('studies.site_id', 'in', siteIds);
    if (filter.review) query = query.where('studies.review_state', '=', filter.review);
    if (filter.flags?.length) {
      const flags = filter.flags;
      query = query.where((eb) => {
        const parts: Expression<SqlBool>[] = [];
        const finals = flags.filter((f) => f !== 'pending');
        if (finals.length) parts.push(eb('studies.ai_flag', 'in', finals));
        if (flags.includes('pending')) parts.push(eb.and([eb('studies.ai_state', '=', 'pending'), eb('studies.ai_flag', 'is', null)]));
        return eb.or(parts);
      });
    }
    if (filter.dateFrom) query = query.where('studies.study_date', '>=', filter.dateFrom);
    if (filter.dateTo) query = query.where('studies.study_date', '<=', filter.dateTo);
    if (filter.bodyPart) {
      const part = filter.bodyPart.toUpperCase();
      query = query.where((eb) => eb.exists(eb.selectFrom('series').select(sql.lit(1).as('one'))
        .whereRef('series.study_id', '=', 'studies.id').where(sql<string>`upper(series.body_part)`, '=', part)));
    }
    if (filter.q) {
      const q = filter.q.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`);
      query = query.where((eb) => eb.or([
        eb(sql<string>`lower(studies.patient_name)`, 'like', sql<string>`${`%${q}%`} escape '\\'`),
        eb(sql<string>`lower(studies.patient_id)`, 'like', sql<string>`${`${q}%`} escape '\\'`),
        eb(sql<string>`lower(studies.accession_number)`, 'like', sql<string>`${`${q}%`} escape '\\'`),
      ]));
    }
    return query;
  }

  /** One page, in the clinical order (see CLINICAL_ORDER) or by a chosen column with the clinical order as tiebreak. */
  async page(siteIds: string[], filter: WorklistFilter, limit: number, offset: number, sort?: WorklistSort): Promise<{ total: number; rows: WorklistRow[] }> {
    if (!siteIds.length) return { total: 0, rows: [] };
    const base = this.filtered(siteIds, filter);
    const [count, rows] = await Promise.all([
      base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
      base.selectAll('studies')
        .select([
          sql<string | null>`(select min(series.body_part) from series where series.study_id = studies.id)`.as('body_part'),
          sql<number>`(select count(*) from instances where instances.study_id = studies.id and ${ORIGINAL_IMAGE})`.as('images'),
          unreadableReason.as('unreadable_reason'),
        ])
        .$call((q) => worklistOrder(sort).reduce((acc, [term, dir]) => acc.orderBy(term, dir), q))
        .limit(limit).offset(offset)
        .execute(),
    ]);
    return {
      total: Number(count.n),
      rows: rows.map((r) => ({ ...r, images: Number(r.images) }) as WorklistRow),
    };
  }

  /** Distinct body parts of the caller's studies, for the filter menu. */
  async bodyParts(siteIds: string[]): Promise<string[]> {
    if (!siteIds.length) return [];
    const rows = await this.db.selectFrom('series').innerJoin('studies', 'studies.id', 'series.study_id')
      .select(sql<string>`upper(series.body_part)`.as('part')).distinct()
      .where('studies.site_id', 'in', siteIds).where('series.body_part', 'is not', null)
      .orderBy('part').limit(200).execute();
    return rows.map((r) => r.part);
  }

  getStudy(siteIds: string[], studyId: number) {
    if (!siteIds.length) return Promise.resolve(undefined);
    return this.db.selectFrom('studies').selectAll().where('site_id', 'in', siteIds).where('id', '=', studyId).executeTakeFirst();
  }

  /** The study's images (originals: not our own SR / Secondary Captures) with their series and AI result (if any), in display order. */
  studyImages(studyId: number) {
    return this.db.selectFrom('instances')
      .innerJoin('series', 'series.id', 'instances.series_id')
      .leftJoin('ai_results', 'ai_results.instance_id', 'instances.id')
      .select([
        'instances.id as id', 'instances.sop_instance_uid as sop_instance_uid', 'instances.instance_number as instance_number',
        'instances.rows as rows', 'instances.columns as columns', 'instances.photometric_interpretation as photometric_interpretation',
        'instances.transfer_syntax_uid as transfer_syntax_uid', 'instances.laterality as laterality', 'instances.view_position as view_position',
        'instances.number_of_frames as number_of_frames', 'instances.status as status',
        'series.id as series_id', 'series.series_uid as series_uid', 'series.series_number as series_number', 'series.modality as modality',
        'series.body_part as body_part', 'series.description as series_description',
        'ai_results.status as ai_status', 'ai_results.probability as ai_probability', 'ai_results.flag as ai_flag', 'ai_results.boxes as ai_boxes',
        'ai_results.heatmap_key as ai_heatmap_key', 'ai_results.model_name as ai_model_name', 'ai_results.model_version as ai_model_version',
        'ai_results.reason as ai_reason',
      ])
      .where('instances.study_id', '=', studyId).where(ORIGINAL_IMAGE)
      .orderBy('series.series_number').orderBy('series.id').orderBy('instances.instance_number').orderBy('instances.id')
      .execute();
  }

  /** An original image the caller may see (site scope), with what the file and heat-map routes need. */
  getInstance(siteIds: string[], instanceId: number) {
    if (!siteIds.length) return Promise.resolve(undefined);
    return this.db.selectFrom('instances').leftJoin('ai_results', 'ai_results.instance_id', 'instances.id')
      .select(['instances.id as id', 'instances.site_id as site_id', 'instances.study_id as study_id', 'instances.storage_key as storage_key',
        'instances.size_bytes as size_bytes', 'instances.transfer_syntax_uid as transfer_syntax_uid', 'ai_results.heatmap_key as heatmap_key'])
      .where('instances.site_id', 'in', siteIds).where('instances.id', '=', instanceId).where(ORIGINAL_IMAGE).executeTakeFirst();
  }
}
