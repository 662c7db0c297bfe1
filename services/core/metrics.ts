import http from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AiFlag, AiResultStatus } from './db/schema.js';
import type { WorkerHeartbeat } from './repositories/heartbeat.repository.js';

/**
 * Prometheus metrics (prom-client). Every process keeps its own Registry (never prom-client's
 * global one), so several apps in one test process do not collide.
 *
 * Labels never carry patient data, UIDs or accession numbers: only route templates, outcomes,
 * stages, flag levels, queue states, and worker / model identity.
 *
 * - The API: `createApiMetrics()` (HTTP requests, ingest images/bytes). At scrape time the API's
 *   /metrics route adds gauges derived from Redis and the database (queue depths, results by flag,
 *   worker heartbeats): see services/api/routes/metrics.ts.
 * - The classify worker: `workerMetrics()` (job durations by stage, results by flag, jobs, heartbeat,
 *   model info) served by `startMetricsServer(port)` on its own port.
 */

export const METRIC_PREFIX = 'ft_';

/** Seconds buckets from 5 ms to 10 min: covers an HTTP request as well as a job waiting in a backlog. */
const SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

export type IngestOutcomeStatus = 'stored' | 'duplicate' | 'conflict' | 'failed';

export interface ApiMetrics {
  registry: Registry;
  httpRequests: Counter<'method' | 'route' | 'status'>;
  httpDuration: Histogram<'method' | 'route'>;
  ingestImages: Counter<'outcome'>;
  ingestBytes: Counter<'endpoint'>;
  /** 4xx answers of the upload routes, by a short reason slug (e.g. boundary_too_long, unauthenticated). */
  httpRejections: Counter<'reason'>;
  /** Instances refused because their study is stored under another Patient ID. */
  identityRefusals: Counter<'origin'>;
  /** Counts each upload outcome (stored / duplicate / conflict / failed). */
  countOutcomes(outcomes: readonly { status: IngestOutcomeStatus; kind?: string }[]): void;
  /** Counts a request body's bytes as they arrive: call the returned function with each chunk's size. */
  bytesCounter(endpoint: 'stow' | 'instances'): (bytes: number) => void;
}

/** Instances refused because their study is stored under another Patient ID (API and DICOM listener). */
export function identityRefusalsCounter(registry: Registry): Counter<'origin'> {
  return new Counter({
    name: `${METRIC_PREFIX}patient_identity_refusals_total`,
    help: 'Instances refused because their Study Instance UID is stored under another Patient ID, by origin',
    labelNames: ['origin'] as const,
    registers: [registry],
  });
}

