import { UnrecoverableError, Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLASSIFY_QUEUE, redisConnection, type ClassifyJobData } from '../../services/core/queue/classify-queue.js';
import { makeDx, multipart } from '../helpers/dicom.js';
import { databases, startSystem, stow, type TestSystem } from '../helpers/system.js';
import { addUsers, call, login, metric, scrape, waitFor, type Session } from './helpers.js';

const dbs = await databases();

/** Every admin API and page, with the method that reaches it. */
const ADMIN_ROUTES: [string, string][] = [
  ['GET', '/api/admin/overview'],
  ['GET', '/api/admin/throughput'],
  ['GET', '/api/admin/jobs/failed'],
  ['GET', '/api/admin/jobs/sop-site-a-1.2.3'],
  ['POST', '/api/admin/jobs/sop-site-a-1.2.3/retry'],
  ['DELETE', '/api/admin/jobs/sop-site-a-1.2.3'],
  ['POST', '/api/admin/jobs/failed/retry'],
  ['POST', '/api/admin/queue/pause'],
  ['POST', '/api/admin/queue/resume'],
  ['POST', '/api/admin/queue/drain'],
  ['GET', '/api/admin/actions'],
  ['GET', '/admin/queues'],
  ['GET', '/admin/queues/api/queues'],
  ['GET', '/admin/queues/static/favicon-32x32.png'],
];

