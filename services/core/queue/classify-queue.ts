import { Queue, type JobsOptions } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';

export const CLASSIFY_QUEUE = 'classify';

/** What a classify job carries: ids only, never patient data (Redis is not the place for it). */
export interface ClassifyJobData {
  instanceId: number;
  siteId: string;
}

/** BullMQ job id for an instance: the same image always maps to the same job, so adding twice is a no-op. */
export function classifyJobId(siteId: string, sopInstanceUid: string): string {
  return `sop-${siteId}-${sopInstanceUid}`;
}

export const CLASSIFY_JOB_OPTIONS: JobsOptions = {
  attempts: 5,
  backoff: { type: 'exponential', delay: 2_000 },
  // Completed jobs stay a week for the admin view; failed ones stay until retried or removed.
  removeOnComplete: { age: 7 * 24 * 3600 },
  removeOnFail: false,
};

/** Maps a requested priority to BullMQ's (1 = first); the scale is the API contract's. */
import { PRIORITY } from '../../contract/priority.js';
export { PRIORITY, priorityName, type PriorityName } from '../../contract/priority.js';

export function priorityFromDicom(requested: string | null): number {
  switch ((requested ?? '').toUpperCase()) {
    case 'STAT':
    case 'EMERGENCY':
    case 'ED':
      return PRIORITY.stat;
    case 'HIGH':
    case 'URGENT':
      return PRIORITY.high;
    case 'LOW':
      return PRIORITY.low;
    default:
      return PRIORITY.routine;
  }
}

export function redisConnection(url: string, extra: RedisOptions = {}): Redis {
  // BullMQ workers need maxRetriesPerRequest null; for producers it makes commands wait for a
  // reconnect instead of failing, which we bound ourselves with timeouts where it matters.
  return new Redis(url, { maxRetriesPerRequest: null, enableOfflineQueue: true, ...extra });
}

export class ClassifyQueue {
  readonly queue: Queue<ClassifyJobData>;

  constructor(connection: Redis, prefix: string) {
    this.queue = new Queue<ClassifyJobData>(CLASSIFY_QUEUE, { connection, prefix });
  }

  async enqueue(job: { instanceId: number; siteId: string; sopInstanceUid: string; priority: number }): Promise<void> {
    await this.queue.add('classify', { instanceId: job.instanceId, siteId: job.siteId }, {
      ...CLASSIFY_JOB_OPTIONS,
      jobId: classifyJobId(job.siteId, job.sopInstanceUid),
      priority: job.priority,
    });
  }

  async hasJob(siteId: string, sopInstanceUid: string): Promise<boolean> {
    return (await this.queue.getJob(classifyJobId(siteId, sopInstanceUid))) !== undefined;
  }

  close(): Promise<void> {
    return this.queue.close();
  }
}
