import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Core } from '../../core/core.js';
import { AppError } from '../../core/errors.js';
import { WORKLIST_SORT_KEYS, type WorklistAiState, type WorklistFilter, type WorklistRow, type WorklistSort, type WorklistSortKey } from '../../core/services/study.service.js';
import type { Authenticate, Principal } from '../plugins/auth.js';
import { reviewView } from './reviews.js';
import { BodyPartsSchema, StudyAiSchema, StudyDetailSchema, WorklistPageSchema, ErrorBodySchema } from '../../contract/index.js';

type UserPrincipal = Extract<Principal, { type: 'user' }>;
const user = (request: FastifyRequest) => request.principal as UserPrincipal;

const AI_STATES: WorklistAiState[] = ['pending', 'definite', 'doubt', 'unreadable', 'none', 'failed', 'not_applicable'];
/** `sort=<key>` (ascending) or `sort=-<key>` (descending); the clinical order breaks ties. */
const SORT_PATTERN = `^-?(${WORKLIST_SORT_KEYS.join('|')})$`;

export function parseSort(raw: string | undefined): WorklistSort | undefined {
  if (!raw) return undefined;
  const descending = raw.startsWith('-');
  return { key: (descending ? raw.slice(1) : raw) as WorklistSortKey, direction: descending ? 'desc' : 'asc' };
}
const DATE = '^\\d{8}$';

/** What the worklist shows for a study's AI: pending while results are outstanding, else the roll-up flag. */
export function aiStateOf(row: { ai_state: string; ai_flag: string | null }): WorklistAiState {
  if (row.ai_flag && AI_STATES.includes(row.ai_flag as WorklistAiState)) return row.ai_flag as WorklistAiState;
  return 'pending';
}

/** DICOM age (045Y) when the study has one, else computed from the birth and study dates. */
export function patientAge(row: { patient_age: string | null; patient_birth_date: string | null; study_date: string | null }): string | null {
  if (row.patient_age) {
    const m = /^(\d{3})([DWMY])$/.exec(row.patient_age.trim());
    return m ? `${Number(m[1])}${m[2]}` : row.patient_age.trim();
  }
  const birth = /^(\d{4})(\d{2})(\d{2})$/.exec(row.patient_birth_date ?? '');
  const at = /^(\d{4})(\d{2})(\d{2})$/.exec(row.study_date ?? '');
  if (!birth || !at) return null;
  let years = Number(at[1]) - Number(birth[1]);
  if (Number(at[2]) * 100 + Number(at[3]) < Number(birth[2]) * 100 + Number(birth[3])) years--;
  return years >= 0 && years < 150 ? `${years}Y` : null;
}

type StudyImageRow = Awaited<ReturnType<Core['services']['studies']['ai']>>['images'][number];

/** An image's AI result as the viewer shows it (decision support only). */
function imageAi(i: StudyImageRow) {
  return i.ai_status ? {
    status: i.ai_status,
    probability: i.ai_probability,
    flag: i.ai_flag,
    boxes: i.ai_boxes ? JSON.parse(i.ai_boxes) as unknown[] : [],
    heatmapUrl: i.ai_heatmap_key ? `/api/instances/${i.id}/heatmap` : null,
    model: { name: i.ai_model_name, version: i.ai_model_version },
    reason: i.ai_reason,
    unreadableReason: i.ai_status === 'unreadable' ? i.ai_reason : null,
  } : null;
}

export function worklistItem(row: WorklistRow) {
  return {
    id: row.id,
    siteId: row.site_id,
    studyUid: row.study_uid,
    patient: { name: row.patient_name, id: row.patient_id, age: patientAge(row), sex: row.patient_sex, birthDate: row.patient_birth_date },
    accession: row.accession_number,
    bodyPart: row.body_part,
    description: row.description,
    studyDate: row.study_date,
    studyTime: row.study_time,
    receivedAt: row.received_at,
    priority: row.priority,
    ai: { state: aiStateOf(row), complete: row.ai_state === 'complete', score: row.ai_score, unreadableReason: row.unreadable_reason },
    reviewState: row.review_state,
    images: row.images,
  };
}

/**
 * The radiologist's worklist and study pages: site-scoped, paginated on the server. Radiologists
 * and admins may read the worklist of their own sites.
 */
