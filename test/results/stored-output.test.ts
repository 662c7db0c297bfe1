import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { parseInstance } from '../../services/dicom/index.js';
import { redisConnection } from '../../services/core/queue/classify-queue.js';
import { ClassifyService } from '../../services/core/services/classify.service.js';
import type { FractureModel } from '../../services/inference/index.js';
import { resultsFor, ResultsWorker, type Results } from '../../services/results/index.js';
import type { StoredOutput } from '../../services/results/results.service.js';
import { GRAYSCALE_SOFTCOPY_PRESENTATION_STATE } from '../../services/results/presentation-state.js';
import { SECONDARY_CAPTURE } from '../../services/results/secondary-capture.js';
import { COMPREHENSIVE_SR } from '../../services/results/structured-report.js';
import { makeDx } from '../helpers/dicom.js';
import { ingestDirect } from '../helpers/ingest.js';
import { waitFor } from '../helpers/processes.js';
import { login, PASSWORD, type Session } from '../helpers/session.js';
import { databases, REDIS_URL, startSystem, type TestSystem } from '../helpers/system.js';
import { multipartBodies } from './helpers.js';

/** A DICOMweb STOW-RS destination that keeps every object it is sent, by SOP Instance UID. */
async function stowReceiver() {
  const received = new Map<string, Buffer[]>();
  let requests = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests++;
      void Promise.all(multipartBodies(Buffer.concat(chunks), req.headers['content-type'] ?? '').map(async (bytes) => {
        const sop = (await parseInstance(bytes)).sopInstanceUid;
        received.set(sop, [...(received.get(sop) ?? []), bytes]);
      })).then(() => res.writeHead(200, { 'content-type': 'application/dicom+json' }).end('{}'), () => res.writeHead(400).end());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}/dicom-web`, received, requests: () => requests, close: () => new Promise<void>((r) => server.close(() => r())) };
}

type Json = Record<string, { Value?: unknown[] }>;
const value = (item: Json, tag: string) => item[tag]?.Value?.[0];

describe.each(await databases())('our SR, captures and presentation states are stored as instances of the study (%s): QIDO-RS finds them, WADO-RS returns them, nothing else sees them as images', (db) => {
  let system: TestSystem;
  let results: Results;
  let connection: Redis;
  let worker: ResultsWorker;
  let pacs: Awaited<ReturnType<typeof stowReceiver>>;
  let session: Session;
  let study: { studyId: number; studyUid: string; source: Buffer; sop: string; instanceId: number };

  /** Stores an image of the study and a result for it, as the classify worker would. */
  async function classified(bytes: Buffer, flag: 'none' | 'doubt' | 'definite') {
    const outcome = await ingestDirect(system.core, bytes);
    expect(outcome.status).toBe('stored');
    const instance = (await system.core.repos.instances.findBySop('site-a', (await parseInstance(bytes)).sopInstanceUid))!;
    await system.core.repos.aiResults.store({
      instance_id: instance.id, site_id: 'site-a', study_id: instance.study_id, status: 'done', model_name: 'test-model', model_version: '9.9',
      backend: 'cpu', probability: flag === 'none' ? 0.02 : 0.4, raw_score: 0, flag, boxes: JSON.stringify(flag === 'none' ? [] : [{ x: 8, y: 8, width: 20, height: 16, level: flag }]),
      heatmap_key: null, reason: null, queued_at: null, started_at: Date.now(), stored_at: Date.now(),
    });
    await results.service.studyChanged('site-a', instance.study_id);
    return instance;
  }

  const get = (path: string, key = system.keys.a, accept = 'application/dicom+json') =>
    fetch(`${system.url}${path}`, { headers: { authorization: `Bearer ${key}`, accept } });
  const qido = async (path: string, key?: string): Promise<Json[]> => {
    const response = await get(path, key);
    if (response.status === 204) return [];
    expect(response.status, path).toBe(200);
    return response.json() as Promise<Json[]>;
  };
  const wado = async (path: string): Promise<Buffer[]> => {
    const response = await get(path, system.keys.a, 'multipart/related; type="application/dicom"');
    expect(response.status, path).toBe(200);
    return multipartBodies(Buffer.from(await response.arrayBuffer()), response.headers.get('content-type')!);
  };
  const objectsOf = async (version: number) => {
    const row = (await system.core.database.db.selectFrom('result_versions').selectAll().where('study_id', '=', study.studyId).where('version', '=', version).executeTakeFirstOrThrow());
    return { row, objects: JSON.parse(row.objects) as StoredOutput[] };
  };
  const deliveriesOf = (studyId: number) => system.core.database.db.selectFrom('result_deliveries')
    .innerJoin('result_versions', 'result_versions.id', 'result_deliveries.version_id')
    .select(['result_deliveries.status', 'result_versions.version']).where('result_versions.study_id', '=', studyId).execute();
  /** The results queue has nothing left to do (no prepare or delivery waiting, delayed or running). */
  const resultsQueueIdle = async () => {
    const counts = await results.queue.queue.getJobCounts('waiting', 'delayed', 'active', 'prioritized', 'waiting-children');
    return Object.values(counts).every((n) => n === 0);
  };

  beforeAll(async () => {
    system = await startSystem({ db, env: { STUDY_STABLE_SEC: '0', SEND_BACKOFF_MS: '200', SEND_ATTEMPTS: '5' } });
    results = resultsFor(system.core);
    pacs = await stowReceiver();
    await results.repo.addDestination({ site_id: 'site-a', name: 'pacs', kind: 'stow', url: pacs.url, headers: null, ae_title: null, host: null, port: null, secret: null });
    await system.core.services.auth.createUser({ username: 'rad1', password: PASSWORD, role: 'radiologist', siteIds: ['site-a'] });
    session = await login(system.url, 'rad1');
    connection = redisConnection(REDIS_URL);
    worker = new ResultsWorker(connection, system.config.queuePrefix, results.service, system.core.log);
    await worker.start();

    const dx = makeDx({ rows: 64, columns: 64, accession: 'ACC-OWN-1' });
    const instance = await classified(dx.bytes, 'doubt');
    study = { studyId: instance.study_id, studyUid: dx.studyUid, source: dx.bytes, sop: dx.sopInstanceUid, instanceId: instance.id };
    await waitFor(async () => (await deliveriesOf(study.studyId)).some((d) => d.status === 'sent'), 60_000, 'version 1 sent');
  }, 90_000);

  afterAll(async () => {
    await worker?.close();
    connection?.disconnect();
    await results?.queue.queue.obliterate({ force: true }).catch(() => {});
    await results?.queue.close();
    await pacs?.close();
    await system?.close();
  });

  it('QIDO-RS finds the SR (Modality SR), the Secondary Capture (OT) and the presentation state (PR) in the study; WADO-RS returns the bytes the PACS got', async () => {
    const { row, objects } = await objectsOf(1);
    const sr = objects.find((o) => o.kind === 'sr')!;
    const sc = objects.find((o) => o.kind === 'sc')!;
    const pr = objects.find((o) => o.kind === 'pr')!;
    expect(objects.map((o) => o.kind)).toEqual(['sr', 'sc', 'pr']);

    const [found] = await qido(`/dicomweb/studies?StudyInstanceUID=${study.studyUid}`);
    expect(found['00201208'].Value).toEqual([4]); // the image, our SR, capture and presentation state
    expect((await qido(`/dicomweb/studies?ModalitiesInStudy=SR&AccessionNumber=ACC-OWN-1`)).map((s) => value(s, '0020000D'))).toEqual([study.studyUid]);

    const series = await qido(`/dicomweb/studies/${study.studyUid}/series?Modality=SR`);
    expect(series.map((s) => [value(s, '0020000E'), value(s, '00080060'), value(s, '00200011')])).toEqual([[row.sr_series_uid, 'SR', 9901]]);
    expect((await qido(`/dicomweb/studies/${study.studyUid}/series?Modality=OT`)).map((s) => value(s, '0020000E'))).toEqual([sc.seriesUid]);
    expect((await qido(`/dicomweb/studies/${study.studyUid}/series?Modality=PR`)).map((s) => value(s, '0020000E'))).toEqual([pr.seriesUid]);

    const instances = await qido(`/dicomweb/studies/${study.studyUid}/instances`);
    const bySop = new Map(instances.map((i) => [value(i, '00080018'), i]));
    expect(value(bySop.get(sr.sopInstanceUid)!, '00080016')).toBe(COMPREHENSIVE_SR);
    expect(value(bySop.get(sr.sopInstanceUid)!, '00080060')).toBe('SR');
    expect(value(bySop.get(sc.sopInstanceUid)!, '00080016')).toBe(SECONDARY_CAPTURE);
    expect(value(bySop.get(sc.sopInstanceUid)!, '00080060')).toBe('OT');
    expect(value(bySop.get(pr.sopInstanceUid)!, '00080016')).toBe(GRAYSCALE_SOFTCOPY_PRESENTATION_STATE);
    expect((await qido(`/dicomweb/studies/${study.studyUid}/instances?SOPClassUID=${COMPREHENSIVE_SR}`)).map((i) => value(i, '00080018'))).toEqual([sr.sopInstanceUid]);

    // Byte for byte what the destination received, by instance, series and study retrieve.
    for (const object of [sr, sc, pr]) {
      const sent = pacs.received.get(object.sopInstanceUid)!;
      expect(sent).toHaveLength(1);
      expect((await wado(`/dicomweb/studies/${study.studyUid}/series/${object.seriesUid}/instances/${object.sopInstanceUid}`))).toEqual([sent[0]]);
      expect((await wado(`/dicomweb/studies/${study.studyUid}/series/${object.seriesUid}`))).toEqual([sent[0]]);
    }
    expect((await wado(`/dicomweb/studies/${study.studyUid}`))).toHaveLength(4);
    const metadata = await (await get(`/dicomweb/studies/${study.studyUid}/series/${sr.seriesUid}/instances/${sr.sopInstanceUid}/metadata`)).json() as Json[];
    expect(value(metadata[0], '0040A493')).toBe('UNVERIFIED');
    expect(value(metadata[0], '00080016')).toBe(COMPREHENSIVE_SR);

    // Stored by our algorithm, audited as such.
    const audit = await system.core.database.db.selectFrom('audit_log').selectAll().where('action', '=', 'instance.store').where('actor_type', '=', 'device').execute();
    expect(audit.map((a) => a.actor_id)).toEqual(['test-model/9.9', 'test-model/9.9', 'test-model/9.9']);
    expect(audit.every((a) => JSON.parse(a.details!).origin === 'ai')).toBe(true);
  });

  it('another site never sees them', async () => {
    const { objects } = await objectsOf(1);
    const sr = objects.find((o) => o.kind === 'sr')!;
    expect(await qido(`/dicomweb/studies?ModalitiesInStudy=SR`, system.keys.b)).toEqual([]);
    expect((await get(`/dicomweb/studies/${study.studyUid}/instances`, system.keys.b)).status).toBe(404);
    expect((await get(`/dicomweb/studies/${study.studyUid}/series/${sr.seriesUid}/instances/${sr.sopInstanceUid}`, system.keys.b, 'multipart/related; type="application/dicom"')).status).toBe(404);
  });

  it('gets no classify job, leaves the study roll-up, worklist count and viewer images as they were, and is sent exactly once', async () => {
    const { objects } = await objectsOf(1);
    for (const object of objects) {
      const row = (await system.core.repos.instances.findBySop('site-a', object.sopInstanceUid))!;
      expect(row).toMatchObject({ origin: 'ai', status: 'done', actor_id: 'test-model/9.9', study_id: study.studyId });
      expect(await system.core.jobs.classify.find({ siteId: 'site-a', sopInstanceUid: object.sopInstanceUid })).toBeUndefined();
    }
    // A job that reached the worker anyway (an admin retry by id) is refused without a result.
    const refuse = () => { throw new Error('our own object must not be read'); };
    const classify = new ClassifyService(system.core.repos.instances, system.core.repos.aiResults, system.core.repos.storage,
      { name: 'test-model', version: '9.9', inputSize: 64, predict: refuse } as unknown as FractureModel, { decode: refuse }, system.core.repos.events, system.core.log);
    const srInstance = (await system.core.repos.instances.findBySop('site-a', objects[0].sopInstanceUid))!;
    await expect(classify.classify(srInstance.id, { queuedAt: null, attempt: 1, maxAttempts: 1 })).rejects.toThrow(/not an image to classify/);
    // The reconciler does not queue them either.
    await system.core.services.reconcile.requeueMissing();
    for (const object of objects) expect(await system.core.jobs.classify.find({ siteId: 'site-a', sopInstanceUid: object.sopInstanceUid })).toBeUndefined();
    expect((await system.core.repos.aiResults.byStudy(study.studyId)).map((r) => r.instance_id)).toEqual([study.instanceId]);
    const row = (await system.core.database.db.selectFrom('studies').selectAll().where('id', '=', study.studyId).executeTakeFirstOrThrow());
    expect(row).toMatchObject({ ai_state: 'complete', ai_flag: 'doubt', ai_score: 0.4 });

    const worklist = await (await fetch(`${system.url}/api/worklist`, { headers: { cookie: session.cookie } })).json() as { items: { id: number; images: number; ai: { complete: boolean } }[] };
    expect(worklist.items.find((i) => i.id === study.studyId)).toMatchObject({ images: 1, ai: { complete: true } });
    const opened = await (await fetch(`${system.url}/api/studies/${study.studyId}`, { headers: { cookie: session.cookie } })).json() as { study: { images: number }; images: { id: number }[] };
    expect(opened.images.map((i) => i.id)).toEqual([study.instanceId]);
    expect(opened.study.images).toBe(1);
    // A decision can never name our SR or capture as an image that was shown.
    const srRow = (await system.core.repos.instances.findBySop('site-a', objects[0].sopInstanceUid))!;
    const refused = await fetch(`${system.url}/api/studies/${study.studyId}/review`, {
      method: 'POST', headers: { cookie: session.cookie, 'x-csrf-token': session.csrfToken, 'content-type': 'application/json' },
      body: JSON.stringify({ decision: 'agree', shownInstanceIds: [srRow.id] }),
    });
    expect(refused.status).toBe(400);
    expect((await fetch(`${system.url}/api/instances/${srRow.id}/file`, { headers: { cookie: session.cookie } })).status).toBe(404);

    // Storing our objects made nothing due again: the queue drains with one version, sent once.
    expect((await results.service.prepare(study.studyId)).outcome).toBe('unchanged');
    await waitFor(resultsQueueIdle, 30_000, 'the results queue to drain');
    expect(await deliveriesOf(study.studyId)).toEqual([{ status: 'sent', version: 1 }]);
    expect(pacs.requests()).toBe(1);
  });

  it('leaves the review export and the pipeline counts to the original images', async () => {
    const { objects } = await objectsOf(1);
    expect(objects.length).toBeGreaterThan(0);
    const decided = await fetch(`${system.url}/api/studies/${study.studyId}/review`, {
      method: 'POST', headers: { cookie: session.cookie, 'x-csrf-token': session.csrfToken, 'content-type': 'application/json' },
      body: JSON.stringify({ decision: 'agree', shownInstanceIds: [study.instanceId] }),
    });
    expect(decided.status, await decided.clone().text()).toBeLessThan(300);
    await system.core.services.auth.createUser({ username: 'adm1', password: PASSWORD, role: 'admin', siteIds: ['site-a'] });
    const admin = await login(system.url, 'adm1');
    const exported = await (await fetch(`${system.url}/api/reviews/export?format=json`, { headers: { cookie: admin.cookie } })).json() as { rows: { study_uid: string; sop_instance_uid: string }[] };
    // One row per image of the study: the original, never our SR, capture or presentation state.
    expect(exported.rows.filter((r) => r.study_uid === study.studyUid).map((r) => r.sop_instance_uid)).toEqual([study.sop]);

    // The pipeline's image counts (admin page, /metrics) count originals only.
    const byOrigin = await system.core.database.db.selectFrom('instances').select(['origin', (eb) => eb.fn.countAll<number>().as('n')]).groupBy('origin').execute();
    const ours = byOrigin.filter((r) => r.origin === 'ai').reduce((n, r) => n + Number(r.n), 0);
    const originals = byOrigin.filter((r) => r.origin !== 'ai').reduce((n, r) => n + Number(r.n), 0);
    expect(ours).toBeGreaterThan(0);
    const counted = Object.values(await system.core.repos.pipelineStats.instancesByStatus()).reduce((n, v) => n + v, 0);
    expect(counted).toBe(originals);
  });

  it('a resend of the source image stores no second SR; a later image stores version 2 as another instance of the SR series', async () => {
    const ownCount = async () => Number((await system.core.database.db.selectFrom('instances').select((eb) => eb.fn.countAll<number>().as('n'))
      .where('study_id', '=', study.studyId).where('origin', '=', 'ai').executeTakeFirstOrThrow()).n);
    expect(await ownCount()).toBe(3);
    expect((await ingestDirect(system.core, study.source)).status).toBe('duplicate');
    expect((await results.service.prepare(study.studyId)).outcome).toBe('unchanged');
    expect(await ownCount()).toBe(3);

    const source = await parseInstance(study.source);
    const later = makeDx({ studyUid: study.studyUid, rows: 64, columns: 64, accession: 'ACC-OWN-1', patientId: source.patientId ?? undefined, patientName: source.patientName ?? undefined });
    await classified(later.bytes, 'definite');
    await waitFor(async () => (await deliveriesOf(study.studyId)).some((d) => d.version === 2 && d.status === 'sent'), 60_000, 'version 2 sent');
    const first = await objectsOf(1);
    const second = await objectsOf(2);
    // One new SR, and a capture and presentation state for the new image; the first image's are the stored ones, not copies.
    expect(await ownCount()).toBe(6);
    const srSeries = await qido(`/dicomweb/studies/${study.studyUid}/series/${first.row.sr_series_uid}/instances`);
    expect(srSeries.map((i) => value(i, '00080018')).sort()).toEqual([first.row.sr_sop_uid, second.row.sr_sop_uid].sort());
    expect(second.row.sr_series_uid).toBe(first.row.sr_series_uid);
    const captures = await qido(`/dicomweb/studies/${study.studyUid}/instances?SOPClassUID=${SECONDARY_CAPTURE}`);
    expect(captures.map((i) => value(i, '00080018')).sort()).toEqual(second.objects.filter((o) => o.kind === 'sc').map((o) => o.sopInstanceUid).sort());
    const sr2 = (await wado(`/dicomweb/studies/${study.studyUid}/series/${second.row.sr_series_uid}/instances/${second.row.sr_sop_uid}`))[0];
    expect(sr2).toEqual(pacs.received.get(second.row.sr_sop_uid)![0]);
    const worklist = await (await fetch(`${system.url}/api/worklist`, { headers: { cookie: session.cookie } })).json() as { items: { id: number; images: number }[] };
    expect(worklist.items.find((i) => i.id === study.studyId)!.images).toBe(2);
    // The roll-up is over the two images only, and the unchanged capture was reused, not rebuilt and refused as a conflict.
    expect(await system.core.database.db.selectFrom('studies').select(['ai_state', 'ai_flag']).where('id', '=', study.studyId).executeTakeFirstOrThrow()).toEqual({ ai_state: 'complete', ai_flag: 'definite' });
    expect(await system.core.database.db.selectFrom('audit_log').select('id').where('action', '=', 'instance.conflict').execute()).toEqual([]);
    await waitFor(resultsQueueIdle, 30_000, 'the results queue to drain');
    expect((await deliveriesOf(study.studyId)).map((d) => d.version).sort()).toEqual([1, 2]);
  });

  it('still sends, on a retry, a version made before our objects were stored as instances (kept under derived/ only)', async () => {
    const old = makeDx({ rows: 16, columns: 16 });
    const storageKey = `site-a/results/${old.sopInstanceUid}.dcm`;
    await system.core.repos.storage.writeDerived(storageKey, old.bytes);
    const version = (await results.repo.insertVersion({
      site_id: 'site-a', study_id: study.studyId, version: 99, content_hash: 'before-ai-instances', sr_sop_uid: old.sopInstanceUid, sr_series_uid: old.seriesUid,
      objects: JSON.stringify([{ kind: 'sr', sopInstanceUid: old.sopInstanceUid, sopClassUid: '1.2.840.10008.5.1.4.1.1.1.1', seriesUid: old.seriesUid, storageKey }]),
      summary: JSON.stringify({ studyInstanceUid: study.studyUid }), created_at: Date.now(),
    }))!;
    for (const delivery of await results.repo.createDeliveries(version)) await results.queue.enqueueDelivery(delivery.site_id, delivery.id, delivery.generation);
    await waitFor(async () => (await deliveriesOf(study.studyId)).some((d) => d.version === 99 && d.status === 'sent'), 30_000, 'the old version sent');
    expect(pacs.received.get(old.sopInstanceUid)).toEqual([old.bytes]);
  });
});