describe.each(dbs)('admin queue API and /metrics (%s)', (db) => {
  let system: TestSystem;
  let admin: Session;
  let rad: Session;
  let worker: Worker<ClassifyJobData> | undefined;
  /** SOP Instance UIDs the stand-in worker fails. */
  const failing = new Set<string>();

  beforeAll(async () => {
    system = await startSystem({ db });
    await addUsers(system);
    admin = await login(system.url, 'ops');
    rad = await login(system.url, 'rad');
  });
  afterAll(async () => {
    await worker?.close();
    await system?.close();
  });

  /** A stand-in classify worker: fails the instances in `failing` for good, stores a result for the others. */
  function startFakeWorker() {
    worker = new Worker<ClassifyJobData>(CLASSIFY_QUEUE, async (job) => {
      const id = job.data.instanceId;
      const instance = await system.core.repos.instances.get(id);
      const base = { instance_id: id, site_id: instance!.site_id, study_id: instance!.study_id, queued_at: job.timestamp, started_at: Date.now() };
      if (failing.has(instance!.sop_instance_uid)) {
        await system.core.repos.aiResults.store({ ...base, status: 'failed', reason: 'cannot decode the image: test failure', stored_at: Date.now() });
        throw new UnrecoverableError('cannot decode the image: test failure');
      }
      await system.core.repos.aiResults.store({ ...base, status: 'done', flag: 'doubt', probability: 0.5, stored_at: Date.now() });
      return { outcome: 'stored' };
    }, { connection: redisConnection(system.config.redisUrl), prefix: system.config.queuePrefix, concurrency: 2 });
  }

  async function upload(n: number, opts: { accession?: string; fail?: number } = {}) {
    const dxs = Array.from({ length: n }, () => makeDx({ accession: opts.accession }));
    for (const d of dxs.slice(0, opts.fail ?? 0)) failing.add(d.sopInstanceUid);
    const body = multipart(dxs.map((d) => d.bytes));
    const res = await stow(system, body.body, body.contentType);
    expect(res.status).toBe(200);
    return dxs;
  }

  it('refuses every admin route: 401 without a session, 403 for a radiologist, 401 for an API key (sessions only)', async () => {
    for (const [method, path] of ADMIN_ROUTES) {
      expect((await call(system.url, undefined, path, { method })).status, `${method} ${path} anonymous`).toBe(401);
      expect((await call(system.url, rad, path, { method })).status, `${method} ${path} radiologist`).toBe(403);
      const withKey = await fetch(`${system.url}${path}`, { method, headers: { authorization: `Bearer ${system.keys.a}` } });
      expect(withKey.status, `${method} ${path} API key`).toBe(401);
    }
    // A radiologist's refused actions changed nothing.
    expect(await system.core.jobs.classify.queue.isPaused()).toBe(false);
  });

  it('needs the CSRF token for changes', async () => {
    expect((await call(system.url, admin, '/api/admin/queue/pause', { method: 'POST', csrf: false })).status).toBe(403);
    expect(await system.core.jobs.classify.queue.isPaused()).toBe(false);
  });

  it('shows queue counts that match the queue after uploads, the oldest waiting job, health and disk', async () => {
    await upload(3);
    const { json, status } = await call(system.url, admin, '/api/admin/overview');
    expect(status).toBe(200);
    const counts = await system.core.jobs.classify.queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'completed', 'failed');
    expect(json.queue.counts).toMatchObject(counts);
    expect(json.queue.waitingTotal).toBe(3);
    expect(json.queue.paused).toBe(false);
    expect(json.queue.oldestWaitingAgeSec).toBeGreaterThanOrEqual(0);
    expect(json.queue.oldestWaitingAgeSec).toBeLessThan(60);
    expect(json.health).toEqual({ redis: 'ok', database: 'ok' });
    expect(json.disk.totalBytes).toBeGreaterThan(json.disk.freeBytes);
    expect(json.instances.queued).toBe(3);
    expect(json.workers).toEqual([]);
  });

  it('lists workers from their heartbeats, alive or stale', async () => {
    const beat = { host: 'gpu-1', backend: 'wasm', modelName: 'fracatlas-heatnet', modelVersion: 'v1', concurrency: 1, jobsDone: 7, jobsFailed: 1, startedAt: Date.now() - 60_000 };
    await system.core.repos.heartbeats.write({ ...beat, id: 'gpu-1:100', pid: 100, lastHeartbeat: Date.now() });
    await system.core.repos.heartbeats.write({ ...beat, id: 'gpu-1:99', pid: 99, lastHeartbeat: Date.now() - 120_000 });
    const { json } = await call(system.url, admin, '/api/admin/overview');
    expect(json.workers.map((w: any) => [w.id, w.alive, w.modelVersion, w.jobsDone])).toEqual([['gpu-1:100', true, 'v1', 7], ['gpu-1:99', false, 'v1', 7]]);
    const ready = await fetch(`${system.url}/readyz?model=required`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', model: 'loaded', models: [{ name: 'fracatlas-heatnet', version: 'v1', backend: 'wasm' }], workers: { alive: 1, total: 2 } });
    await system.core.redis.del(`${system.config.queuePrefix}:workers:gpu-1:100`, `${system.config.queuePrefix}:workers:gpu-1:99`);
    const noModel = await fetch(`${system.url}/readyz?model=required`);
    expect(noModel.status).toBe(503);
    expect((await noModel.json()).model).toBe('no live worker');
    // Without ?model=required the API is ready as long as Redis and the database answer.
    const plain = await fetch(`${system.url}/readyz`);
    expect(plain.status).toBe(200);
    expect(await plain.json()).toMatchObject({ status: 'ready', redis: 'ok', database: 'ok', model: 'no live worker' });
    expect((await fetch(`${system.url}/healthz`)).status).toBe(200);
  });

  it('lists a failed job with its reason, finds it by SOP UID, Study UID and accession, shows its history, and retry makes it succeed', async () => {
    const [bad] = await upload(1, { accession: 'ACC-FAIL-1', fail: 1 });
    const instance = await system.core.database.db.selectFrom('instances').select(['id']).where('sop_instance_uid', '=', bad.sopInstanceUid).executeTakeFirstOrThrow();
    startFakeWorker();
    await waitFor(async () => (await system.core.jobs.classify.queue.getJobCounts('failed')).failed === 1 && (await system.core.jobs.classify.queue.getJobCounts('completed')).completed === 3, 30_000, 'one failed and three completed jobs');
    const jobId = `sop-site-a-${bad.sopInstanceUid}`;

    const list = await call(system.url, admin, '/api/admin/jobs/failed');
    expect(list.status).toBe(200);
    expect(list.json.total).toBe(1);
    expect(list.json.jobs[0]).toMatchObject({
      id: jobId, instanceId: instance.id, siteId: 'site-a', failedReason: 'cannot decode the image: test failure',
      sopInstanceUid: bad.sopInstanceUid, studyUid: bad.studyUid, accessionNumber: 'ACC-FAIL-1', attemptsMade: 1,
    });
    for (const q of [bad.sopInstanceUid, bad.studyUid, 'ACC-FAIL-1']) {
      const found = await call(system.url, admin, `/api/admin/jobs/failed?q=${encodeURIComponent(q)}`);
      expect(found.json.jobs.map((j: any) => j.id), q).toEqual([jobId]);
    }
    expect((await call(system.url, admin, '/api/admin/jobs/failed?q=no-such-thing')).json).toEqual({ total: 0, jobs: [] });

    const history = await call(system.url, admin, `/api/admin/jobs/${encodeURIComponent(jobId)}`);
    expect(history.json).toMatchObject({ id: jobId, state: 'failed', attemptsMade: 1, failedReason: 'cannot decode the image: test failure' });
    expect(history.json.errors[0]).toMatch(/test failure/);
    expect(history.json.result).toMatchObject({ status: 'failed', reason: 'cannot decode the image: test failure' });
    expect(history.json.queuedAt).toBeLessThanOrEqual(history.json.finishedOn);

    // The cause is fixed; retry.
    failing.delete(bad.sopInstanceUid);
    const retry = await call(system.url, admin, `/api/admin/jobs/${encodeURIComponent(jobId)}/retry`, { method: 'POST' });
    expect(retry.status).toBe(200);
    await waitFor(async () => (await system.core.jobs.classify.queue.getJobCounts('completed')).completed === 4, 30_000, 'the retried job to complete');
    expect((await call(system.url, admin, '/api/admin/jobs/failed')).json.total).toBe(0);
    expect((await system.core.repos.instances.get(instance.id))!.status).toBe('done');
    const after = await call(system.url, admin, `/api/admin/jobs/${encodeURIComponent(jobId)}`);
    expect(after.json.state).toBe('completed');
    expect(after.json.result.status).toBe('done');
    expect(after.json.audit[0]).toMatchObject({ action: 'queue.job_retry', actor_type: 'user', details: { username: 'ops', previousReason: 'cannot decode the image: test failure' } });
    // Retrying what is not failed is a conflict; an unknown job is 404.
    expect((await call(system.url, admin, `/api/admin/jobs/${encodeURIComponent(jobId)}/retry`, { method: 'POST' })).status).toBe(409);
    expect((await call(system.url, admin, '/api/admin/jobs/sop-site-a-nope')).status).toBe(404);
  });

  it('retries all failed jobs, removes one, and audits both', async () => {
    // Two of three fail; the third completes.
    const dxs = await upload(3, { accession: 'ACC-MANY', fail: 2 });
    await waitFor(async () => (await system.core.jobs.classify.queue.getJobCounts('failed')).failed === 2 && (await system.core.jobs.classify.queue.getJobCounts('completed')).completed === 5, 30_000, 'two failures');
    expect((await call(system.url, admin, '/api/admin/jobs/failed?q=ACC-MANY')).json.total).toBe(2);

    const removedId = `sop-site-a-${dxs[0].sopInstanceUid}`;
    expect((await call(system.url, admin, `/api/admin/jobs/${encodeURIComponent(removedId)}`, { method: 'DELETE' })).status).toBe(200);
    expect(await system.core.jobs.classify.queue.getJob(removedId)).toBeUndefined();

    failing.clear();
    const all = await call(system.url, admin, '/api/admin/jobs/failed/retry', { method: 'POST' });
    expect(all.json).toEqual({ retried: 1, remaining: 0 });
    await waitFor(async () => (await system.core.jobs.classify.queue.getJobCounts('completed')).completed === 6, 30_000, 'the retried job');
    const actions = (await call(system.url, admin, '/api/admin/actions')).json.map((a: any) => a.action);
    expect(actions.slice(0, 3)).toEqual(['queue.retry_all', 'queue.job_remove', 'queue.job_retry']);
  });

  it('pauses, resumes and drains the queue, audited', async () => {
    await worker!.close();
    worker = undefined;
    expect((await call(system.url, admin, '/api/admin/queue/pause', { method: 'POST' })).json).toEqual({ ok: true, paused: true });
    expect(await system.core.jobs.classify.queue.isPaused()).toBe(true);
    await upload(2);
    let overview = (await call(system.url, admin, '/api/admin/overview')).json;
    expect(overview.queue.paused).toBe(true);
    expect(overview.queue.waitingTotal).toBe(2);
    const drained = await call(system.url, admin, '/api/admin/queue/drain', { method: 'POST' });
    expect(drained.json).toEqual({ removed: 2 });
    overview = (await call(system.url, admin, '/api/admin/overview')).json;
    expect(overview.queue.waitingTotal).toBe(0);
    // The database still lists them as waiting for the AI: the reconciler will queue them again.
    expect(overview.instances.queued).toBe(2);
    expect(await system.core.services.reconcile.requeueMissing()).toBe(2);
    expect((await call(system.url, admin, '/api/admin/queue/resume', { method: 'POST' })).json).toEqual({ ok: true, paused: false });
    expect(await system.core.jobs.classify.queue.isPaused()).toBe(false);
    const audit = await system.core.repos.audit.list({ limit: 10 });
    const queueActions = audit.filter((a) => a.action.startsWith('queue.')).slice(0, 3);
    expect(queueActions.map((a) => a.action)).toEqual(['queue.resume', 'queue.drain', 'queue.pause']);
    expect(queueActions.every((a) => a.actor_type === 'user' && a.target_id === 'classify')).toBe(true);
    expect(JSON.parse(queueActions[1].details!)).toMatchObject({ username: 'ops', removed: 2 });
  });

  it('computes throughput and upload→result latency p50/p95 per minute over the last hour', async () => {
    // Results stored in the test above and before: replace their times with known ones.
    const db = system.core.database.db;
    const now = Date.now();
    const rows = await db.selectFrom('ai_results').innerJoin('instances', 'instances.id', 'ai_results.instance_id')
      .select(['ai_results.id as id', 'instances.id as instanceId']).orderBy('ai_results.id').execute();
    expect(rows.length).toBeGreaterThanOrEqual(6);
    const received = now - 5 * 60_000;
    // Latencies 1 s … n s, all stored two minutes ago; one result outside the window (2 hours ago).
    for (const [i, r] of rows.entries()) {
      await db.updateTable('instances').set({ received_at: received }).where('id', '=', r.instanceId).execute();
      const storedAt = i === 0 ? now - 2 * 3600_000 : received + i * 1000;
      await db.updateTable('ai_results').set({ stored_at: storedAt }).where('id', '=', r.id).execute();
    }
    const n = rows.length - 1;
    const stats = await call(system.url, admin, '/api/admin/throughput?minutes=60');
    expect(stats.status).toBe(200);
    expect(stats.json.minutes).toHaveLength(60);
    expect(stats.json.total.results).toBe(n);
    expect(stats.json.total.perMinute).toBeCloseTo(n / 60, 6);
    const sorted = Array.from({ length: n }, (_, i) => (i + 1) * 1000);
    expect(stats.json.total.p50Ms).toBe(sorted[Math.ceil(0.5 * n) - 1]);
    expect(stats.json.total.p95Ms).toBe(sorted[Math.ceil(0.95 * n) - 1]);
    const busy = stats.json.minutes.filter((m: any) => m.results > 0);
    expect(busy.reduce((a: number, m: any) => a + m.results, 0)).toBe(n);
    expect(busy.every((m: any) => m.p50Ms <= m.p95Ms)).toBe(true);
    expect(stats.json.stages.upload_to_result).toEqual({ count: n, p50Ms: stats.json.total.p50Ms, p95Ms: stats.json.total.p95Ms });
    // The stand-in worker stored queued_at and started_at: queue wait is known for each result.
    expect(stats.json.stages.queue_wait.count).toBe(n);
    const scraped = (await scrape(system.url)).samples;
    expect(metric(scraped, 'ft_pipeline_results_last_hour')).toBe(n);
    expect(metric(scraped, 'ft_pipeline_stage_seconds', { stage: 'upload_to_result', quantile: '0.95' })).toBe(stats.json.total.p95Ms / 1000);
    expect(metric(scraped, 'ft_pipeline_stage_seconds', { stage: 'upload_to_result', quantile: '0.5' })).toBe(stats.json.total.p50Ms / 1000);
  });

  it('keeps the bull-board job browser read-only: its change endpoints refuse even an admin', async () => {
    const before = await system.core.jobs.classify.queue.getJobCounts('waiting', 'prioritized', 'failed', 'completed');
    const send = (method: string, path: string) => fetch(`${system.url}/admin/queues${path}`, {
      method, headers: { cookie: admin.cookie, 'x-csrf-token': admin.csrfToken, 'content-type': 'application/json' }, body: '{}',
    });
    expect((await send('PUT', '/api/queues/classify/retry/failed')).status).toBe(405);
    expect((await send('PUT', '/api/queues/classify/clean/completed')).status).toBe(405);
    expect((await send('PUT', '/api/queues/classify/promote')).status).toBe(405);
    expect((await send('POST', '/api/queues/classify/add')).status).toBe(405);
    await send('PUT', '/api/queues/pause');
    expect(await system.core.jobs.classify.queue.isPaused()).toBe(false);
    expect(await system.core.jobs.classify.queue.getJobCounts('waiting', 'prioritized', 'failed', 'completed')).toEqual(before);
    const browse = await call(system.url, admin, '/admin/queues/api/queues?activeQueue=classify&status=latest&page=1');
    expect(browse.status).toBe(200);
    expect(browse.json.queues[0]).toMatchObject({ name: 'classify', readOnlyMode: true });
  });

  it('serves /metrics as Prometheus text whose counters move with traffic', async () => {
    const first = await scrape(system.url);
    expect(first.status).toBe(200);
    expect(first.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    const s0 = first.samples;
    // Pipeline state derived at scrape time.
    const counts = await system.core.jobs.classify.queue.getJobCounts('completed', 'failed', 'prioritized');
    expect(metric(s0, 'ft_queue_jobs', { queue: 'classify', state: 'completed' })).toBe(counts.completed);
    expect(metric(s0, 'ft_queue_jobs', { queue: 'classify', state: 'prioritized' })).toBe(counts.prioritized);
    expect(metric(s0, 'ft_dependency_up', { dependency: 'redis' })).toBe(1);
    expect(metric(s0, 'ft_dependency_up', { dependency: 'database' })).toBe(1);
    expect(metric(s0, 'ft_data_disk_total_bytes')).toBeGreaterThan(0);
    const doubt0 = metric(s0, 'ft_ai_results', { status: 'done', flag: 'doubt' });
    expect(doubt0).toBeGreaterThan(0);

    // Traffic: 2 new images + 1 identical resend, and a few requests.
    const dxs = [makeDx(), makeDx()];
    const body = multipart(dxs.map((d) => d.bytes));
    expect((await stow(system, body.body, body.contentType)).status).toBe(200);
    const again = multipart([dxs[0].bytes]);
    expect((await stow(system, again.body, again.contentType)).status).toBe(200);
    await call(system.url, rad, '/api/admin/overview');
    await system.core.repos.heartbeats.write({
      id: 'node-9:42', host: 'node-9', pid: 42, backend: 'tensorflow', modelName: 'fracatlas-heatnet', modelVersion: 'v7', concurrency: 1, jobsDone: 3, jobsFailed: 0, startedAt: Date.now(), lastHeartbeat: Date.now(),
    });
    const instanceId = (await system.core.database.db.selectFrom('instances').select('id').where('sop_instance_uid', '=', dxs[1].sopInstanceUid).executeTakeFirstOrThrow()).id;
    const instance = (await system.core.repos.instances.get(instanceId))!;
    await system.core.repos.aiResults.store({ instance_id: instanceId, site_id: 'site-a', study_id: instance.study_id, status: 'done', flag: 'definite', probability: 0.9, stored_at: Date.now() });

    const s1 = (await scrape(system.url)).samples;
    expect(metric(s1, 'ft_ingest_images_total', { outcome: 'stored' }) - metric(s0, 'ft_ingest_images_total', { outcome: 'stored' })).toBe(2);
    expect(metric(s1, 'ft_ingest_images_total', { outcome: 'duplicate' }) - metric(s0, 'ft_ingest_images_total', { outcome: 'duplicate' })).toBe(1);
    expect(metric(s1, 'ft_ingest_bytes_total', { endpoint: 'stow' }) - metric(s0, 'ft_ingest_bytes_total', { endpoint: 'stow' })).toBe(body.body.length + again.body.length);
    expect(metric(s1, 'ft_http_requests_total', { method: 'POST', route: '/dicomweb/studies', status: '200' }) - metric(s0, 'ft_http_requests_total', { method: 'POST', route: '/dicomweb/studies', status: '200' })).toBe(2);
    expect(metric(s1, 'ft_http_requests_total', { method: 'GET', route: '/api/admin/overview', status: '403' })).toBeGreaterThanOrEqual(1);
    expect(metric(s1, 'ft_http_request_duration_seconds_count', { method: 'POST', route: '/dicomweb/studies' })).toBeGreaterThanOrEqual(2);
    expect(metric(s1, 'ft_queue_jobs', { state: 'prioritized' })).toBe(metric(s0, 'ft_queue_jobs', { state: 'prioritized' }) + 2); // no worker runs now
    expect(metric(s1, 'ft_ai_results', { status: 'done', flag: 'definite' }) - metric(s0, 'ft_ai_results', { status: 'done', flag: 'definite' })).toBe(1);
    expect(metric(s1, 'ft_worker_up', { worker: 'node-9:42', model_version: 'v7', backend: 'tensorflow' })).toBe(1);
    expect(metric(s1, 'ft_model_info', { model_name: 'fracatlas-heatnet', model_version: 'v7' })).toBe(1);
    expect(metric(s1, 'ft_worker_heartbeat_timestamp_seconds', { worker: 'node-9:42' })).toBeGreaterThan(Date.now() / 1000 - 60);
    // No UIDs in any label.
    const labels = s1.flatMap((s) => Object.values(s.labels)).join('\n');
    for (const d of dxs) {
      expect(labels).not.toContain(d.sopInstanceUid);
      expect(labels).not.toContain(d.studyUid);
    }
  });
});
