import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { Core } from '../../core/core.js';
import type { Actor } from '../../core/services/queue-admin.service.js';
import type { Authenticate } from '../plugins/auth.js';

/** Where the read-only job browser (bull-board) is mounted. */
export const BULL_BOARD_PATH = '/admin/queues';

/**
 * Queue health for admins: `/api/admin/*` (JSON for the dashboard in web/admin.html) and the
 * bull-board job browser at /admin/queues. Admin sessions only: 401 without one, 403 for any other
 * role; unsafe methods need the session's X-CSRF-Token. Every change is audited.
 */
export async function adminRoutes(app: FastifyInstance, core: Core, authenticate: Authenticate) {
  const adminOnly = authenticate({ session: true, roles: ['admin'] });
  const admin = core.services.queueAdmin;
  const tags = ['Admin'];
  const actor = (request: FastifyRequest): Actor => {
    const p = request.principal!;
    return p.type === 'user' ? { id: p.id, username: p.username } : { id: p.id };
  };
  const jobParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 300 } } } as const;

  await app.register(async (scope) => {
    scope.addHook('preHandler', adminOnly);
    // Admin data is never cached by a browser or proxy.
    scope.addHook('onSend', async (_request, reply) => { reply.header('Cache-Control', 'no-store'); });

    scope.get('/api/admin/overview', {
      schema: { tags, summary: 'Queue counts, oldest waiting job, workers, Redis/database health, data disk space' },
    }, async () => admin.overview());

    scope.get('/api/admin/throughput', {
      schema: {
        tags, summary: 'Results per minute and upload→result latency p50/p95 per minute over the last N minutes (default 60)',
        querystring: { type: 'object', properties: { minutes: { type: 'integer', minimum: 1, maximum: 1440 } } },
      },
    }, async (request) => admin.throughput((request.query as { minutes?: number }).minutes ?? 60));

    scope.get('/api/admin/jobs/failed', {
      schema: {
        tags, summary: 'Failed classify jobs, newest first; q = exact SOP Instance UID, Study Instance UID or accession number',
        querystring: {
          type: 'object',
          properties: {
            q: { type: 'string', maxLength: 200 },
            offset: { type: 'integer', minimum: 0 },
            limit: { type: 'integer', minimum: 1, maximum: 500 },
          },
        },
      },
    }, async (request) => admin.failedJobs(request.query as { q?: string; offset?: number; limit?: number }));

    scope.get('/api/admin/jobs/:id', {
      schema: { tags, summary: "A job's history: attempts, errors, timestamps, logs, stored result, audited actions", params: jobParams },
    }, async (request) => admin.jobHistory((request.params as { id: string }).id));

    scope.post('/api/admin/jobs/:id/retry', {
      schema: { tags, summary: 'Retry one failed job (fresh attempts); audited', params: jobParams },
    }, async (request) => {
      const { id } = request.params as { id: string };
      await admin.retry(id, actor(request));
      return { ok: true, id };
    });

    scope.delete('/api/admin/jobs/:id', {
      schema: { tags, summary: 'Remove a job (not one in progress); its image stays failed; audited', params: jobParams },
    }, async (request) => {
      const { id } = request.params as { id: string };
      await admin.remove(id, actor(request));
      return { ok: true, id };
    });

    scope.post('/api/admin/jobs/failed/retry', {
      schema: { tags, summary: 'Retry every failed job; audited' },
    }, async (request) => admin.retryAll(actor(request)));

    scope.post('/api/admin/queue/pause', { schema: { tags, summary: 'Pause the classify queue (jobs in progress finish); audited' } }, async (request) => {
      await admin.pause(actor(request));
      return { ok: true, paused: true };
    });
    scope.post('/api/admin/queue/resume', { schema: { tags, summary: 'Resume the classify queue; audited' } }, async (request) => {
      await admin.resume(actor(request));
      return { ok: true, paused: false };
    });
    scope.post('/api/admin/queue/drain', {
      schema: { tags, summary: 'Remove waiting and delayed jobs (the reconciler re-queues images the database still lists as unfinished); audited' },
    }, async (request) => admin.drain(actor(request)));

    scope.get('/api/admin/actions', { schema: { tags, summary: 'Recent audited queue actions' } }, async () => admin.recentActions());
  });

  // bull-board, read-only: browsing only; changes go through the audited API above.
  const board = new FastifyAdapter();
  createBullBoard({
    queues: [new BullMQAdapter(core.queue.queue, { readOnlyMode: true })],
    serverAdapter: board,
    options: { uiConfig: { boardTitle: 'fracture-triage', miscLinks: [{ text: 'Dashboard', url: '/admin.html' }] } },
  });
  board.setBasePath(BULL_BOARD_PATH);
  await app.register(async (scope) => {
    scope.addHook('preHandler', adminOnly);
    scope.addHook('onSend', async (_request, reply: FastifyReply) => {
      // The UI's page links a web font from a CDN; nothing is fetched from outside at run time.
      reply.header('Content-Security-Policy', "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'");
      reply.header('Cache-Control', 'no-store');
    });
    await scope.register(board.registerPlugin(), { prefix: BULL_BOARD_PATH });
  });
}
