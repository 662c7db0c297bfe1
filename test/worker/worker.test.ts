import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseInstance } from '../../services/dicom/index.js';
import { ingestDirect } from '../helpers/ingest.js';
import { corruptJpegLossless, makeDx, scrambledJpegLossless } from '../helpers/dicom.js';
import { exited, MODEL_DIR, startProcessSystem, waitFor, type ProcessSystem } from '../helpers/processes.js';
import { freePort } from '../helpers/redis-server.js';

const samples = path.resolve(import.meta.dirname, '../../samples');
const hasModel = fs.existsSync(path.join(MODEL_DIR, 'manifest.json'));

describe.skipIf(!hasModel)('classify worker (real Redis, real SQLite, worker processes)', () => {
  let system: ProcessSystem | undefined;
  afterEach(async () => {
    await system?.stop();
    system = undefined;
  });

  const results = async (s: ProcessSystem) => s.core.database.db.selectFrom('ai_results').selectAll().execute();

  it('gives every sample a result, flags applicable images, and marks the chest image not applicable', async () => {
    system = await startProcessSystem();
    const s = system;
    const metricsPort = String(await freePort());
    await s.startWorker({ WORKER_METRICS_PORT: metricsPort });
    const files = fs.readdirSync(path.join(samples, 'fracatlas')).map((f) => path.join(samples, 'fracatlas', f))
      .concat(fs.readdirSync(path.join(samples, 'real-cr')).map((f) => path.join(samples, 'real-cr', f)));
    for (const file of files) expect((await ingestDirect(s.core, fs.readFileSync(file))).status).toBe('stored');
    const rows = await waitFor(async () => { const r = await results(s); return r.length === files.length && r; }, 120_000, 'a result per image');
    expect(rows.filter((r) => r.status === 'failed')).toEqual([]);
    expect(rows.filter((r) => r.status === 'unreadable')).toEqual([]); // no sample is called unreadable
    const notApplicable = rows.filter((r) => r.status === 'not_applicable');
    expect(notApplicable).toHaveLength(1);
    expect(notApplicable[0].reason).toMatch(/CHEST/);
    for (const r of rows.filter((x) => x.status === 'done')) {
      expect(r.probability).toBeGreaterThanOrEqual(0);
      expect(r.probability).toBeLessThanOrEqual(1);
      expect(['none', 'doubt', 'definite']).toContain(r.flag);
      expect(r.model_version).toBeTruthy();
      expect(r.started_at! <= r.decoded_at! && r.decoded_at! <= r.inferred_at! && r.inferred_at! <= r.stored_at).toBe(true);
      // Boxes agree with the image: at most 3, none on a not-flagged image, never louder than its flag, no number.
      const boxes = JSON.parse(r.boxes!) as Record<string, unknown>[];
      expect(boxes.length).toBeLessThanOrEqual(3);
      if (r.flag === 'none') expect(boxes).toEqual([]);
      if (r.flag === 'doubt') expect(boxes.every((b) => b.level === 'doubt')).toBe(true);
      if (r.flag === 'definite') expect(boxes.some((b) => b.level === 'definite')).toBe(true);
      for (const b of boxes) expect(Object.keys(b).sort()).toEqual(['height', 'level', 'width', 'x', 'y']);
      const png = await s.core.repos.storage.readDerived(r.heatmap_key!);
      expect(png.subarray(1, 4).toString()).toBe('PNG');
    }
    const studies = await s.core.database.db.selectFrom('studies').selectAll().execute();
    expect(studies.every((st) => st.ai_state === 'complete')).toBe(true);

    // The fractured FracAtlas samples are flagged at the model card's rate: sensitivity 0.90 at
    // "doubt" predicts 5.4 of 6; fewer than 4 would be a 1-in-60 event for a card that is right.
    const manifest = fs.readFileSync(path.join(samples, 'manifest.csv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split(','));
    let flagged = 0;
    for (const [file, , fractured] of manifest.filter((c) => c[2] === '1')) {
      void fractured;
      const sop = (await parseInstance(fs.readFileSync(path.join(samples, file)))).sopInstanceUid;
      const instance = await s.core.repos.instances.findBySop('site-a', sop);
      const result = rows.find((r) => r.instance_id === instance!.id)!;
      if (result.flag === 'doubt' || result.flag === 'definite') flagged++;
    }
    expect(flagged).toBeGreaterThanOrEqual(4);
    // The worker's own Prometheus endpoint counts what it stored.
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const counted = [...metrics.matchAll(/^ft_worker_results_total\{[^}]*\} (\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
    expect(counted).toBe(files.length);
    expect(metrics).toMatch(/^ft_job_stage_duration_seconds_count\{[^}]*stage="inference"[^}]*\} \d+/m);
  }, 180_000);

  it('stores one result when a worker is killed after storing and before acknowledging', async () => {
    system = await startProcessSystem();
    const s = system;
    const dying = await s.startWorker({ FT_FAILPOINTS: 'worker-after-store' });
    await ingestDirect(s.core, makeDx({ rows: 256, columns: 256 }).bytes);
    await exited(dying);
    expect(dying.signalCode).toBe('SIGKILL');
    expect(await results(s)).toHaveLength(1);
    // The job is still "active" with an expiring lock; a healthy worker picks it up and runs it again.
    await s.startWorker();
    await waitFor(async () => (await s.core.jobs.classify.queue.getJobCounts('completed')).completed === 1, 60_000, 'the job to complete');
    const rows = await results(s);
    expect(rows).toHaveLength(1);
    expect(rows[0].status).toBe('done');
  }, 120_000);

  it('finishes a job whose worker was SIGKILLed mid-job on another worker', async () => {
    system = await startProcessSystem();
    const s = system;
    const dying = await s.startWorker({ FT_FAILPOINTS: 'worker-after-decode' });
    await ingestDirect(s.core, makeDx({ rows: 256, columns: 256 }).bytes);
    await exited(dying);
    expect(dying.signalCode).toBe('SIGKILL');
    expect((await s.core.jobs.classify.queue.getJobCounts('active')).active).toBe(1); // orphaned, lock still held
    await s.startWorker();
    const rows = await waitFor(async () => { const r = await results(s); return r.length === 1 && r; }, 60_000, 'the result');
    expect(rows[0].status).toBe('done');
    expect((await s.core.jobs.classify.queue.getJobCounts('failed')).failed).toBe(0);
  }, 120_000);

  it('records undecodable pixels as a failed result with its reason, once, without retrying', async () => {
    system = await startProcessSystem();
    const s = system;
    await s.startWorker();
    // Accepted at upload (a well-formed JPEG Lossless data set) but its fragment is not a JPEG stream.
    const bytes = corruptJpegLossless();
    expect((await ingestDirect(s.core, bytes)).status).toBe('stored');
    const rows = await waitFor(async () => { const r = await results(s); return r.length === 1 && r; }, 60_000, 'the failed result');
    expect(rows[0].status).toBe('failed');
    expect(rows[0].reason).toMatch(/cannot decode/);
    const failed = await waitFor(async () => (await s.core.jobs.classify.queue.getFailed())[0], 10_000, 'the failed job');
    expect(failed.attemptsMade).toBe(1); // UnrecoverableError: no retry storm
    expect(failed.failedReason).toMatch(/cannot decode/);
    const instance = await s.core.repos.instances.get(rows[0].instance_id);
    expect(instance?.status).toBe('failed');
  }, 120_000);

  it('records a scrambled JPEG Lossless image and a blank image as unreadable, with the reason and no score; their studies need a look', async () => {
    system = await startProcessSystem();
    const s = system;
    await s.startWorker();
    const scrambled = await scrambledJpegLossless();
    const blank = makeDx({ rows: 256, columns: 256, pixels: new Uint16Array(256 * 256).fill(1200) }).bytes;
    // A readable image in the blank one's study: the study must still not read as "none".
    const blankStudy = (await parseInstance(blank)).studyInstanceUid;
    const clear = makeDx({ rows: 256, columns: 256, studyUid: blankStudy }).bytes;
    for (const bytes of [scrambled, blank, clear]) expect((await ingestDirect(s.core, bytes)).status).toBe('stored');
    const rows = await waitFor(async () => { const r = await results(s); return r.length === 3 && r; }, 120_000, 'three results');
    const bySop = async (bytes: Buffer) => {
      const instance = await s.core.repos.instances.findBySop('site-a', (await parseInstance(bytes)).sopInstanceUid);
      return rows.find((r) => r.instance_id === instance!.id)!;
    };
    const scrambledResult = await bySop(scrambled);
    expect(scrambledResult).toMatchObject({ status: 'unreadable', probability: null, flag: null, boxes: null, heatmap_key: null });
    expect(scrambledResult.reason).toMatch(/damaged.*premature end of data segment/);
    const blankResult = await bySop(blank);
    expect(blankResult).toMatchObject({ status: 'unreadable', probability: null, flag: null });
    expect(blankResult.reason).toMatch(/almost blank/);
    expect((await bySop(clear)).status).toBe('done');
    const studies = await s.core.database.db.selectFrom('studies').select(['id', 'ai_state', 'ai_flag']).orderBy('id').execute();
    // The scrambled image's study holds only it: unreadable. The blank image's study also holds a
    // synthetic image the model may score (v2 gives such images a low "doubt"): whatever that image
    // scores, the study ranks at least "unreadable", never "none".
    expect(studies.map((st) => st.ai_state)).toEqual(['complete', 'complete']);
    expect(studies[0].ai_flag).toBe('unreadable');
    expect(['unreadable', 'doubt', 'definite']).toContain(studies[1].ai_flag);
    // Not a failure: nothing to retry, the job completed with its answer.
    expect((await s.core.jobs.classify.queue.getJobCounts('failed')).failed).toBe(0);
    expect((await s.core.repos.instances.get(scrambledResult.instance_id))?.status).toBe('done');
  }, 180_000);

  it('loses no job when a worker is stopped with jobs in flight', async () => {
    system = await startProcessSystem({ WORKER_CONCURRENCY: '2' });
    const s = system;
    const first = await s.startWorker();
    const n = 12;
    for (let i = 0; i < n; i++) await ingestDirect(s.core, makeDx({ rows: 512, columns: 512 }).bytes);
    await waitFor(async () => (await s.core.jobs.classify.queue.getJobCounts('active')).active > 0, 30_000, 'a job in flight');
    first.kill('SIGTERM');
    await exited(first);
    expect(first.exitCode).toBe(0); // graceful: it finished what it had
    await s.startWorker();
    const rows = await waitFor(async () => { const r = await results(s); return r.length === n && r; }, 120_000, 'every result');
    expect(rows.every((r) => r.status === 'done')).toBe(true);
    expect((await s.core.jobs.classify.queue.getJobCounts('failed')).failed).toBe(0);
  }, 180_000);
});
