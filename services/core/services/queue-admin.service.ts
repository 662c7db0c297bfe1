import fs from 'node:fs/promises';
import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { ClassifyJobData, ClassifyQueue } from '../queue/classify-queue.js';
import { listWorkers, type WorkerHeartbeat } from '../queue/worker-registry.js';
import type { AuditRepository } from '../repositories/audit.repository.js';
import type { InstanceRef, PipelineStatsRepository } from '../repositories/pipeline-stats.repository.js';

/** Who asked for an admin action (recorded in the audit log). */
export interface Actor {
  id: string;
  username?: string;
}

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

export type QueueCounts = Record<'waiting' | 'prioritized' | 'active' | 'delayed' | 'completed' | 'failed' | 'waiting-children', number>;

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

const JOB_COUNT_TYPES = ['waiting', 'prioritized', 'active', 'delayed', 'completed', 'failed', 'waiting-children'] as const;

function withTimeout<T>(promise: Promise<T>, ms = 1_500): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error('timeout')), ms); }),
  ]);
}

export class JobNotFoundError extends Error {
  readonly statusCode = 404;
  readonly code = 'Not Found';
  constructor(id: string) { super(`no job ${id}`); }
}

export class JobStateError extends Error {
  readonly statusCode = 409;
  readonly code = 'Conflict';
}

/**
 * What admins see and do with the classify pipeline: queue counts, workers, dependencies, disk;
 * failed jobs (list, search, history, retry, remove); pause, resume and drain. Every change is
 * written to the audit log.
 */
export class QueueAdminService {
  constructor(
    private readonly queue: ClassifyQueue,
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly stats: PipelineStatsRepository,
    private readonly audit: AuditRepository,
    private readonly dataDir: string,
  ) {}

  private get q() {
    return this.queue.queue;
  }

  async queueOverview(): Promise<QueueOverview> {
    const [raw, paused, oldest] = await Promise.all([
      withTimeout(this.q.getJobCounts(...JOB_COUNT_TYPES)),
      withTimeout(this.q.isPaused()),
      this.stats.oldestQueuedAt().catch(() => null),
    ]);
    const counts = Object.fromEntries(JOB_COUNT_TYPES.map((t) => [t, Number(raw[t] ?? 0)])) as QueueCounts;
    return {
      name: this.q.name,
      paused,
      counts,
      waitingTotal: counts.waiting + counts.prioritized,
      oldestWaitingAgeSec: oldest === null ? null : Math.max(0, (Date.now() - oldest) / 1000),
    };
  }

  workers(): Promise<(WorkerHeartbeat & { alive: boolean })[]> {
    return withTimeout(listWorkers(this.redis, this.prefix));
  }

  async health(): Promise<{ redis: Health; database: Health }> {
    const [redis, database] = await Promise.all([
      withTimeout(this.redis.ping(), 1_000).then(() => 'ok' as const, () => 'unreachable' as const),
      withTimeout(this.stats.ping(), 1_000).then(() => 'ok' as const, () => 'unreachable' as const),
    ]);
    return { redis, database };
  }

