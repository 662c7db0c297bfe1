import { createRequire } from 'node:module';
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { Core } from '../../core/core.js';
import type { Actor, JobScope } from '../../core/services/queue-admin.service.js';
import { SESSION_COOKIE, hasRole, type Authenticate } from '../plugins/auth.js';
import { accountRoutes } from './admin-accounts.js';
import { webDistDir } from './web.js';
import { AdminActionsSchema, FailedJobsSchema, OverviewSchema, ThroughputSchema } from '../../contract/index.js';

/** Where the read-only job browser (bull-board) is mounted. */
export const BULL_BOARD_PATH = '/admin/queues';

/**
 * Queue health for admins: `/api/admin/*` (JSON for the dashboard in web/admin.html) and the
 * bull-board job browser at /admin/queues. Admin sessions only: 401 without one, 403 for any other
 * role; unsafe methods need the session's X-CSRF-Token. Every change is audited.
 */
export async function adminRoutes(app: FastifyInstance, core: Core, authenticate: Authenticate) {
  const adminOnly = authenticate({ session: true, roles: ['admin'] });
  // Deployment-wide operations (the queue is shared by every site): superadmins only.
  const superadminOnly = authenticate({ session: true, roles: ['superadmin'] });
  /** A superadmin sees every site's jobs; an admin, their sites' only. */
  const scopeOf = (request: FastifyRequest): JobScope => {
    const p = request.principal!;
    return p.type === 'user' && p.role === 'superadmin' ? 'all' : p.siteIds;
  };
  const admin = core.services.queueAdmin;
  const tags = ['Admin'];
  const actor = (request: FastifyRequest): Actor => {
    const p = request.principal!;
    return p.type === 'user' ? { id: p.id, username: p.username } : { id: p.id };
  };
  const jobParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 300 } } } as const;

  await app.register(async (scope) => {
    scope.addHook('onRequest', adminOnly);
    // Admin data is never cached by a browser or proxy.
    scope.addHook('onSend', async (_request, reply) => { reply.header('Cache-Control', 'no-store'); });

    scope.get('/api/admin/overview', {
      schema: { tags, summary: 'Queue counts, oldest waiting job, workers, Redis/database health, data disk space', response: { 200: OverviewSchema } },
    }, async () => admin.overview());

    scope.get('/api/admin/throughput', {
      schema: {
        tags, summary: 'Results per minute and upload→result latency p50/p95 per minute over the last N minutes (default 60)',
        querystring: { type: 'object', properties: { minutes: { type: 'integer', minimum: 1, maximum: 1440 } } },
        response: { 200: ThroughputSchema },
      },
    }, async (request) => admin.throughput((request.query as { minutes?: number }).minutes ?? 60));

    scope.get('/api/admin/jobs/failed', {
      schema: {
        tags, summary: 'Failed classify jobs, newest first; q = exact SOP Instance UID, Study Instance UID or accession number',
        querystring: {
          type: 'object',
          properties: {
            q: { type: 'string', maxLength: 200 },
            offset: { type: 'integer', minimum: 0, maximum: 1_000_000 },
            limit: { type: 'integer', minimum: 1, maximum: 500 },
          },
        },
        response: { 200: FailedJobsSchema },
      },
    }, async (request) => admin.failedJobs(request.query as { q?: string; offset?: number; limit?: number }, scopeOf(request)));

    scope.get('/api/admin/jobs/:id', {
      schema: { tags, summary: "A job's history: attempts, errors, timestamps, logs, stored result, audited actions", params: jobParams },
    }, async (request) => admin.jobHistory((request.params as { id: string }).id, scopeOf(request)));

    scope.post('/api/admin/jobs/:id/retry', {
      schema: { tags, summary: 'Retry one failed job (fresh attempts); audited', params: jobParams },
    }, async (request) => {
      const { id } = request.params as { id: string };
      await admin.retry(id, actor(request), scopeOf(request));
      return { ok: true, id };
    });

    scope.delete('/api/admin/jobs/:id', {
      schema: { tags, summary: 'Remove a job (not one in progress); its image stays failed; audited', params: jobParams },
    }, async (request) => {
      const { id } = request.params as { id: string };
      await admin.remove(id, actor(request), scopeOf(request));
      return { ok: true, id };
    });

    scope.post('/api/admin/jobs/failed/retry', {
      schema: { tags, summary: "Retry every failed job (an admin: their sites' jobs); audited" },
    }, async (request) => admin.retryAll(actor(request), undefined, scopeOf(request)));

    scope.post('/api/admin/queue/pause', { onRequest: superadminOnly, schema: { tags, summary: 'Pause the classify queue for every site (jobs in progress finish); superadmin; audited' } }, async (request) => {
      await admin.pause(actor(request));
      return { ok: true, paused: true };
    });
    scope.post('/api/admin/queue/resume', { onRequest: superadminOnly, schema: { tags, summary: 'Resume the classify queue; superadmin; audited' } }, async (request) => {
      await admin.resume(actor(request));
      return { ok: true, paused: false };
    });
    scope.post('/api/admin/queue/drain', {
      onRequest: superadminOnly,
      schema: { tags, summary: 'Remove waiting and delayed jobs (the reconciler re-queues images the database still lists as unfinished); audited' },
    }, async (request) => admin.drain(actor(request)));

    scope.get('/api/admin/actions', { schema: { tags, summary: 'Recent audited queue actions', response: { 200: AdminActionsSchema } } }, async (request) => admin.recentActions(20, scopeOf(request)));

    accountRoutes(scope, core);
  });

  // The dashboard page: code only, no data (that comes from /api/admin/*). Without a session it
  // shows its sign-in form; a signed-in user who is not an admin gets 403.
  app.get('/admin.html', { schema: { hide: true } }, async (request, reply) => {
    const token = request.cookies?.[SESSION_COOKIE];
    const user = token ? await core.services.auth.session(token) : undefined;
    reply.header('Cache-Control', 'no-store');
    if (user && !hasRole(user.role, ['admin'])) {
      return reply.code(403).type('text/html; charset=utf-8')
        .send('<!doctype html><meta charset="utf-8"><title>Forbidden</title><h1>403: admins only</h1><p><a href="/">Back to the worklist</a></p>\n');
    }
    const page = await fs.readFile(path.join(webDistDir(), 'admin.html')).catch(() => undefined);
    if (!page) return reply.code(503).type('text/plain').send('The web app is not built. Run "npm run build:web" and restart.\n');
    return reply.type('text/html; charset=utf-8').send(page);
  });

  // bull-board, read-only: browsing only; changes go through the audited API above. It shows every
  // site's jobs, so it is for superadmins only.
  const board = new FastifyAdapter();
  createBullBoard({
    queues: core.services.queueAdmin.browsableQueues().map((queue) => new BullMQAdapter(queue, { readOnlyMode: true })),
    serverAdapter: board,
    options: {
      uiConfig: {
        boardTitle: 'fracture-triage',
        miscLinks: [{ text: 'Dashboard', url: '/admin.html' }],
        boardLogo: { path: `${BULL_BOARD_PATH}/static/images/logo.svg`, width: 28, height: 28 },
        favIcon: { default: `${BULL_BOARD_PATH}/static/images/logo.svg`, alternative: `${BULL_BOARD_PATH}/static/favicon-32x32.png` },
        hideDocsLink: true,
      },
    },
  });
  board.setBasePath(BULL_BOARD_PATH);
  const views = bullBoardViews();
  board.setViewsPath(views);
  app.addHook('onClose', async () => { await fs.rm(views, { recursive: true, force: true }); });
  await app.register(async (scope) => {
    scope.addHook('onRequest', superadminOnly);
    scope.addHook('onSend', async (_request, reply: FastifyReply) => { reply.header('Cache-Control', 'no-store'); });
    await scope.register(board.registerPlugin(), { prefix: BULL_BOARD_PATH });
  });
}

/**
 * bull-board's page, made to fit the app's Content-Security-Policy (base-uri 'none', no inline
 * style, nothing from other origins): asset URLs made absolute instead of relying on <base>, the
 * web-font link to a CDN and inline styles of the loading placeholder removed. The UI itself still
 * reads its base path from the <base> element. Written to a temporary views folder at start.
 */
function bullBoardViews(): string {
  const require = createRequire(import.meta.url);
  const template = path.join(path.dirname(require.resolve('@bull-board/ui/package.json')), 'dist', 'index.ejs');
  const page = fsSync.readFileSync(template, 'utf8')
    .replace(/<link[^>]*fonts\.googleapis\.com[^>]*>\s*/g, '')
    .replace(/(href|src)="static\//g, '$1="<%= basePath %>static/')
    .replace(/<style>[\s\S]*?<\/style>/g, '')
    .replace(/\sstyle="[^"]*"/g, '');
  const dir = fsSync.mkdtempSync(path.join(os.tmpdir(), 'ft-bull-board-'));
  fsSync.writeFileSync(path.join(dir, 'index.ejs'), page);
  return dir;
}
