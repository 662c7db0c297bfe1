import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { Gauge } from 'prom-client';
import type { Core } from '../../core/core.js';
import { createApiMetrics, METRIC_PREFIX, type ApiMetrics } from '../../core/metrics.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The API's Prometheus metrics (HTTP, ingest); see services/core/metrics.ts. */
    metrics: ApiMetrics;
  }
}

/**
 * `GET /metrics` (Prometheus text format) and the HTTP request counters. Besides what the API
 * itself counts, each scrape reads the pipeline's state from Redis and the database (queue depths,
 * results by flag, worker heartbeats, disk), so one scrape of the API shows the whole pipeline.
 * Optional bearer token: METRICS_TOKEN. Must be called before the routes it should count.
 */
export function metricsRoutes(app: FastifyInstance, core: Core) {
  const metrics = createApiMetrics();
  app.decorate('metrics', metrics);
  const { registry } = metrics;
  const admin = core.services.queueAdmin;

  app.addHook('onResponse', async (request, reply) => {
    // Route templates only (never the URL itself: it may carry UIDs).
    const route = request.routeOptions.url ?? 'unmatched';
    if (route === '/metrics') return;
    const labels = { method: request.method, route };
    metrics.httpRequests.inc({ ...labels, status: String(reply.statusCode) });
    metrics.httpDuration.observe(labels, reply.elapsedTime / 1000);
  });

  const up = new Gauge({
    name: `${METRIC_PREFIX}dependency_up`, help: 'Whether a dependency answered at scrape time (1) or not (0): redis, database',
    labelNames: ['dependency'] as const, registers: [registry],
  });
  const queueJobs = new Gauge({
    name: `${METRIC_PREFIX}queue_jobs`, help: 'Jobs in a BullMQ queue by state (waiting, prioritized, active, delayed, completed, failed, waiting-children)',
    labelNames: ['queue', 'state'] as const, registers: [registry],
  });
  const queuePaused = new Gauge({
    name: `${METRIC_PREFIX}queue_paused`, help: 'Whether the queue is paused (1) or not (0)',
    labelNames: ['queue'] as const, registers: [registry],
  });
  const oldestWaiting = new Gauge({
    name: `${METRIC_PREFIX}queue_oldest_waiting_seconds`, help: 'Age of the oldest image still queued for the AI (0 when none)',
    labelNames: ['queue'] as const, registers: [registry],
  });
  const instances = new Gauge({
    name: `${METRIC_PREFIX}instances`, help: 'Stored images by pipeline status (stored, queued, processing, done, failed), from the database',
    labelNames: ['status'] as const, registers: [registry],
  });
  const results = new Gauge({
    name: `${METRIC_PREFIX}ai_results`, help: 'AI results in the database by status and flag level (flag "" when there is no score); grows with every stored result',
    labelNames: ['status', 'flag'] as const, registers: [registry],
  });
  const workerUp = new Gauge({
    name: `${METRIC_PREFIX}worker_up`, help: 'Classify workers with a heartbeat in Redis: 1 alive, 0 stale; model identity in labels',
    labelNames: ['worker', 'host', 'backend', 'model_name', 'model_version'] as const, registers: [registry],
  });
  const workerHeartbeat = new Gauge({
    name: `${METRIC_PREFIX}worker_heartbeat_timestamp_seconds`, help: 'Unix time of each worker\'s last heartbeat',
    labelNames: ['worker'] as const, registers: [registry],
  });
  const workerJobs = new Gauge({
    name: `${METRIC_PREFIX}worker_jobs`, help: 'Jobs each worker reports done / failed since it started (from its heartbeat)',
    labelNames: ['worker', 'outcome'] as const, registers: [registry],
  });
  const modelInfo = new Gauge({
    name: `${METRIC_PREFIX}model_info`, help: 'Alive workers per loaded model (name, version, backend)',
    labelNames: ['model_name', 'model_version', 'backend'] as const, registers: [registry],
  });
  const stageSeconds = new Gauge({
    name: `${METRIC_PREFIX}pipeline_stage_seconds`,
    help: 'Pipeline time per stage over the last hour, from the database (quantile 0.5 / 0.95): queue_wait, decode, inference, store, total (started→stored), upload_to_result (received→stored)',
    labelNames: ['stage', 'quantile'] as const, registers: [registry],
  });
  const resultsLastHour = new Gauge({
    name: `${METRIC_PREFIX}pipeline_results_last_hour`, help: 'AI results stored in the last hour (database)', registers: [registry],
  });
  const diskFree = new Gauge({ name: `${METRIC_PREFIX}data_disk_free_bytes`, help: 'Free bytes on the filesystem of the data folder', registers: [registry] });
  const diskTotal = new Gauge({ name: `${METRIC_PREFIX}data_disk_total_bytes`, help: 'Size of the filesystem of the data folder', registers: [registry] });

  /** Reads the pipeline's state; each source that does not answer is left out of this scrape. */
  async function collectPipeline() {
    const [health, queue, workers, byStatus, byFlag, disk] = await Promise.all([
      admin.health(),
      admin.queueOverview().catch(() => null),
      admin.workers().catch(() => null),
      admin.instancesByStatus().catch(() => null),
      admin.resultsByFlag().catch(() => null),
      admin.disk(),
    ]);
    const hour = await admin.throughput(60, 20_000).catch(() => null);
    up.reset();
    up.set({ dependency: 'redis' }, health.redis === 'ok' ? 1 : 0);
    up.set({ dependency: 'database' }, health.database === 'ok' ? 1 : 0);
    queueJobs.reset();
    queuePaused.reset();
    oldestWaiting.reset();
    if (queue) {
      for (const [state, n] of Object.entries(queue.counts)) queueJobs.set({ queue: queue.name, state }, n);
      queuePaused.set({ queue: queue.name }, queue.paused ? 1 : 0);
      oldestWaiting.set({ queue: queue.name }, queue.oldestWaitingAgeSec ?? 0);
    }
    instances.reset();
    if (byStatus) for (const status of ['stored', 'queued', 'processing', 'done', 'failed']) instances.set({ status }, byStatus[status] ?? 0);
    results.reset();
    if (byFlag) {
      for (const flag of ['none', 'doubt', 'definite']) results.set({ status: 'done', flag }, 0);
      for (const r of byFlag) results.inc({ status: r.status, flag: r.flag ?? '' }, r.count);
    }
    workerUp.reset();
    workerHeartbeat.reset();
    workerJobs.reset();
    modelInfo.reset();
    for (const w of workers ?? []) {
      workerUp.set({ worker: w.id, host: w.host, backend: w.backend, model_name: w.modelName, model_version: w.modelVersion }, w.alive ? 1 : 0);
      workerHeartbeat.set({ worker: w.id }, w.lastHeartbeat / 1000);
      workerJobs.set({ worker: w.id, outcome: 'done' }, w.jobsDone);
      workerJobs.set({ worker: w.id, outcome: 'failed' }, w.jobsFailed);
      if (w.alive) modelInfo.inc({ model_name: w.modelName, model_version: w.modelVersion, backend: w.backend });
    }
    stageSeconds.reset();
    if (hour) {
      resultsLastHour.set(hour.total.results);
      for (const [stage, s] of Object.entries(hour.stages)) {
        if (s.p50Ms !== null) stageSeconds.set({ stage, quantile: '0.5' }, s.p50Ms / 1000);
        if (s.p95Ms !== null) stageSeconds.set({ stage, quantile: '0.95' }, s.p95Ms / 1000);
      }
    }
    if (disk) {
      diskFree.set(disk.freeBytes);
      diskTotal.set(disk.totalBytes);
    }
  }

  const token = process.env.METRICS_TOKEN;
  app.get('/metrics', {
    schema: { tags: ['Operations'], summary: 'Prometheus metrics (text format 0.0.4)', description: 'No credentials unless METRICS_TOKEN is set; then "Authorization: Bearer <token>".' },
  }, async (request, reply) => {
    if (token) {
      const given = Buffer.from(request.headers.authorization?.replace(/^Bearer\s+/i, '') ?? '');
      const expected = Buffer.from(token);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        reply.header('WWW-Authenticate', 'Bearer realm="metrics"');
        return reply.code(401).send({ error: 'Unauthorized', message: 'metrics need the METRICS_TOKEN bearer token' });
      }
    }
    await collectPipeline();
    return reply.type(registry.contentType).send(await registry.metrics());
  });
}
