import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { parseInstance } from '../../services/dicom/index.js';
import { workerMetrics } from '../../services/core/metrics.js';
import { redisConnection } from '../../services/core/queue/classify-queue.js';
import { ClassifyService } from '../../services/core/services/classify.service.js';
import { decodeInstance } from '../../services/imaging/index.js';
import { loadFractureModel, type FractureModel } from '../../services/inference/index.js';
import { resultsFor, ResultsWorker, type Results } from '../../services/results/index.js';
import type { StoredOutput } from '../../services/results/results.service.js';
import { COMPREHENSIVE_SR } from '../../services/results/structured-report.js';
import { GRAYSCALE_SOFTCOPY_PRESENTATION_STATE } from '../../services/results/presentation-state.js';
import { SECONDARY_CAPTURE } from '../../services/results/secondary-capture.js';
import { makeDx } from '../helpers/dicom.js';
import { ingestDirect } from '../helpers/ingest.js';
import { freePort, orthancAvailable, startOrthanc, type OrthancHandle } from '../helpers/orthanc.js';
import { MODEL_DIR, waitFor } from '../helpers/processes.js';
import { login, PASSWORD } from '../helpers/session.js';
import { REDIS_URL, startSystem, type TestSystem } from '../helpers/system.js';
import { check, errorLines, referencedSops } from './helpers.js';

const samples = path.resolve(import.meta.dirname, '../../samples');
const hasModel = fs.existsSync(path.join(MODEL_DIR, 'manifest.json'));
const sampleFiles = ['fracatlas', 'real-cr'].flatMap((dir) => fs.readdirSync(path.join(samples, dir)).map((f) => path.join(samples, dir, f)));

/** Studies and SOP Instance UIDs a DICOMweb server holds for a study (QIDO-RS). */
async function qidoInstances(orthanc: OrthancHandle, studyUid: string): Promise<{ sop: string; sopClass: string; series: string }[]> {
  const response = await fetch(`${orthanc.dicomWebUrl}/studies/${studyUid}/instances`, { headers: { accept: 'application/dicom+json' } });
  if (response.status === 204 || response.status === 404) return [];
  const json = await response.json() as Record<string, { Value?: string[] }>[];
  return json.map((i) => ({ sop: i['00080018'].Value![0], sopClass: i['00080016'].Value![0], series: i['0020000E'.toLowerCase()]?.Value?.[0] ?? i['0020000E']?.Value?.[0] }));
}

async function wadoMetadata(orthanc: OrthancHandle, studyUid: string, seriesUid: string, sopUid: string): Promise<unknown> {
  const response = await fetch(`${orthanc.dicomWebUrl}/studies/${studyUid}/series/${seriesUid}/instances/${sopUid}/metadata`, { headers: { accept: 'application/dicom+json' } });
  expect(response.status).toBe(200);
  return response.json();
}

