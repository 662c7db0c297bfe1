import { AppError } from '../errors.js';
import type { ClassifyJobData, ClassifyJobs } from '../queue/classify-queue.js';
import type { AuditRepository } from '../repositories/audit.repository.js';
import type { HeartbeatRepository, WorkerHeartbeat } from '../repositories/heartbeat.repository.js';
import { JobNotInQueueError, type JobCounts, type JobRecord } from '../repositories/job.repository.js';
import type { InstanceRef, PipelineStatsRepository } from '../repositories/pipeline-stats.repository.js';
import type { DiskUsage, StorageRepository } from '../repositories/storage.repository.js';

/** Who asked for an admin action (recorded in the audit log). */
export interface Actor {
  id: string;
  username?: string;
}

export type QueueCounts = JobCounts;

/**
 * Whose jobs an admin may see and change: every site's (a superadmin) or those of their sites.
 * Jobs outside the scope answer as if they did not exist (404), so their ids are not confirmed.
 */
export type JobScope = 'all' | readonly string[];

/** Job ids are `sop-<site>-<SOP Instance UID>`; a UID starts with a digit, so "sop-a-" never matches site "a-b"'s jobs. */
export function jobInScope(jobId: string, scope: JobScope): boolean {
  if (scope === 'all') return true;
  return scope.some((site) => jobId.startsWith(`sop-${site}-`) && /\d/.test(jobId.charAt(site.length + 5)));
}

export interface QueueOverview {
  name: string;
  paused: boolean;
  counts: QueueCounts;
  /** waiting + prioritized: every job a worker could take next (BullMQ keeps jobs with a priority apart). */
  waitingTotal: number;
  /** Age of the oldest image still queued for the AI (database view), seconds; null when none. */
  oldestWaitingAgeSec: number | null;
}

export interface FailedJob {
  id: string;
  instanceId: number | null;
  siteId: string | null;
  failedReason: string;
  attemptsMade: number;
  attempts: number;
  queuedAt: number;
  processedOn: number | null;
  finishedOn: number | null;
  sopInstanceUid: string | null;
  studyUid: string | null;
  accessionNumber: string | null;
}

type Health = 'ok' | 'unreachable';

function withTimeout<T>(promise: Promise<T>, ms = 1_500): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error('timeout')), ms); }),
  ]);
}

/**
 * What admins see and do with the classify pipeline: queue counts, workers, dependencies, disk;
 * failed jobs (list, search, history, retry, remove); pause, resume and drain. Every change is
 * written to the audit log.
 */
export class QueueAdminService {
  constructor(
    private readonly jobs: ClassifyJobs,
    private readonly heartbeats: HeartbeatRepository,
    private readonly stats: PipelineStatsRepository,
    private readonly audit: AuditRepository,
    private readonly storage: StorageRepository,
  ) {}

  async queueOverview(): Promise<QueueOverview> {
    const [counts, paused, oldest] = await Promise.all([
      withTimeout(this.jobs.counts()),
      withTimeout(this.jobs.isPaused()),
      this.stats.oldestQueuedAt().catch(() => null),
    ]);
    return {
      name: this.jobs.name,
      paused,
      counts,
      waitingTotal: counts.waiting + counts.prioritized,
      oldestWaitingAgeSec: oldest === null ? null : Math.max(0, (Date.now() - oldest) / 1000),
    };
  }

  workers(): Promise<(WorkerHeartbeat & { alive: boolean })[]> {
    return withTimeout(this.heartbeats.list());
  }

  async health(): Promise<{ redis: Health; database: Health }> {
    const [redis, database] = await Promise.all([
      withTimeout(this.heartbeats.ping(), 1_000).then(() => 'ok' as const, () => 'unreachable' as const),
      withTimeout(this.stats.ping(), 1_000).then(() => 'ok' as const, () => 'unreachable' as const),
    ]);
    return { redis, database };
  }

  /** Free and total space of the filesystem that holds the data folder. */
  disk(): Promise<DiskUsage | null> {
    return this.storage.diskUsage().catch(() => null);
  }

  /** Everything on the dashboard but the charts; each part fails on its own (null) when its source is away. */
  async overview() {
    const settle = <T>(p: Promise<T>) => p.then((v) => v, () => null);
    const [queue, workers, health, disk, instances] = await Promise.all([
      settle(this.queueOverview()),
      settle(this.workers()),
      this.health(),
      this.disk(),
      settle(this.stats.instancesByStatus()),
    ]);
    return { at: Date.now(), queue, workers, health, disk, instances };
  }

  /** Results per minute and stage times over the last `minutes`, from at most `maxRows` results. */
  throughput(minutes = 60, maxRows?: number) {
    return this.stats.window({ minutes, maxRows });
  }

