import { UnrecoverableError, Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLASSIFY_QUEUE, redisConnection } from '../../services/core/queue/classify-queue.js';
import { makeDx, multipart } from '../helpers/dicom.js';
import { waitFor } from '../helpers/processes.js';
import { REDIS_URL, startSystem, stow, type TestSystem } from '../helpers/system.js';

/**
 * A job can end in BullMQ's failed set without the worker recording a result: it stalled more
 * than maxStalledCount times (an image that kills every worker that touches it), or the worker
 * died while recording. The instance then stayed "processing" for ever — the reconciler saw a job
 * and left it — so an acknowledged image had neither a result nor a recorded failure.
 */
describe('reconciler: a job that failed without a result gets a recorded final failure', () => {
  let system: TestSystem;
  beforeAll(async () => { system = await startSystem(); });
  afterAll(() => system?.close());

  it('records the failure (with BullMQ\'s reason) and finishes the instance', async () => {
    const dx = makeDx();
    const body = multipart([dx.bytes]);
    expect((await stow(system, body.body, body.contentType)).status).toBe(200);
    const row = (await system.core.repos.instances.findBySop('site-a', dx.sopInstanceUid))!;

    // A worker that dies on it, as far as the record is concerned: marks it processing, never stores.
    const connection = redisConnection(REDIS_URL);
    const worker = new Worker(CLASSIFY_QUEUE, async (job) => {
      await system.core.repos.instances.markProcessing(job.data.instanceId);
      throw new UnrecoverableError('job stalled more than allowable limit');
    }, { connection, prefix: system.config.queuePrefix });
    try {
      await waitFor(async () => (await system.core.jobs.classify.queue.getJobCounts('failed')).failed === 1, 20_000, 'the job to fail');
    } finally {
      await worker.close();
      connection.disconnect();
    }
    expect((await system.core.repos.instances.get(row.id))?.status).toBe('processing');

    await system.core.services.reconcile.requeueMissing();
    const result = await system.core.repos.aiResults.byInstance(row.id);
    expect(result).toMatchObject({ status: 'failed', reason: expect.stringMatching(/stalled more than allowable limit/) });
    expect((await system.core.repos.instances.get(row.id))?.status).toBe('failed');
    // Idempotent: a second pass changes nothing.
    await system.core.services.reconcile.requeueMissing();
    expect((await system.core.database.db.selectFrom('ai_results').selectAll().execute()).length).toBe(1);
  });
});