export function createApiMetrics(): ApiMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX + 'api_' });
  const httpRequests = new Counter({
    name: `${METRIC_PREFIX}http_requests_total`,
    help: 'HTTP requests answered, by method, route template and status code',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const httpDuration = new Histogram({
    name: `${METRIC_PREFIX}http_request_duration_seconds`,
    help: 'HTTP request duration (until the response is sent), by method and route template',
    labelNames: ['method', 'route'] as const,
    buckets: SECONDS_BUCKETS,
    registers: [registry],
  });
  const ingestImages = new Counter({
    name: `${METRIC_PREFIX}ingest_images_total`,
    help: 'DICOM instances received by STOW-RS or /api/instances, by outcome (stored, duplicate, conflict, failed)',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const ingestBytes = new Counter({
    name: `${METRIC_PREFIX}ingest_bytes_total`,
    help: 'Request body bytes received by the upload endpoints (stow, instances)',
    labelNames: ['endpoint'] as const,
    registers: [registry],
  });
  const httpRejections = new Counter({
    name: `${METRIC_PREFIX}http_rejections_total`,
    help: 'Upload requests answered with a 4xx, by reason (the same reason is logged with the request)',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const identityRefusals = identityRefusalsCounter(registry);
  identityRefusals.inc({ origin: 'stow' }, 0);
  for (const outcome of ['stored', 'duplicate', 'conflict', 'failed']) ingestImages.inc({ outcome }, 0);
  for (const endpoint of ['stow', 'instances']) ingestBytes.inc({ endpoint }, 0);
  return {
    registry, httpRequests, httpDuration, ingestImages, ingestBytes, httpRejections, identityRefusals,
    countOutcomes(outcomes) {
      for (const o of outcomes) {
        ingestImages.inc({ outcome: o.status });
        if (o.kind === 'patient-identity') identityRefusals.inc({ origin: 'stow' });
      }
    },
    bytesCounter(endpoint) {
      // The labelled child once per request, not a label lookup per chunk.
      const counter = ingestBytes.labels({ endpoint });
      return (bytes) => counter.inc(bytes);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Classify worker

/** Pipeline stages a classify job goes through (see ai_results' times). */
export type JobStage = 'queue_wait' | 'decode' | 'inference' | 'store' | 'total' | 'upload_to_result';
export type JobResultStatus = AiResultStatus;

export interface WorkerMetrics {
  registry: Registry;
  jobStageDuration: Histogram<'stage'>;
  jobs: Counter<'outcome'>;
  results: Counter<'status' | 'flag'>;
  heartbeat: Gauge<'worker'>;
  jobsDone: Gauge<'worker'>;
  modelInfo: Gauge<'model_name' | 'model_version' | 'backend'>;
}

let workerSingleton: WorkerMetrics | undefined;

/** The worker process's metrics (one set per process, created on first use). */
export function workerMetrics(): WorkerMetrics {
  if (workerSingleton) return workerSingleton;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX + 'worker_' });
  workerSingleton = {
    registry,
    jobStageDuration: new Histogram({
      name: `${METRIC_PREFIX}job_stage_duration_seconds`,
      help: 'Classify job time per stage: queue_wait (queued→started), decode, inference, store, total (started→stored), upload_to_result (received→stored)',
      labelNames: ['stage'] as const,
      buckets: SECONDS_BUCKETS,
      registers: [registry],
    }),
    jobs: new Counter({
      name: `${METRIC_PREFIX}worker_jobs_total`,
      help: 'Classify jobs this worker finished, by outcome (completed, failed = one attempt threw)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    results: new Counter({
      name: `${METRIC_PREFIX}worker_results_total`,
      help: 'AI results this worker stored, by status (done, unreadable, failed, not_applicable) and flag level (none, doubt, definite; "" without a score)',
      labelNames: ['status', 'flag'] as const,
      registers: [registry],
    }),
    heartbeat: new Gauge({
      name: `${METRIC_PREFIX}worker_last_heartbeat_timestamp_seconds`,
      help: 'Unix time of this worker\'s last heartbeat',
      labelNames: ['worker'] as const,
      registers: [registry],
    }),
    jobsDone: new Gauge({
      name: `${METRIC_PREFIX}worker_heartbeat_jobs_done`,
      help: 'Jobs done since the worker started, as in its heartbeat',
      labelNames: ['worker'] as const,
      registers: [registry],
    }),
    modelInfo: new Gauge({
      name: `${METRIC_PREFIX}worker_model_info`,
      help: 'The model this worker has loaded (value 1; identity in labels)',
      labelNames: ['model_name', 'model_version', 'backend'] as const,
      registers: [registry],
    }),
  };
  return workerSingleton;
}

/** Worker: one stage of a job took `seconds`. */
export function observeJobStage(stage: JobStage, seconds: number): void {
  if (Number.isFinite(seconds) && seconds >= 0) workerMetrics().jobStageDuration.observe({ stage }, seconds);
}

/**
 * Worker: observe every stage from the times stored in an ai_results row (epoch ms; missing times
 * skip their stage). `receivedAt` is the instance's received_at, for upload_to_result.
 */
export function observeResultTimes(times: {
  queued_at?: number | null; started_at?: number | null; decoded_at?: number | null; inferred_at?: number | null; stored_at?: number | null; received_at?: number | null;
}): void {
  const span = (from: number | null | undefined, to: number | null | undefined) => (from != null && to != null ? (to - from) / 1000 : undefined);
  const stages: [JobStage, number | undefined][] = [
    ['queue_wait', span(times.queued_at, times.started_at)],
    ['decode', span(times.started_at, times.decoded_at)],
    ['inference', span(times.decoded_at, times.inferred_at)],
    ['store', span(times.inferred_at, times.stored_at)],
    ['total', span(times.started_at, times.stored_at)],
    ['upload_to_result', span(times.received_at, times.stored_at)],
  ];
  for (const [stage, seconds] of stages) if (seconds !== undefined) observeJobStage(stage, seconds);
}

/** Worker: a result was stored (status done → flag none/doubt/definite). */
export function countResult(status: JobResultStatus, flag: AiFlag | null): void {
  workerMetrics().results.inc({ status, flag: flag ?? '' });
}

/** Worker: a job attempt finished (BullMQ 'completed' or 'failed' event). */
export function countJob(outcome: 'completed' | 'failed'): void {
  workerMetrics().jobs.inc({ outcome });
}

/** Worker: call with each heartbeat it writes; sets heartbeat time, jobs done and the model label. */
export function recordHeartbeat(beat: Pick<WorkerHeartbeat, 'id' | 'backend' | 'modelName' | 'modelVersion' | 'jobsDone' | 'lastHeartbeat'>): void {
  const m = workerMetrics();
  m.heartbeat.set({ worker: beat.id }, beat.lastHeartbeat / 1000);
  m.jobsDone.set({ worker: beat.id }, beat.jobsDone);
  m.modelInfo.reset();
  m.modelInfo.set({ model_name: beat.modelName, model_version: beat.modelVersion, backend: beat.backend }, 1);
}

/**
 * Worker: one call after a result row was stored (ai_results row as written, plus the instance's
 * received_at): counts it by status and flag and observes every stage it has times for.
 */
export function recordStoredResult(row: {
  status: JobResultStatus; flag?: AiFlag | null;
  queued_at?: number | null; started_at?: number | null; decoded_at?: number | null; inferred_at?: number | null; stored_at?: number | null;
}, receivedAt?: number | null): void {
  countResult(row.status, row.flag ?? null);
  observeResultTimes({ ...row, received_at: receivedAt ?? null });
}

/** Worker: counts finished attempts from a BullMQ Worker's 'completed' and 'failed' events. */
export function instrumentBullWorker(worker: { on(event: 'completed' | 'failed', listener: (...args: never[]) => void): unknown }): void {
  worker.on('completed', () => countJob('completed'));
  worker.on('failed', () => countJob('failed'));
}

/** Port for the worker's metrics server: WORKER_METRICS_PORT, default 9464; 0 turns it off. */
export function workerMetricsPort(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.WORKER_METRICS_PORT;
  if (raw === undefined || raw === '') return 9464;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`WORKER_METRICS_PORT must be a port number, got "${raw}"`);
  return port;
}

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

/**
 * A tiny HTTP server answering GET /metrics with `registry` (the worker's by default). Port 0
 * means off (returns null); host defaults to METRICS_HOST or 127.0.0.1.
 */
export async function startMetricsServer(
  port: number = workerMetricsPort(),
  registry: Registry = workerMetrics().registry,
  host: string = process.env.METRICS_HOST ?? '127.0.0.1',
): Promise<MetricsServer | null> {
  if (!port) return null;
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(path === '/metrics' ? 405 : 404, { 'content-type': 'text/plain' }).end(path === '/metrics' ? 'GET only\n' : 'not found; try /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${err.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => { server.off('error', reject); resolve(); });
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