  /** Stored images by pipeline status (database). */
  instancesByStatus() {
    return this.stats.instancesByStatus();
  }

  /** AI results by status and flag level (database). */
  resultsByFlag() {
    return this.stats.resultsByFlag();
  }

  /** The BullMQ queues, for the read-only job browser (bull-board needs the queue objects themselves). */
  browsableQueues() {
    return [this.jobs.queue];
  }

  // ---------------------------------------------------------------------------------------------
  // Failed jobs

  private toFailed(job: JobRecord<ClassifyJobData>, ref: InstanceRef | undefined): FailedJob {
    return {
      id: job.id,
      instanceId: typeof job.data?.instanceId === 'number' ? job.data.instanceId : null,
      siteId: job.data?.siteId ?? null,
      failedReason: job.failedReason ?? '',
      attemptsMade: job.attemptsMade,
      attempts: job.attempts,
      queuedAt: job.queuedAt,
      processedOn: job.processedOn,
      finishedOn: job.finishedOn,
      sopInstanceUid: ref?.sopInstanceUid ?? null,
      studyUid: ref?.studyUid ?? null,
      accessionNumber: ref?.accessionNumber ?? null,
    };
  }

  private async withRefs(jobs: JobRecord<ClassifyJobData>[]): Promise<FailedJob[]> {
    const refs = await this.stats.instanceRefs(jobs.map((j) => j.data?.instanceId).filter((id): id is number => typeof id === 'number'));
    return jobs.map((job) => this.toFailed(job, refs.get(job.data?.instanceId)));
  }

  /**
   * Failed jobs, newest failure first. With `q`, only jobs of instances whose SOP Instance UID,
   * Study Instance UID or accession number is exactly `q` (looked up in the database, then their
   * jobs fetched by id).
   */
  async failedJobs(opts: { q?: string; offset?: number; limit?: number } = {}, scope: JobScope = 'all'): Promise<{ total: number; jobs: FailedJob[] }> {
    const offset = Math.max(0, opts.offset ?? 0);
    const limit = Math.min(Math.max(1, opts.limit ?? 50), 500);
    const term = opts.q?.trim();
    if (term) {
      const refs = (await this.stats.findInstances(term)).filter((ref) => scope === 'all' || scope.includes(ref.siteId));
      const found = await Promise.all(refs.map(async (ref) => {
        const job = await this.jobs.find({ siteId: ref.siteId, sopInstanceUid: ref.sopInstanceUid });
        return job?.state === 'failed' ? this.toFailed(job, ref) : undefined;
      }));
      const jobs = found.filter((j): j is FailedJob => j !== undefined).sort((a, b) => (b.finishedOn ?? 0) - (a.finishedOn ?? 0));
      return { total: jobs.length, jobs: jobs.slice(offset, offset + limit) };
    }
    if (scope === 'all') {
      const [total, jobs] = await Promise.all([this.jobs.failedCount(), this.jobs.failed(offset, limit)]);
      return { total, jobs: await this.withRefs(jobs) };
    }
    // A site admin: the failed ids filtered by site, then only one page of jobs loaded.
    const ids = (await this.jobs.failedIds()).filter((id) => jobInScope(id, scope));
    return { total: ids.length, jobs: await this.withRefs(await this.load(ids.slice(offset, offset + limit))) };
  }

  private async load(ids: string[]) {
    return (await Promise.all(ids.map((id) => this.jobs.get(id)))).filter((job) => job !== undefined);
  }

  private async job(id: string, scope: JobScope = 'all') {
    const job = jobInScope(id, scope) ? await this.jobs.get(id) : undefined;
    if (!job) throw new AppError('job_not_found', `no job ${id}`);
    return job;
  }

  /** A job's history: BullMQ's record (attempts, errors, times, logs), the stored AI result, and audited actions. */
  async jobHistory(id: string, scope: JobScope = 'all') {
    const job = await this.job(id, scope);
    const instanceId = typeof job.data?.instanceId === 'number' ? job.data.instanceId : undefined;
    const [logs, refs, result, audit] = await Promise.all([
      this.jobs.logs(id, 100),
      instanceId === undefined ? new Map<number, InstanceRef>() : this.stats.instanceRefs([instanceId]),
      instanceId === undefined ? undefined : this.stats.aiResult(instanceId),
      this.stats.jobAudit(id),
    ]);
    const ref = instanceId === undefined ? undefined : refs.get(instanceId);
    const { state, data, priority, attemptsMade, attemptsStarted, attempts, failedReason, errors, queuedAt, processedOn, finishedOn, returnValue } = job;
    return {
      id: job.id, state, data, priority, attemptsMade, attemptsStarted, attempts, failedReason, errors, queuedAt, processedOn, finishedOn, returnValue,
      logs,
      instance: ref ?? null,
      result: result ?? null,
      audit: audit.map((a) => ({ ...a, details: a.details ? JSON.parse(a.details) : null })),
    };
  }

