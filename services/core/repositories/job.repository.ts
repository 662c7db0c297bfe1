import { Job, Queue, Worker, type JobsOptions, type Processor, type WorkerOptions } from 'bullmq';
import type { Redis } from 'ioredis';

/** Thrown by a job's processor: fail the job now, with no more attempts (BullMQ's UnrecoverableError). */
export { UnrecoverableError as PermanentJobError } from 'bullmq';

/**
 * What makes one BullMQ queue ours: its name, the options every job gets, and the one place its
 * job ids are built from a key (the same key always maps to the same job, so adding twice is a no-op).
 * A second queue is one more definition like CLASSIFY_JOBS (queue/classify-queue.ts) and one
 * more `new JobRepository(...)` in core.ts.
 */
export interface JobQueueDefinition<Data, Key> {
  name: string;
  jobName: string;
  jobId(key: Key): string;
  options: JobsOptions;
}

export type JobState = 'completed' | 'failed' | 'active' | 'delayed' | 'prioritized' | 'waiting' | 'waiting-children' | 'unknown';
export const JOB_COUNT_TYPES = ['waiting', 'prioritized', 'active', 'delayed', 'completed', 'failed', 'waiting-children'] as const;
export type JobCounts = Record<(typeof JOB_COUNT_TYPES)[number], number>;

/** A job as services see it: plain data, no BullMQ handle. */
export interface JobRecord<Data> {
  id: string;
  data: Data;
  priority: number;
  attemptsMade: number;
  attemptsStarted: number;
  attempts: number;
  failedReason: string | null;
  /** Errors of earlier attempts, oldest first (BullMQ keeps the most recent ones). */
  errors: string[];
  queuedAt: number;
  processedOn: number | null;
  finishedOn: number | null;
  returnValue: unknown;
}

export class JobNotInQueueError extends Error {
  constructor(readonly jobId: string) { super(`no job ${jobId}`); }
}

/**
 * One BullMQ queue behind plain methods: add by key, look up, count, pause/resume/drain, failed
 * jobs, retry and remove by id, and the consumer side (`createWorker`) with the same name and prefix.
 */
export class JobRepository<Data, Key> {
  /** The BullMQ queue itself, for the read-only job browser (bull-board) and tests only. */
  readonly queue: Queue<Data>;

  constructor(connection: Redis, private readonly prefix: string, readonly definition: JobQueueDefinition<Data, Key>) {
    this.queue = new Queue<Data>(definition.name, { connection, prefix });
  }

  get name(): string {
    return this.definition.name;
  }

  jobId(key: Key): string {
    return this.definition.jobId(key);
  }

  async add(key: Key, data: Data, opts: { priority?: number } = {}): Promise<void> {
    // BullMQ's generic job-name typing does not narrow to a plain string; the cast stays here.
    await (this.queue as Queue).add(this.definition.jobName, data, { ...this.definition.options, ...opts, jobId: this.jobId(key) });
  }

  async has(key: Key): Promise<boolean> {
    return (await this.queue.getJob(this.jobId(key))) !== undefined;
  }

  async find(key: Key): Promise<(JobRecord<Data> & { state: JobState }) | undefined> {
    return this.get(this.jobId(key));
  }

  async get(id: string): Promise<(JobRecord<Data> & { state: JobState }) | undefined> {
    const job = await this.queue.getJob(id);
    if (!job) return undefined;
    return { ...toRecord(job), state: (await job.getState()) as JobState };
  }

  async counts(): Promise<JobCounts> {
    const raw = await this.queue.getJobCounts(...JOB_COUNT_TYPES);
    return Object.fromEntries(JOB_COUNT_TYPES.map((t) => [t, Number(raw[t] ?? 0)])) as JobCounts;
  }

  isPaused(): Promise<boolean> {
    return this.queue.isPaused();
  }

  pause(): Promise<void> {
    return this.queue.pause();
  }

  resume(): Promise<void> {
    return this.queue.resume();
  }

  /** Removes waiting, prioritized and delayed jobs; returns how many went. Jobs in progress finish. */
  async drain(): Promise<number> {
    const waiting = async () => Object.values(await this.queue.getJobCounts('waiting', 'prioritized', 'delayed')).reduce((a, b) => a + Number(b ?? 0), 0);
    const before = await waiting();
    await this.queue.drain(true);
    return Math.max(0, before - (await waiting()));
  }

  failedCount(): Promise<number> {
    return this.queue.getFailedCount();
  }

  /** Failed jobs, newest failure first. */
  async failed(offset: number, limit: number): Promise<JobRecord<Data>[]> {
    return (await this.queue.getFailed(offset, offset + limit - 1)).filter(Boolean).map(toRecord);
  }

  /** Ids of every failed job, newest failure first (ids only: cheap, for filtering before loading). */
  failedIds(): Promise<string[]> {
    return this.queue.getRanges(['failed'], 0, -1, false);
  }

  async logs(id: string, limit = 100): Promise<string[]> {
    return (await this.queue.getJobLogs(id, 0, limit - 1)).logs;
  }

  /** Puts a failed job back with fresh attempts. */
  async retry(id: string): Promise<void> {
    const job = await this.queue.getJob(id);
    if (!job) throw new JobNotInQueueError(id);
    await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
  }

  async remove(id: string): Promise<void> {
    const job = await this.queue.getJob(id);
    if (!job) throw new JobNotInQueueError(id);
    await job.remove();
  }

  onError(listener: (error: Error) => void): void {
    this.queue.on('error', listener);
  }

  /** The consumer: a BullMQ Worker on this queue (own connection: a worker blocks it). Not started until `run()`. */
  createWorker(processor: Processor<Data>, opts: Omit<WorkerOptions, 'prefix' | 'autorun'>): Worker<Data> {
    return new Worker<Data>(this.definition.name, processor, { ...opts, prefix: this.prefix, autorun: false });
  }

  close(): Promise<void> {
    return this.queue.close();
  }
}

function toRecord<Data>(job: Job<Data>): JobRecord<Data> {
  return {
    id: String(job.id),
    data: job.data,
    priority: job.priority,
    attemptsMade: job.attemptsMade,
    attemptsStarted: job.attemptsStarted,
    attempts: job.opts.attempts ?? 1,
    failedReason: job.failedReason || null,
    errors: job.stacktrace ?? [],
    queuedAt: job.timestamp,
    processedOn: job.processedOn ?? null,
    finishedOn: job.finishedOn ?? null,
    returnValue: job.returnvalue ?? null,
  };
}
