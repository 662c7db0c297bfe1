import type { FastifyInstance } from 'fastify';
import type { Core } from '../../core/core.js';
import type { Review } from '../../core/db/schema.js';
import { DECISIONS, type DecisionInput } from '../../core/services/review.service.js';
import type { Authenticate, Principal } from '../plugins/auth.js';
import { DecisionResultSchema, ReviewListSchema, ErrorBodySchema } from '../../contract/index.js';

type UserPrincipal = Extract<Principal, { type: 'user' }>;

const EXPORT_COLUMNS = [
  'review_id', 'site_id', 'study_uid', 'series_uid', 'sop_instance_uid', 'body_part', 'view_position', 'laterality', 'rows', 'columns',
  'decision', 'comment', 'review_boxes', 'reviewer', 'decided_at', 'superseded_at',
  'ai_status', 'ai_probability', 'ai_flag', 'ai_boxes', 'model_name', 'model_version', 'study_ai_flag', 'study_ai_score',
] as const;

const parsed = (json: string | null) => (json ? JSON.parse(json) as unknown[] : []);

/** A decision as the study and history APIs return it. */
export function reviewView(r: Review & { username: string; display_name: string }) {
  return {
    id: r.id, decision: r.decision, comment: r.comment, boxes: parsed(r.boxes), measurements: parsed(r.measurements), shownInstanceIds: parsed(r.shown_instance_ids),
    user: { id: r.user_id, username: r.username, displayName: r.display_name }, at: r.created_at, supersededAt: r.superseded_at, undoneAt: r.undone_at,
  };
}

function csvCell(value: unknown): string {
  if (value === null || value === undefined) return '';
  let text = String(value);
  // A cell a spreadsheet would run as a formula is quoted with a leading apostrophe.
  if (/^[=+\-@\t\r]/.test(text) && typeof value === 'string') text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/**
 * Decisions. Radiologists decide (admins manage users and watch the system; a decision is a
 * radiologist's act). Admins export decisions with the AI results for retraining and monitoring.
 */
export function reviewRoutes(app: FastifyInstance, core: Core, authenticate: Authenticate) {
  const tags = ['Viewer'];
  const params = { type: 'object', properties: { id: { type: 'integer', minimum: 1 } } };

  app.post('/api/studies/:id/review', {
    onRequest: authenticate({ session: true, roles: ['radiologist'] }),
    schema: {
      tags, summary: 'Record a decision on a study, naming the images that were on screen (supersedes the previous one; history kept; audited)', params,
      body: {
        type: 'object', required: ['decision'], additionalProperties: false,
        properties: {
          decision: { type: 'string', enum: DECISIONS },
          comment: { type: ['string', 'null'], maxLength: 2000 },
          boxes: { type: ['array', 'null'], maxItems: 20, items: { type: 'object' } },
          // Checked in the service (at least one, all of this study) so the refusal says why.
          shownInstanceIds: { type: 'array', maxItems: 1000, description: 'ids of the images rendered on screen when deciding' },
          measurements: { type: ['array', 'null'], maxItems: 50, items: { type: 'object' }, description: "[{ kind: 'length' | 'angle', points: [{x, y}], value, unit: 'mm' | 'px' | 'deg', instanceId }]" },
        },
      },
      response: { 201: DecisionResultSchema, '4xx': ErrorBodySchema },
    },
  }, async (request, reply) => {
    const p = request.principal as UserPrincipal;
    const review = await core.services.reviews.decide(p, Number((request.params as { id: number }).id), request.body as DecisionInput);
    return reply.code(201).send({
      review: {
        id: review.id, studyId: review.study_id, decision: review.decision, comment: review.comment, at: review.created_at,
        shownInstanceIds: parsed(review.shown_instance_ids), measurements: parsed(review.measurements),
      },
    });
  });

  app.delete('/api/studies/:id/review', {
    onRequest: authenticate({ session: true, roles: ['radiologist'] }),
    schema: { tags, summary: "Undo the study's current decision (kept in the history as undone; the study is unreviewed again; audited)", params },
  }, async (request) => {
    const p = request.principal as UserPrincipal;
    const undone = await core.services.reviews.undo(p, Number((request.params as { id: number }).id));
    return { undone: { id: undone.id, studyId: undone.study_id, decision: undone.decision, undoneAt: undone.undone_at }, reviewState: 'unreviewed' };
  });

  app.get('/api/studies/:id/reviews', {
    onRequest: authenticate({ session: true, roles: ['radiologist', 'admin'] }), schema: { tags, summary: 'Decision history of a study, newest first', params, response: { 200: ReviewListSchema, '4xx': ErrorBodySchema } },
  }, async (request) => {
    const p = request.principal as UserPrincipal;
    const rows = await core.services.reviews.historyFor(p.siteIds, Number((request.params as { id: number }).id));
    return { reviews: rows.map(reviewView) };
  });

  app.get('/api/reviews/export', {
    onRequest: authenticate({ session: true, roles: ['admin'] }),
    schema: {
      tags, summary: 'Export decisions with the AI result of each image (CSV or JSON; no patient names or IDs)',
      querystring: {
        type: 'object', additionalProperties: false,
        properties: {
          format: { type: 'string', enum: ['csv', 'json'], default: 'csv' },
          history: { type: 'boolean', default: false, description: 'include superseded decisions' },
          from: { type: 'integer', minimum: 0, description: 'epoch ms' }, to: { type: 'integer', minimum: 0, description: 'epoch ms' },
        },
      },
    },
  }, async (request, reply) => {
    const p = request.principal as UserPrincipal;
    const q = request.query as { format: 'csv' | 'json'; history: boolean; from?: number; to?: number };
    const rows = await core.services.reviews.export(p, { format: q.format, includeSuperseded: q.history, from: q.from, to: q.to });
    const stamp = new Date().toISOString().slice(0, 10);
    reply.header('Cache-Control', 'no-store');
    if (q.format === 'json') {
      reply.header('Content-Disposition', `attachment; filename="fracture-triage-decisions-${stamp}.json"`);
      return reply.type('application/json').send({
        note: 'AI results are decision support only; decisions are radiologists\'.',
        rows: rows.map((r) => ({
          ...r,
          review_boxes: r.review_boxes ? JSON.parse(r.review_boxes) as unknown : [],
          ai_boxes: r.ai_boxes ? JSON.parse(r.ai_boxes) as unknown : [],
        })),
      });
    }
    const lines = [EXPORT_COLUMNS.join(',')];
    for (const row of rows) lines.push(EXPORT_COLUMNS.map((c) => csvCell((row as Record<string, unknown>)[c])).join(','));
    reply.header('Content-Disposition', `attachment; filename="fracture-triage-decisions-${stamp}.csv"`);
    return reply.type('text/csv; charset=utf-8').send(`${lines.join('\r\n')}\r\n`);
  });
}