export function worklistRoutes(app: FastifyInstance, core: Core, authenticate: Authenticate) {
  const auth = authenticate({ session: true, roles: ['radiologist', 'admin'] });
  const studies = core.services.studies;
  const tags = ['Viewer'];

  app.get('/api/worklist', {
    onRequest: auth,
    schema: {
      tags, summary: 'Worklist page: unreviewed first; then clinical priority (STAT/ED first), AI flag, score, longest waiting; or by `sort`',
      querystring: {
        type: 'object', additionalProperties: false,
        properties: {
          flag: { type: 'string', description: `comma-separated: ${AI_STATES.join(', ')}`, maxLength: 100 },
          review: { type: 'string', enum: ['unreviewed', 'reviewed', 'all'] },
          dateFrom: { type: 'string', pattern: DATE }, dateTo: { type: 'string', pattern: DATE },
          bodyPart: { type: 'string', maxLength: 64 }, q: { type: 'string', maxLength: 64 },
          sort: { type: 'string', pattern: SORT_PATTERN, description: `column to sort by, "-" prefix for descending: ${WORKLIST_SORT_KEYS.join(', ')}; ties keep the clinical order` },
          limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 }, offset: { type: 'integer', minimum: 0, maximum: 1_000_000, default: 0 },
        },
      },
      response: { 200: WorklistPageSchema, '4xx': ErrorBodySchema },
    },
  }, async (request, reply) => {
    const q = request.query as Record<string, string | number | undefined>;
    const flags = typeof q.flag === 'string' && q.flag ? q.flag.split(',').map((f) => f.trim()) : undefined;
    if (flags?.some((f) => !AI_STATES.includes(f as WorklistAiState))) {
      throw new AppError('bad_request', `flag must be among ${AI_STATES.join(', ')}`);
    }
    const filter: WorklistFilter = {
      flags: flags as WorklistAiState[] | undefined,
      review: q.review === 'unreviewed' || q.review === 'reviewed' ? q.review : undefined,
      dateFrom: q.dateFrom as string | undefined, dateTo: q.dateTo as string | undefined,
      bodyPart: (q.bodyPart as string | undefined)?.trim() || undefined,
      q: (q.q as string | undefined)?.trim() || undefined,
    };
    const limit = Number(q.limit ?? 50);
    const offset = Number(q.offset ?? 0);
    const page = await studies.page(user(request), filter, limit, offset, parseSort(q.sort as string | undefined));
    reply.header('Cache-Control', 'no-store');
    return { total: page.total, offset, limit, items: page.rows.map(worklistItem) };
  });

  app.get('/api/worklist/body-parts', { onRequest: auth, schema: { tags, summary: 'Body parts present in the worklist (filter menu)', response: { 200: BodyPartsSchema, '4xx': ErrorBodySchema } } },
    async (request) => ({ bodyParts: await studies.bodyParts(user(request)) }));

  app.get('/api/studies/:id', {
    onRequest: auth,
    schema: { tags, summary: 'Open a study: images, AI results, decision history (audited as study.open)', params: { type: 'object', properties: { id: { type: 'integer', minimum: 1 } } }, response: { 200: StudyDetailSchema, '4xx': ErrorBodySchema } },
  }, async (request, reply) => {
    const { study, images, history } = await studies.open(user(request), Number((request.params as { id: number }).id));
    const modelOf = images.find((i) => i.ai_model_version);
    reply.header('Cache-Control', 'no-store');
    return {
      study: worklistItem({
        ...study, body_part: images.find((i) => i.body_part)?.body_part ?? null, images: images.length,
        unreadable_reason: images.find((i) => i.ai_status === 'unreadable')?.ai_reason ?? null,
      }),
      model: modelOf ? { name: modelOf.ai_model_name, version: modelOf.ai_model_version } : null,
      images: images.map((i) => ({
        id: i.id,
        sopInstanceUid: i.sop_instance_uid,
        seriesUid: i.series_uid,
        seriesNumber: i.series_number,
        seriesDescription: i.series_description,
        instanceNumber: i.instance_number,
        modality: i.modality,
        bodyPart: i.body_part,
        laterality: i.laterality,
        viewPosition: i.view_position,
        rows: i.rows,
        columns: i.columns,
        photometric: i.photometric_interpretation,
        transferSyntax: i.transfer_syntax_uid,
        frames: i.number_of_frames,
        url: `/api/instances/${i.id}/file`,
        ai: imageAi(i),
      })),
      reviews: history.map(reviewView),
    };
  });

  /** AI results only (no patient data), for an open viewer to refresh when results arrive; not a study open. */
  app.get('/api/studies/:id/ai', {
    onRequest: auth,
    schema: { tags, summary: 'AI results of an open study (refresh; decision support only)', params: { type: 'object', properties: { id: { type: 'integer', minimum: 1 } } }, response: { 200: StudyAiSchema, '4xx': ErrorBodySchema } },
  }, async (request, reply) => {
    const id = Number((request.params as { id: number }).id);
    const { study, images } = await studies.ai(user(request), id);
    const modelOf = images.find((i) => i.ai_model_version);
    reply.header('Cache-Control', 'no-store');
    return {
      study: {
        id, reviewState: study.review_state,
        ai: { state: aiStateOf(study), complete: study.ai_state === 'complete', score: study.ai_score, unreadableReason: images.find((i) => i.ai_status === 'unreadable')?.ai_reason ?? null },
      },
      model: modelOf ? { name: modelOf.ai_model_name, version: modelOf.ai_model_version } : null,
      images: images.map((i) => ({ id: i.id, ai: imageAi(i) })),
    };
  });

  const instanceParams = { type: 'object', properties: { id: { type: 'integer', minimum: 1 } } };

  /** The stored original, byte for byte, for the viewer's wadouri: image ids. */
  app.get('/api/instances/:id/file', {
    onRequest: auth, schema: { tags, summary: 'The original DICOM file of an image (WADO-URI style, application/dicom)', params: instanceParams },
  }, async (request, reply) => {
    const file = await studies.originalFile(user(request), Number((request.params as { id: number }).id));
    reply.header('Cache-Control', 'private, no-store');
    reply.header('Content-Length', String(file.sizeBytes));
    return reply.type('application/dicom').send(file.stream);
  });

  /** The AI heat map (8-bit greyscale PNG over the whole image); the viewer colours and stretches it. */
  app.get('/api/instances/:id/heatmap', {
    onRequest: auth, schema: { tags, summary: 'AI heat map of an image (greyscale PNG; decision support only)', params: instanceParams },
  }, async (request, reply) => {
    const png = await studies.heatmap(user(request), Number((request.params as { id: number }).id));
    reply.header('Cache-Control', 'private, max-age=300');
    return reply.type('image/png').send(png);
  });
}