  /** Free and total space of the filesystem that holds the data folder. */
  async disk(): Promise<{ path: string; freeBytes: number; totalBytes: number; usedFraction: number } | null> {
    try {
      const s = await fs.statfs(this.dataDir);
      const totalBytes = s.blocks * s.bsize;
      const freeBytes = s.bavail * s.bsize;
      return { path: this.dataDir, freeBytes, totalBytes, usedFraction: totalBytes ? 1 - freeBytes / totalBytes : 0 };
    } catch {
      return null;
    }
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

  throughput(minutes = 60) {
    return this.stats.window({ minutes });
  }

  // ---------------------------------------------------------------------------------------------
  // Failed jobs

  private toFailed(job: Job<ClassifyJobData>, ref: InstanceRef | undefined): FailedJob {
    return {
      id: String(job.id),
      instanceId: typeof job.data?.instanceId === 'number' ? job.data.instanceId : null,
      siteId: job.data?.siteId ?? null,
      failedReason: job.failedReason ?? '',
      attemptsMade: job.attemptsMade,
      attempts: job.opts.attempts ?? 1,
      queuedAt: job.timestamp,
      processedOn: job.processedOn ?? null,
      finishedOn: job.finishedOn ?? null,
      sopInstanceUid: ref?.sopInstanceUid ?? null,
      studyUid: ref?.studyUid ?? null,
      accessionNumber: ref?.accessionNumber ?? null,
    };
  }

  private async withRefs(jobs: Job<ClassifyJobData>[]): Promise<FailedJob[]> {
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
        const job = await this.q.getJob(`sop-${ref.siteId}-${ref.sopInstanceUid}`);
        return job && (await job.getState()) === 'failed' ? this.toFailed(job, ref) : undefined;
      }));
      const jobs = found.filter((j): j is FailedJob => j !== undefined).sort((a, b) => (b.finishedOn ?? 0) - (a.finishedOn ?? 0));
      return { total: jobs.length, jobs: jobs.slice(offset, offset + limit) };
    }
    if (scope === 'all') {
      const [total, jobs] = await Promise.all([this.q.getFailedCount(), this.q.getFailed(offset, offset + limit - 1)]);
      return { total, jobs: await this.withRefs(jobs.filter(Boolean)) };
    }
    // A site admin: the failed ids (newest first) filtered by site, then only one page of jobs loaded.
    const ids = (await this.q.getRanges(['failed'], 0, -1, false)).filter((id) => jobInScope(id, scope));
    const page = await Promise.all(ids.slice(offset, offset + limit).map((id) => this.q.getJob(id)));
    return { total: ids.length, jobs: await this.withRefs(page.filter((j): j is Job<ClassifyJobData> => Boolean(j))) };
  }

  private async job(id: string, scope: JobScope = 'all'): Promise<Job<ClassifyJobData>> {
    const job = jobInScope(id, scope) ? await this.q.getJob(id) : undefined;
    if (!job) throw new JobNotFoundError(id);
    return job;
  }

  /** A job's history: BullMQ's record (attempts, errors, times, logs), the stored AI result, and audited actions. */
  async jobHistory(id: string, scope: JobScope = 'all') {
    const job = await this.job(id, scope);
    const instanceId = typeof job.data?.instanceId === 'number' ? job.data.instanceId : undefined;
    const [state, logs, refs, result, audit] = await Promise.all([
      job.getState(),
      this.q.getJobLogs(id, 0, 99),
      instanceId === undefined ? new Map<number, InstanceRef>() : this.stats.instanceRefs([instanceId]),
      instanceId === undefined ? undefined : this.stats.aiResult(instanceId),
      this.stats.jobAudit(id),
    ]);
    const ref = instanceId === undefined ? undefined : refs.get(instanceId);
    return {
      id: String(job.id),
      state,
      data: job.data,
      priority: job.priority,
      attemptsMade: job.attemptsMade,
      attemptsStarted: job.attemptsStarted,
      attempts: job.opts.attempts ?? 1,
      failedReason: job.failedReason || null,
      /** Errors of earlier attempts, oldest first (BullMQ keeps the most recent ones). */
      errors: job.stacktrace ?? [],
      queuedAt: job.timestamp,
      processedOn: job.processedOn ?? null,
      finishedOn: job.finishedOn ?? null,
      returnValue: job.returnvalue ?? null,
      logs: logs.logs,
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
    const state = await job.getState();
    if (state !== 'failed') throw new JobStateError(`job is ${state}, only failed jobs can be retried`);
    const previous = { previousReason: job.failedReason || null, attemptsMade: job.attemptsMade };
    if (typeof job.data?.instanceId === 'number') await this.stats.markRequeued([job.data.instanceId]);
    await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
    await this.record(actor, 'queue.job_retry', { type: 'job', id }, previous);
  }

  /** Retries every failed job (up to `max` in one call); returns how many went back and how many are left. */
  async retryAll(actor: Actor, max = 10_000, scope: JobScope = 'all'): Promise<{ retried: number; remaining: number }> {
    let retried = 0;
    while (retried < max) {
      const batch = scope === 'all'
        ? (await this.q.getFailed(0, Math.min(499, max - retried - 1))).filter(Boolean)
        : await this.scopedFailed(scope, Math.min(500, max - retried));
      if (!batch.length) break;
      await this.stats.markRequeued(batch.map((j) => j.data?.instanceId).filter((x): x is number => typeof x === 'number'));
      let moved = 0;
      for (const job of batch) {
        try {
          await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
          moved++;
        } catch {
          // Retried or removed by someone else meanwhile.
        }
      }
      retried += moved;
      if (!moved) break;
    }
    const remaining = scope === 'all' ? await this.q.getFailedCount() : (await this.failedJobs({ limit: 1 }, scope)).total;
    await this.record(actor, 'queue.retry_all', { type: 'queue', id: this.q.name }, { retried, remaining, ...(scope === 'all' ? {} : { sites: scope }) });
    return { retried, remaining };
  }

  private async scopedFailed(scope: JobScope, count: number): Promise<Job<ClassifyJobData>[]> {
    const ids = (await this.q.getRanges(['failed'], 0, -1, false)).filter((id) => jobInScope(id, scope)).slice(0, count);
    return (await Promise.all(ids.map((id) => this.q.getJob(id)))).filter((j): j is Job<ClassifyJobData> => Boolean(j));
  }

  /** Removes a job (not one being processed). Its image stays failed in the database. */
  async remove(id: string, actor: Actor, scope: JobScope = 'all'): Promise<void> {
    const job = await this.job(id, scope);
    const state = await job.getState();
    if (state === 'active') throw new JobStateError('job is being processed; it cannot be removed now');
    await job.remove();
    await this.record(actor, 'queue.job_remove', { type: 'job', id }, { state, failedReason: job.failedReason || null });
  }

  async pause(actor: Actor): Promise<void> {
    await this.q.pause();
    await this.record(actor, 'queue.pause', { type: 'queue', id: this.q.name });
  }

  async resume(actor: Actor): Promise<void> {
    await this.q.resume();
    await this.record(actor, 'queue.resume', { type: 'queue', id: this.q.name });
  }

  /**
   * Removes waiting, prioritized and delayed jobs (BullMQ drain); jobs in progress finish. The
   * database still lists those images as unclassified, so the reconciler queues them again on its
   * next pass: drain resets Redis, it does not discard images from triage.
   */
  async drain(actor: Actor): Promise<{ removed: number }> {
    const before = await this.q.getJobCounts('waiting', 'prioritized', 'delayed');
    await this.q.drain(true);
    const after = await this.q.getJobCounts('waiting', 'prioritized', 'delayed');
    const sum = (c: Record<string, number>) => Object.values(c).reduce((a, b) => a + Number(b ?? 0), 0);
    const removed = Math.max(0, sum(before) - sum(after));
    await this.record(actor, 'queue.drain', { type: 'queue', id: this.q.name }, { removed });
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
