import { UnrecoverableError, Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLASSIFY_QUEUE, redisConnection, type ClassifyJobData } from '../../services/core/queue/classify-queue.js';
import { makeDx, multipart } from '../helpers/dicom.js';
import { startSystem, stow, type TestSystem } from '../helpers/system.js';
import { call, login, PASSWORD, waitFor, type Session } from './helpers.js';

/**
 * Issue 16, M8: an admin sees and changes only their sites' jobs; the deployment-wide operations
 * (pause, resume, drain) and bull-board (every site's jobs) need the superadmin role.
 */
// Generous: every sign-in runs scrypt, slow on a loaded machine.
describe("admins are scoped to their sites' jobs", { timeout: 90_000 }, () => {
  let system: TestSystem;
  let worker: Worker<ClassifyJobData>;
  let adminA: Session;
  let adminB: Session;
  let superadmin: Session;
  let jobA: string;
  let jobB: string;

  beforeAll(async () => {
    system = await startSystem();
    const auth = system.core.services.auth;
    await auth.createUser({ username: 'admin-a', password: PASSWORD, role: 'admin', siteIds: ['site-a'] });
    await auth.createUser({ username: 'admin-b', password: PASSWORD, role: 'admin', siteIds: ['site-b'] });
    await auth.createUser({ username: 'root', password: PASSWORD, role: 'superadmin', siteIds: [] });
    [adminA, adminB, superadmin] = [await login(system.url, 'admin-a'), await login(system.url, 'admin-b'), await login(system.url, 'root')];
    // Every job fails: one image per site.
    worker = new Worker<ClassifyJobData>(CLASSIFY_QUEUE, async () => { throw new UnrecoverableError('cannot decode the image: test failure'); },
      { connection: redisConnection(system.config.redisUrl), prefix: system.config.queuePrefix });
    const a = makeDx({ accession: 'ACC-SITE-A' });
    const b = makeDx({ accession: 'ACC-SITE-B' });
    for (const [dx, key] of [[a, system.keys.a], [b, system.keys.b]] as const) {
      const body = multipart([dx.bytes]);
      expect((await stow(system, body.body, body.contentType, { key })).status).toBe(200);
    }
    jobA = `sop-site-a-${a.sopInstanceUid}`;
    jobB = `sop-site-b-${b.sopInstanceUid}`;
    await waitFor(async () => (await system.core.jobs.classify.queue.getJobCounts('failed')).failed === 2, 30_000, 'both jobs failed');
  });
  afterAll(async () => {
    await worker?.close();
    await system?.close();
  });

  it("site B's admin cannot list, search, open, retry or remove site A's jobs", async () => {
    const list = await call(system.url, adminB, '/api/admin/jobs/failed');
    expect(list.json.total).toBe(1);
    expect(list.json.jobs.map((j: { id: string }) => j.id)).toEqual([jobB]);
    expect(list.text).not.toContain('ACC-SITE-A');
    expect((await call(system.url, adminB, '/api/admin/jobs/failed?q=ACC-SITE-A')).json).toEqual({ total: 0, jobs: [] });
    const path = `/api/admin/jobs/${encodeURIComponent(jobA)}`;
    expect((await call(system.url, adminB, path)).status).toBe(404);
    expect((await call(system.url, adminB, `${path}/retry`, { method: 'POST' })).status).toBe(404);
    expect((await call(system.url, adminB, path, { method: 'DELETE' })).status).toBe(404);
    // "Retry all" touches site B's job only.
    expect((await call(system.url, adminB, '/api/admin/jobs/failed/retry', { method: 'POST' })).json).toMatchObject({ retried: 1 });
    expect(await (await system.core.jobs.classify.queue.getJob(jobA))!.getState()).toBe('failed');
    const actions = await call(system.url, adminA, '/api/admin/actions');
    expect(actions.text).not.toContain(jobB);
  });

  it("site A's admin sees site A's job; the superadmin sees every site's", async () => {
    await waitFor(async () => (await system.core.jobs.classify.queue.getJobCounts('failed')).failed === 2, 30_000, "site B's retried job to fail again");
    expect((await call(system.url, adminA, '/api/admin/jobs/failed')).json.jobs.map((j: { id: string }) => j.id)).toEqual([jobA]);
    expect((await call(system.url, adminA, `/api/admin/jobs/${encodeURIComponent(jobA)}`)).status).toBe(200);
    const all = await call(system.url, superadmin, '/api/admin/jobs/failed');
    expect(all.json.jobs.map((j: { id: string }) => j.id).sort()).toEqual([jobA, jobB].sort());
  });

  it('pause, resume, drain and bull-board need the superadmin role', async () => {
    for (const action of ['pause', 'resume', 'drain']) {
      expect((await call(system.url, adminB, `/api/admin/queue/${action}`, { method: 'POST' })).status, action).toBe(403);
    }
    expect(await system.core.jobs.classify.queue.isPaused()).toBe(false);
    expect((await call(system.url, adminB, '/admin/queues/api/queues')).status).toBe(403);
    expect((await call(system.url, superadmin, '/api/admin/queue/pause', { method: 'POST' })).status).toBe(200);
    expect(await system.core.jobs.classify.queue.isPaused()).toBe(true);
    expect((await call(system.url, superadmin, '/api/admin/queue/resume', { method: 'POST' })).status).toBe(200);
    expect((await call(system.url, superadmin, '/admin/queues/api/queues?activeQueue=classify&status=failed&page=1')).status).toBe(200);
  });

  it('answers 400 to an absurd offset instead of 503', async () => {
    expect((await call(system.url, superadmin, '/api/admin/jobs/failed?offset=100000000000000000000')).status).toBe(400);
    expect((await call(system.url, adminB, '/api/admin/jobs/failed?offset=1000000')).status).toBe(200);
  });
});
