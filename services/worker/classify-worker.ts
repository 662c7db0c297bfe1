import type { Job, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import { instrumentBullWorker, recordHeartbeat } from '../core/metrics.js';
import { redisConnection, type ClassifyJobData, type ClassifyJobs } from '../core/queue/classify-queue.js';
import { HEARTBEAT_MS, workerId, type HeartbeatRepository, type WorkerHeartbeat } from '../core/repositories/heartbeat.repository.js';
import type { ClassifyService } from '../core/services/classify.service.js';
import type { FractureModel } from '../inference/index.js';

/**
 * One classify worker process: a BullMQ Worker (at-least-once delivery; the result store makes
 * the effect exactly-once), a heartbeat other processes can see, and a graceful stop that lets
 * jobs in flight finish before the process exits.
 */
export class ClassifyWorker {
  readonly id = workerId();
  private readonly connection: Redis;
  private readonly worker: Worker<ClassifyJobData>;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly beat: WorkerHeartbeat;

  constructor(
    config: Config,
    private readonly classify: ClassifyService,
    model: FractureModel,
    private readonly log: Logger,
    jobs: ClassifyJobs,
    private readonly heartbeats: HeartbeatRepository,
  ) {
    this.connection = redisConnection(config.redisUrl);
    this.connection.on('error', (err) => log.warn({ err: err.message }, 'redis connection error'));
    this.beat = {
      id: this.id, host: this.id.split(':')[0], pid: process.pid, backend: model.backend, modelName: model.name, modelVersion: model.version,
      concurrency: config.worker.concurrency, jobsDone: 0, jobsFailed: 0, startedAt: Date.now(), lastHeartbeat: Date.now(),
    };
    this.worker = jobs.createWorker((job) => this.process(job), {
      connection: this.connection,
      concurrency: config.worker.concurrency,
      lockDuration: config.worker.lockDurationMs,
      stalledInterval: config.worker.stalledIntervalMs,
      // A job whose worker died is handed out again; only one that keeps killing workers is failed.
      maxStalledCount: 3,
    });
    instrumentBullWorker(this.worker);
    this.worker.on('completed', () => void this.beat.jobsDone++);
    this.worker.on('failed', (job, err) => {
      this.beat.jobsFailed++;
      log.warn({ jobId: job?.id, attempt: job?.attemptsMade, err: err.message }, 'classify job failed');
    });
    this.worker.on('error', (err) => log.error({ err: err.message }, 'worker error'));
    this.heartbeat = setInterval(() => void this.sendHeartbeat(), HEARTBEAT_MS);
  }

  async start(): Promise<void> {
    await this.sendHeartbeat();
    void this.worker.run();
    await this.worker.waitUntilReady();
  }

  private async process(job: Job<ClassifyJobData>) {
    const outcome = await this.classify.classify(job.data.instanceId, {
      queuedAt: job.timestamp,
      attempt: job.attemptsMade + 1,
      maxAttempts: job.opts.attempts ?? 1,
    });
    this.log.info({ jobId: job.id, instanceId: job.data.instanceId, outcome }, 'classified');
    return { outcome };
  }

  private async sendHeartbeat() {
    this.beat.lastHeartbeat = Date.now();
    recordHeartbeat(this.beat);
    await this.heartbeats.write(this.beat).catch(() => {});
  }

  /** Stops taking jobs, waits for the ones in flight, then leaves. */
  async close(): Promise<void> {
    clearInterval(this.heartbeat);
    await this.worker.close();
    await this.heartbeats.remove(this.id).catch(() => {});
    this.connection.disconnect();
  }
}
