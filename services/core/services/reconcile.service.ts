import type { Logger } from '../logger.js';
import type { ClassifyJobs } from '../queue/classify-queue.js';
import type { AiResultRepository } from '../repositories/ai-result.repository.js';
import type { InstanceRepository } from '../repositories/instance.repository.js';
import { ORPHAN_GRACE_MS, type StorageRepository } from '../repositories/storage.repository.js';

/**
 * The database is the record of what is pending; Redis is a cache of it. The reconciler makes
 * Redis agree: every instance not yet done gets its job back (same job id, so no duplicates), and
 * files that no row points to (a crash between rename and commit) are removed after a grace period.
 * A job that ended failed without the worker recording anything (it stalled more than the allowed
 * number of times: an image that kills every worker touching it) gets its final failure recorded,
 * so every image ends with a result or a recorded failure.
 */
export class ReconcileService {
  constructor(
    private readonly instances: InstanceRepository,
    private readonly jobs: ClassifyJobs,
    private readonly storage: StorageRepository,
    private readonly log: Logger,
    private readonly results?: AiResultRepository,
  ) {}

  async requeueMissing(batchSize = 500): Promise<number> {
    let requeued = 0;
    let afterId = 0;
    for (;;) {
      const batch = await this.instances.listUnfinished(afterId, batchSize);
      if (!batch.length) break;
      for (const instance of batch) {
        if (instance.status === 'queued' || instance.status === 'processing') {
          const job = await this.jobs.find({ siteId: instance.site_id, sopInstanceUid: instance.sop_instance_uid });
          // A finished job queued before this row was received is an earlier row's with the same key (the
          // data folder reset against a Redis that kept its jobs, or the instance stored again): adding
          // ours was a no-op, so it goes, and ours is added below.
          const earlierRows = job && (job.state === 'completed' || job.state === 'failed') && job.queuedAt < instance.received_at;
          if (job && !earlierRows) {
            if (this.results && job.state === 'failed') await this.recordFailedJob(instance.id, job.failedReason ?? undefined);
            continue;
          }
          if (job) await this.jobs.remove(job.id);
        }
        await this.jobs.add({ siteId: instance.site_id, sopInstanceUid: instance.sop_instance_uid }, { instanceId: instance.id, siteId: instance.site_id }, { priority: instance.priority });
        await this.instances.markQueued([instance.id]);
        requeued++;
      }
      afterId = batch[batch.length - 1].id;
    }
    if (requeued) this.log.info({ requeued }, 'reconciler re-queued instances missing from Redis');
    return requeued;
  }

  private async recordFailedJob(instanceId: number, failedReason: string | undefined): Promise<void> {
    const row = await this.instances.get(instanceId);
    if (!row || (await this.results!.byInstance(instanceId))) return;
    await this.results!.store({
      instance_id: row.id, site_id: row.site_id, study_id: row.study_id, status: 'failed',
      model_name: null, model_version: null, backend: null, probability: null, raw_score: null, flag: null, boxes: null, heatmap_key: null,
      reason: `classify job failed: ${failedReason ?? 'unknown reason'}`,
      queued_at: row.queued_at, started_at: null, decoded_at: null, inferred_at: null, stored_at: Date.now(),
    });
    this.log.warn({ instanceId }, 'classify job failed without a result; recorded the failure');
  }

  /** Removes stored files with no database row, unchanged for `graceMs` (a file being received is touched more often: TOUCH_EVERY_MS). */
  async removeOrphanFiles(graceMs = ORPHAN_GRACE_MS, tempGraceMs = graceMs): Promise<number> {
    let removed = 0;
    const cutoff = Date.now() - graceMs;
    for await (const object of this.storage.listObjects()) {
      if (object.mtimeMs > cutoff) continue;
      if (await this.instances.hasStorageKey(object.key)) continue;
      await this.storage.remove(object.key);
      removed++;
    }
    removed += await this.storage.sweepTemp(tempGraceMs);
    if (removed) this.log.info({ removed }, 'removed orphan files left by interrupted uploads');
    return removed;
  }
}
