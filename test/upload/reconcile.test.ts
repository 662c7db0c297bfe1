import type { ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifyJobId } from '../../services/core/queue/classify-queue.js';
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
