import { DelayedError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../core/logger.js';
import { RESULTS_QUEUE, type ResultsJobData } from './results-queue.js';
import type { ResultsService } from './results.service.js';

/** Runs the results queue: prepares stable studies and delivers versions (see results.service.ts). */
export class ResultsWorker {
  private readonly worker: Worker<ResultsJobData>;

  constructor(connection: Redis, prefix: string, private readonly results: ResultsService, private readonly log: Logger, concurrency = 2) {
    this.worker = new Worker<ResultsJobData>(RESULTS_QUEUE, (job, token) => this.process(job, token), { connection, prefix, concurrency, autorun: false });
    this.worker.on('error', (err) => log.error({ err: err.message }, 'results worker error'));
  }

  async start(): Promise<void> {
    void this.worker.run();
    await this.worker.waitUntilReady();
  }

  private async process(job: Job<ResultsJobData>, token?: string) {
    const data = job.data;
    if (data.kind === 'deliver') {
      return { outcome: await this.results.deliver(data.deliveryId, job.attemptsMade + 1, job.opts.attempts ?? 1) };
    }
    const prepared = await this.results.prepare(data.studyId);
    if (prepared.outcome === 'waiting') {
      // Not quiet yet: look again when it can be (the job keeps its place, no attempt used).
      await job.moveToDelayed(Date.now() + prepared.waitMs, token);
      throw new DelayedError();
    }
    this.log.info({ studyId: data.studyId, outcome: prepared.outcome }, 'study output prepared');
    return { outcome: prepared.outcome };
  }

  close(): Promise<void> {
    return this.worker.close();
  }
}
