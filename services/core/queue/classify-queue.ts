import { Redis, type RedisOptions } from 'ioredis';
import type { JobQueueDefinition, JobRepository } from '../repositories/job.repository.js';

export const CLASSIFY_QUEUE = 'classify';

/** What a classify job carries: ids only, never patient data (Redis is not the place for it). */
export interface ClassifyJobData {
  instanceId: number;
  siteId: string;
}

/** Which image a classify job is for; its job id is built from this, in CLASSIFY_JOBS only. */
export interface ClassifyJobKey {
  siteId: string;
  sopInstanceUid: string;
}

/** The classify queue: the same image always maps to the same job, so adding twice is a no-op. */
export const CLASSIFY_JOBS: JobQueueDefinition<ClassifyJobData, ClassifyJobKey> = {
  name: CLASSIFY_QUEUE,
  jobName: 'classify',
  jobId: ({ siteId, sopInstanceUid }) => `sop-${siteId}-${sopInstanceUid}`,
  options: {
    attempts: 5,
    backoff: { type: 'exponential', delay: 2_000 },
    // Completed jobs stay a week for the admin view; failed ones stay until retried or removed.
    removeOnComplete: { age: 7 * 24 * 3600 },
    removeOnFail: false,
  },
};

export type ClassifyJobs = JobRepository<ClassifyJobData, ClassifyJobKey>;

/** BullMQ job id for an instance (CLASSIFY_JOBS.jobId). */
export function classifyJobId(siteId: string, sopInstanceUid: string): string {
  return CLASSIFY_JOBS.jobId({ siteId, sopInstanceUid });
}

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
