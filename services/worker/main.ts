import { loadConfig } from '../core/config.js';
import { createCore } from '../core/core.js';
import { createLogger } from '../core/logger.js';
import { startMetricsServer } from '../core/metrics.js';
import { ClassifyService } from '../core/services/classify.service.js';
import { redisConnection } from '../core/queue/classify-queue.js';
import { routeLibraryLog } from '../dimse-net/dcmjs-dimse.js';
import { createDecodePool } from '../imaging/decode-pool.js';
import { loadFractureModel } from '../inference/index.js';
import { resultsFor, ResultsWorker } from '../results/index.js';
import { exitWithSupervisor } from '../supervisor/supervisor.js';
import { ClassifyWorker } from './classify-worker.js';

/** The classifier worker process. Several can run against one Redis. */
export async function startWorker() {
  process.umask(0o077);
  exitWithSupervisor();
  const config = loadConfig();
  const log = createLogger(config.logLevel, 'worker');
  const core = await createCore(config, log);
  // The results' C-STORE SCU logs its associations to ours (debug), never to stdout.
  routeLibraryLog(log);
  const model = await loadFractureModel(config.worker.modelDir, { backend: config.worker.backend });
  log.info({ model: model.name, version: model.version, backend: model.backend, concurrency: config.worker.concurrency }, 'model loaded');
  const pool = createDecodePool(config.worker.decodeThreads, { timeoutMs: config.worker.decodeTimeoutMs });
  const results = resultsFor(core, (bytes) => pool.decode(bytes, { maxInflatedBytes: config.limits.maxPartBytes }));
  const classify = new ClassifyService(
    core.repos.instances, core.repos.aiResults, core.repos.storage, model,
    { decode: (bytes) => pool.decode(bytes, { maxInflatedBytes: config.limits.maxPartBytes }) }, core.repos.events, log,
    (siteId, studyId) => results.service.studyChanged(siteId, studyId),
  );
  const worker = new ClassifyWorker(config, classify, model, log, core.jobs.classify, core.repos.heartbeats);
  await worker.start();
  // Results going back to the hospital run in the same process, on their own queue and connection.
  const resultsConnection = redisConnection(config.redisUrl);
  resultsConnection.on('error', (err) => log.warn({ err: err.message }, 'redis connection error'));
  const resultsWorker = new ResultsWorker(resultsConnection, config.queuePrefix, results.service, log);
  await resultsWorker.start();
  // Prometheus scrapes each worker process on its own port (WORKER_METRICS_PORT, 0 = off).
  const metrics = await startMetricsServer().catch((err) => {
    log.warn({ err: (err as Error).message }, 'worker metrics server did not start');
    return null;
  });
  log.info({ worker: worker.id, metricsPort: metrics?.port ?? null }, 'classify worker started');

  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    log.info({ signal }, 'stopping: finishing jobs in flight');
    await worker.close();
    await resultsWorker.close();
    await results.queue.close();
    resultsConnection.disconnect();
    await metrics?.close();
    await pool.close();
    model.dispose();
    await core.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  return { worker, shutdown };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  startWorker().catch((err) => {
    console.error(`fracture-triage worker: ${err instanceof Error ? err.message : err}`);
    process.exit(1);
  });
}