describe.skipIf(!orthancAvailable() || !hasModel)('AI results into a PACS: SR + Secondary Capture to Orthanc over STOW-RS and C-STORE', () => {
  let system: TestSystem;
  let results: Results;
  let connection: Redis;
  let worker: ResultsWorker;
  let model: FractureModel;
  let classify: ClassifyService;
  let viaStow: OrthancHandle;
  let viaDimse: OrthancHandle;
  let comesBack: OrthancHandle | undefined;
  let downPort: number;
  const studies = new Map<string, { studyId: number; sources: string[] }>();

  const deliveries = () => system.core.database.db.selectFrom('result_deliveries').selectAll().execute();
  const versions = () => system.core.database.db.selectFrom('result_versions').selectAll().execute();

  /** Ingests bytes and classifies them at once, as the worker would. */
  async function ingestAndClassify(bytes: Buffer) {
    const outcome = await ingestDirect(system.core, bytes);
    expect(outcome.status).toBe('stored');
    const meta = await parseInstance(bytes);
    const instance = (await system.core.repos.instances.findBySop('site-a', meta.sopInstanceUid))!;
    await classify.classify(instance.id, { queuedAt: null, attempt: 1, maxAttempts: 1 });
    const entry = studies.get(meta.studyInstanceUid) ?? { studyId: instance.study_id, sources: [] };
    entry.sources.push(meta.sopInstanceUid);
    studies.set(meta.studyInstanceUid, entry);
  }

  beforeAll(async () => {
    // Sent as soon as complete (no quiet period) and retried quickly, so the test waits on states, not clocks.
    system = await startSystem({ env: { STUDY_STABLE_SEC: '0', SEND_BACKOFF_MS: '300', SEND_ATTEMPTS: '20' } });
    [viaStow, viaDimse] = await Promise.all([startOrthanc(), startOrthanc({ aet: 'PACSDIMSE' })]);
    downPort = await freePort();
    results = resultsFor(system.core);
    await results.repo.addDestination({ site_id: 'site-a', name: 'pacs-stow', kind: 'stow', url: viaStow.dicomWebUrl, headers: null, ae_title: null, host: null, port: null, secret: null });
    await results.repo.addDestination({ site_id: 'site-a', name: 'pacs-dimse', kind: 'dimse', url: null, headers: null, ae_title: viaDimse.aet, host: '127.0.0.1', port: viaDimse.dicomPort, secret: null });
    await results.repo.addDestination({ site_id: 'site-a', name: 'pacs-down', kind: 'stow', url: `http://127.0.0.1:${downPort}/dicom-web`, headers: null, ae_title: null, host: null, port: null, secret: null });
    await system.core.services.auth.createUser({ username: 'admin1', password: PASSWORD, role: 'admin', siteIds: ['site-a'] });

    model = await loadFractureModel(MODEL_DIR);
    classify = new ClassifyService(
      system.core.repos.instances, system.core.repos.aiResults, system.core.repos.storage, model,
      { decode: (bytes) => decodeInstance(bytes) }, system.core.repos.events, system.core.log,
      (siteId, studyId) => results.service.studyChanged(siteId, studyId),
    );
    connection = redisConnection(REDIS_URL);
    worker = new ResultsWorker(connection, system.config.queuePrefix, results.service, system.core.log);
    await worker.start();
    for (const file of sampleFiles) await ingestAndClassify(fs.readFileSync(file));
  }, 300_000);

  afterAll(async () => {
    await worker?.close();
    connection?.disconnect();
    await results?.queue.queue.obliterate({ force: true }).catch(() => {});
    await results?.queue.close();
    model?.dispose();
    await Promise.all([viaStow?.stop(), viaDimse?.stop(), comesBack?.stop()]);
    await system?.close();
  }, 60_000);

  it('sends each classified sample study an SR referencing every source image and a Secondary Capture and presentation state per scored image, over STOW-RS and C-STORE', async () => {
    const sent = (rows: Awaited<ReturnType<typeof deliveries>>, destination: number) => rows.filter((d) => d.destination_id === destination && d.status === 'sent').length;
    const destinations = await results.repo.listDestinations('site-a');
    const [stowId, dimseId] = ['pacs-stow', 'pacs-dimse'].map((n) => destinations.find((d) => d.name === n)!.id);
    await waitFor(async () => {
      const rows = await deliveries();
      return sent(rows, stowId) === studies.size && sent(rows, dimseId) === studies.size;
    }, 180_000, 'every study delivered to both PACS');

    for (const [studyUid, { studyId, sources }] of studies) {
      const version = (await results.repo.latestVersion(studyId))!;
      const objects = JSON.parse(version.objects) as StoredOutput[];
      const sr = objects.find((o) => o.kind === 'sr')!;
      const scored = (await system.core.repos.aiResults.byStudy(studyId)).filter((r) => r.status === 'done').length;
      expect(objects.filter((o) => o.kind === 'sc')).toHaveLength(scored);
      for (const orthanc of [viaStow, viaDimse]) {
        const held = await qidoInstances(orthanc, studyUid);
        // The PACS has our objects in the source study: exactly one SR, one SC per scored image.
        expect(held.filter((i) => i.sopClass === COMPREHENSIVE_SR).map((i) => i.sop)).toEqual([sr.sopInstanceUid]);
        expect(held.filter((i) => i.sopClass === SECONDARY_CAPTURE).map((i) => i.sop).sort()).toEqual(objects.filter((o) => o.kind === 'sc').map((o) => o.sopInstanceUid).sort());
        expect(held.filter((i) => i.sopClass === GRAYSCALE_SOFTCOPY_PRESENTATION_STATE).map((i) => i.sop).sort()).toEqual(objects.filter((o) => o.kind === 'pr').map((o) => o.sopInstanceUid).sort());
        const metadata = await wadoMetadata(orthanc, studyUid, sr.seriesUid, sr.sopInstanceUid);
        const referenced = referencedSops(metadata);
        for (const source of sources) expect(referenced.has(source)).toBe(true);
      }
    }
  }, 240_000);

  it('writes SRs, Secondary Captures and presentation states that dsrdump, dcmdump and dciodvfy read without errors', async () => {
    const all = (await versions()).flatMap((v) => JSON.parse(v.objects) as StoredOutput[]);
    expect(all.some((o) => o.kind === 'sr') && all.some((o) => o.kind === 'sc') && all.some((o) => o.kind === 'pr')).toBe(true);
    let flaggedBoxes = 0;
    for (const object of all) {
      // Stored as our own instance: what WADO-RS serves and what went to the PACS.
      const bytes = await system.core.repos.storage.readFile((await system.core.repos.instances.get(object.instanceId!))!.storage_key);
      const dump = await check('dcmdump', bytes);
      expect(dump.code, dump.output).toBe(0);
      expect(errorLines(dump.output), dump.output).toEqual([]);
      const iod = await check('dciodvfy', bytes);
      expect(errorLines(iod.output), `${object.kind} ${object.sopInstanceUid}:\n${iod.output}`).toEqual([]);
      if (object.kind === 'sr') {
        const sr = await check('dsrdump', bytes);
        expect(sr.code, sr.output).toBe(0);
        expect(sr.output).toMatch(/Verification Flag\s*:\s*UNVERIFIED/);
        expect(sr.output).toMatch(/Completion Flag\s*:\s*COMPLETE/);
        expect(sr.output).toMatch(/AI decision support, not a/);
        if (/Finding"\)=\(72704001,SCT,"Fracture"\)/.test(sr.output)) {
          flaggedBoxes++;
          expect(sr.output).toMatch(/SCOORD:\(,,"Image Region"\)=\(POLYLINE/);
        } else {
          expect(sr.output).toMatch(/No fracture found|Not applicable|Unreadable/);
        }
      } else if (object.kind === 'sc') {
        expect(dump.output).toMatch(/\(0028,0301\) CS \[YES\]/);
      } else {
        expect(object.kind).toBe('pr');
        expect(dump.output).toMatch(/\(0070,0006\) ST \[AI decision support, not a diagnosis/);
        expect(dump.output).toContain(`(0008,1155) UI [${object.sourceSopInstanceUid}]`);
      }
    }
    // The fractured samples give boxes (the worker test holds the model to its flag rate).
    expect(flaggedBoxes).toBeGreaterThan(0);
  }, 120_000);

  it('keeps a down destination retrying, shows it on the admin API, and delivers once when it comes back', async () => {
    const session = await login(system.url, 'admin1');
    const admin = async (status: string) => {
      const response = await fetch(`${system.url}/api/admin/results/deliveries?status=${status}`, { headers: { cookie: session.cookie } });
      expect(response.status).toBe(200);
      return response.json() as Promise<{ deliveries: { destination: string; last_error: string | null; attempts: number }[]; stats: { status: string; count: number }[] }>;
    };
    const retrying = await waitFor(async () => {
      const list = (await admin('retrying')).deliveries.filter((d) => d.destination === 'pacs-down');
      return list.length === studies.size && list;
    }, 120_000, 'every delivery to the down PACS retrying');
    expect(retrying.every((d) => /ECONNREFUSED/.test(d.last_error ?? ''))).toBe(true);

    comesBack = await startOrthanc({ httpPort: downPort });
    const destination = (await results.repo.listDestinations('site-a')).find((d) => d.name === 'pacs-down')!;
    await waitFor(async () => (await deliveries()).filter((d) => d.destination_id === destination.id && d.status === 'sent').length === studies.size,
      180_000, 'the back-up PACS to receive every study');
    for (const [studyUid, { studyId }] of studies) {
      const version = (await results.repo.latestVersion(studyId))!;
      const held = await qidoInstances(comesBack, studyUid);
      expect(held.filter((i) => i.sopClass === COMPREHENSIVE_SR).map((i) => i.sop)).toEqual([version.sr_sop_uid]);
    }
    expect((await admin('sent')).stats.find((s) => s.status === 'sent')!.count).toBe(3 * studies.size);
    // The worker's metrics count sends by kind and outcome, failures included.
    const metrics = await workerMetrics().registry.metrics();
    expect(metrics).toMatch(/^ft_results_sends_total\{kind="stow",outcome="failed"\} [1-9]/m);
    expect(metrics).toMatch(/^ft_results_sends_total\{kind="dimse",outcome="sent"\} [1-9]/m);
    expect(metrics).toMatch(/^ft_results_send_duration_seconds_count\{kind="stow",outcome="sent"\} [1-9]/m);
  }, 360_000);

  it('makes a new version for a later image, whose SR names the first as its predecessor; a re-prepare sends nothing twice', async () => {
    const [studyUid, entry] = [...studies].find(([, s]) => s.sources.length === 1)!;
    const first = (await results.repo.latestVersion(entry.studyId))!;
    // Preparing again with nothing new changes nothing.
    expect((await results.service.prepare(entry.studyId)).outcome).toBe('unchanged');
    const source = await parseInstance(await system.core.repos.storage.readFile((await system.core.repos.instances.findBySop('site-a', entry.sources[0]))!.storage_key));
    const later = makeDx({ studyUid, rows: 256, columns: 256, patientName: source.patientName ?? undefined, patientId: source.patientId ?? undefined, accession: source.accessionNumber ?? undefined });
    await ingestAndClassify(later.bytes);
    const second = await waitFor(async () => {
      const latest = await results.repo.latestVersion(entry.studyId);
      return latest && latest.version === 2 && latest;
    }, 60_000, 'a second version');
    expect(second.sr_sop_uid).not.toBe(first.sr_sop_uid);
    await waitFor(async () => (await deliveries()).filter((d) => d.version_id === second.id && d.status === 'sent').length === 3, 120_000, 'version 2 delivered');
    const held = await qidoInstances(viaStow, studyUid);
    expect(held.filter((i) => i.sopClass === COMPREHENSIVE_SR).map((i) => i.sop).sort()).toEqual([first.sr_sop_uid, second.sr_sop_uid].sort());
    // The first image's capture is unchanged, so it keeps its UID: the PACS holds one per scored image.
    const captures = (v: typeof first) => (JSON.parse(v.objects) as StoredOutput[]).filter((o) => o.kind === 'sc').map((o) => o.sopInstanceUid);
    expect(captures(second)).toEqual(expect.arrayContaining(captures(first)));
    expect(held.filter((i) => i.sopClass === SECONDARY_CAPTURE).map((i) => i.sop).sort()).toEqual(captures(second).sort());
    const metadata = await wadoMetadata(viaStow, studyUid, second.sr_series_uid, second.sr_sop_uid) as Record<string, { Value?: unknown[] }>[];
    const predecessor = (metadata[0]['0040A360'] ?? metadata[0]['0040a360']) as { Value?: unknown[] };
    expect(referencedSops(predecessor)).toEqual(new Set([first.sr_sop_uid]));
    expect(referencedSops(metadata[0]['0040A375'] ?? metadata[0]['0040a375'])).toContain(later.sopInstanceUid);
  }, 240_000);
});