  private async record(actor: Actor, action: string, target: { type: string; id: string } | null, details: Record<string, unknown> = {}) {
    await this.audit.record({
      actor_type: 'user', actor_id: actor.id, site_id: null, action,
      target_type: target?.type ?? null, target_id: target?.id ?? null,
      details: { ...(actor.username ? { username: actor.username } : {}), ...details },
    });
  }

  /** Puts one failed job back in the queue with fresh attempts. */
  async retry(id: string, actor: Actor, scope: JobScope = 'all'): Promise<void> {
    const job = await this.job(id, scope);
    if (job.state !== 'failed') throw new AppError('job_state_conflict', `job is ${job.state}, only failed jobs can be retried`);
    const previous = { previousReason: job.failedReason, attemptsMade: job.attemptsMade };
    if (typeof job.data?.instanceId === 'number') await this.stats.markRequeued([job.data.instanceId]);
    await this.jobs.retry(id);
    await this.record(actor, 'queue.job_retry', { type: 'job', id }, previous);
  }

  /** Retries every failed job (up to `max` in one call); returns how many went back and how many are left. */
  async retryAll(actor: Actor, max = 10_000, scope: JobScope = 'all'): Promise<{ retried: number; remaining: number }> {
    let retried = 0;
    while (retried < max) {
      const count = Math.min(500, max - retried);
      const jobs = scope === 'all'
        ? await this.jobs.failed(0, count)
        : await this.load((await this.jobs.failedIds()).filter((id) => jobInScope(id, scope)).slice(0, count));
      if (!jobs.length) break;
      await this.stats.markRequeued(jobs.map((j) => j.data?.instanceId).filter((x): x is number => typeof x === 'number'));
      let moved = 0;
      for (const job of jobs) {
        try {
          await this.jobs.retry(job.id);
          moved++;
        } catch {
          // Retried or removed by someone else meanwhile.
        }
      }
      retried += moved;
      if (!moved) break;
    }
    const remaining = scope === 'all' ? await this.jobs.failedCount() : (await this.jobs.failedIds()).filter((id) => jobInScope(id, scope)).length;
    await this.record(actor, 'queue.retry_all', { type: 'queue', id: this.jobs.name }, { retried, remaining, ...(scope === 'all' ? {} : { sites: scope }) });
    return { retried, remaining };
  }

  /** Removes a job (not one being processed). Its image stays failed in the database. */
  async remove(id: string, actor: Actor, scope: JobScope = 'all'): Promise<void> {
    const job = await this.job(id, scope);
    if (job.state === 'active') throw new AppError('job_state_conflict', 'job is being processed; it cannot be removed now');
    try {
      await this.jobs.remove(id);
    } catch (error) {
      if (error instanceof JobNotInQueueError) throw new AppError('job_not_found', `no job ${id}`);
      throw error;
    }
    await this.record(actor, 'queue.job_remove', { type: 'job', id }, { state: job.state, failedReason: job.failedReason });
  }

  async pause(actor: Actor): Promise<void> {
    await this.jobs.pause();
    await this.record(actor, 'queue.pause', { type: 'queue', id: this.jobs.name });
  }

  async resume(actor: Actor): Promise<void> {
    await this.jobs.resume();
    await this.record(actor, 'queue.resume', { type: 'queue', id: this.jobs.name });
  }

  /**
   * Removes waiting, prioritized and delayed jobs (BullMQ drain); jobs in progress finish. The
   * database still lists those images as unclassified, so the reconciler queues them again on its
   * next pass: drain resets Redis, it does not discard images from triage.
   */
  async drain(actor: Actor): Promise<{ removed: number }> {
    const removed = await this.jobs.drain();
    await this.record(actor, 'queue.drain', { type: 'queue', id: this.jobs.name }, { removed });
    return { removed };
  }

  /** Recent audited queue actions; a site admin sees queue-wide ones and those on their sites' jobs. */
  async recentActions(limit = 20, scope: JobScope = 'all') {
    const rows = await this.stats.recentQueueActions(scope === 'all' ? limit : limit * 5);
    return rows
      .filter((a) => a.target_type !== 'job' || jobInScope(String(a.target_id), scope))
      .slice(0, limit)
      .map((a) => ({ ...a, details: a.details ? JSON.parse(a.details) : null }));
  }
}
