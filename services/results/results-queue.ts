import { Queue, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';

/**
 * The queue of results going out, apart from classification so a slow or absent PACS never
 * holds up the worklist. Two jobs: `prepare` (build a study's SR + SCs once it is stable) and
 * `deliver` (send one version to one destination, retried with back-off).
 * The `core` helper's job repository is meant to serve this second queue too; switch at merge.
 */
export const RESULTS_QUEUE = 'results';

export type ResultsJobData =
  | { kind: 'prepare'; studyId: number; siteId: string }
  | { kind: 'deliver'; deliveryId: number; siteId: string };

export interface DeliveryRetryPolicy {
  attempts: number;
  /** First back-off in ms; doubles each attempt. */
  backoffMs: number;
}

export const DEFAULT_RETRY: DeliveryRetryPolicy = { attempts: 12, backoffMs: 5_000 };

const KEEP: JobsOptions = { removeOnComplete: { age: 7 * 24 * 3600 }, removeOnFail: { age: 30 * 24 * 3600 } };

export class ResultsQueue {
  readonly queue: Queue<ResultsJobData>;

  constructor(connection: Redis, prefix: string, private readonly retry: DeliveryRetryPolicy = DEFAULT_RETRY) {
    this.queue = new Queue<ResultsJobData>(RESULTS_QUEUE, { connection, prefix });
  }

  /**
   * Asks for the study's output to be (re)built after `delayMs`. Preparing is idempotent (same
   * content, same version), so every stored result may ask; the job itself waits for the study
   * to be complete and quiet.
   */
  async schedulePrepare(siteId: string, studyId: number, delayMs: number): Promise<void> {
    await this.queue.add('prepare', { kind: 'prepare', studyId, siteId }, {
      ...KEEP, delay: delayMs, attempts: 5, backoff: { type: 'exponential', delay: 2_000 },
    });
  }

  /** One job per delivery and generation: adding it again is a no-op, a manual retry is a new generation. */
  async enqueueDelivery(siteId: string, deliveryId: number, generation: number): Promise<void> {
    await this.queue.add('deliver', { kind: 'deliver', deliveryId, siteId }, {
      ...KEEP, jobId: `deliver-${deliveryId}-${generation}`, attempts: this.retry.attempts, backoff: { type: 'exponential', delay: this.retry.backoffMs },
    });
  }

  close(): Promise<void> {
    return this.queue.close();
  }
}
