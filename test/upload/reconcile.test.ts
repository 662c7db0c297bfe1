import type { ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Worker } from 'bullmq';
import { CLASSIFY_QUEUE, classifyJobId } from '../../services/core/queue/classify-queue.js';
import { makeDx, multipart } from '../helpers/dicom.js';
import { databases, startSystem, stow, type TestSystem } from '../helpers/system.js';
import { freePort, startRedis } from '../helpers/redis-server.js';

describe.each(await databases())('reconciler on %s: the database is the record, Redis can forget', (db) => {
  let system: TestSystem;
  let redis: ChildProcess;
  let port: number;
  beforeAll(async () => {
    port = await freePort();
    redis = await startRedis(port);
    system = await startSystem({ db, redisUrl: `redis://127.0.0.1:${port}` });
  });
  afterAll(async () => {
    await system?.close();
    redis?.kill('SIGKILL');
  });

  const send = (bytes: Buffer) => {
    const body = multipart([bytes]);
    return stow(system, body.body, body.contentType);
  };

  it('re-queues every accepted image after Redis loses its data, without duplicating any', async () => {
    const sent = [makeDx(), makeDx(), makeDx()];
    for (const dx of sent) expect((await send(dx.bytes)).status).toBe(200);
    const admin = new Redis({ port });
    await admin.flushall();
    for (const dx of sent) expect(await system.core.jobs.classify.has({ siteId: 'site-a', sopInstanceUid: dx.sopInstanceUid })).toBe(false);

    expect(await system.core.services.reconcile.requeueMissing()).toBe(3);
    for (const dx of sent) expect(await system.core.jobs.classify.has({ siteId: 'site-a', sopInstanceUid: dx.sopInstanceUid })).toBe(true);
    // A second pass finds nothing missing: no duplicate jobs.
    expect(await system.core.services.reconcile.requeueMissing()).toBe(0);
    const counts = await system.core.jobs.classify.queue.getJobCounts('waiting', 'prioritized');
    expect(counts.waiting + counts.prioritized).toBe(3);
    admin.disconnect();
  });

  it('does not take a finished job of an earlier row with the same key (data folder reset, Redis kept its jobs) for the new row\'s', async () => {
    const dx = makeDx();
    const key = { siteId: 'site-a', sopInstanceUid: dx.sopInstanceUid };
    // What an earlier installation on the same Redis left: the job of this very instance, done.
    await system.core.jobs.classify.add(key, { instanceId: 999_999, siteId: 'site-a' });
    const connection = new Redis({ port, maxRetriesPerRequest: null });
    const worker = new Worker(CLASSIFY_QUEUE, async () => 'done by an earlier installation', { connection, prefix: system.core.config.queuePrefix });
    try {
      for (let i = 0; i < 100 && (await system.core.jobs.classify.find(key))?.state !== 'completed'; i++) await new Promise((r) => setTimeout(r, 50));
    } finally {
      await worker.close();
      connection.disconnect();
    }
    expect((await system.core.jobs.classify.find(key))?.state).toBe('completed');

    expect((await send(dx.bytes)).status).toBe(200); // its own add is a no-op: the id is taken
    const row = (await system.core.repos.instances.findBySop('site-a', dx.sopInstanceUid))!;
    expect(row.status).toBe('queued');
    expect(await system.core.services.reconcile.requeueMissing()).toBe(1);
    const job = (await system.core.jobs.classify.find(key))!;
    expect(job.data.instanceId).toBe(row.id);
    expect(['waiting', 'prioritized']).toContain(job.state);
    expect(await system.core.services.reconcile.requeueMissing()).toBe(0);
  });

  it('stores uploads while Redis is down and queues them once it is back', async () => {
    redis.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 200));
    const dx = makeDx();
    const res = await send(dx.bytes);
    expect(res.status).toBe(200);
    const row = await system.core.repos.instances.findBySop('site-a', dx.sopInstanceUid);
    // Recorded (and so acknowledged) even though the job could not be added yet.
    expect(row?.status).toBe('queued');

    redis = await startRedis(port);
    // ioredis reconnects on its own; give it a moment, then reconcile.
    for (let i = 0; i < 50 && system.core.redis.status !== 'ready'; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await system.core.services.reconcile.requeueMissing()).toBeGreaterThanOrEqual(1);
    const job = await system.core.jobs.classify.queue.getJob(classifyJobId('site-a', dx.sopInstanceUid));
    expect(job?.data.instanceId).toBe(row!.id);
    expect((await system.core.repos.instances.findBySop('site-a', dx.sopInstanceUid))?.status).toBe('queued');
  });
});
