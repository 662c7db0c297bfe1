import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { parseInstance } from '../../services/dicom/index.js';
import { eventsChannel } from '../../services/core/repositories/event.repository.js';
import { renderPng } from '../../services/imaging/index.js';
import { send } from '../../services/cli/send.js';
import { makeDx, multipart } from '../helpers/dicom.js';
import { MODEL_DIR, startProcessSystem, waitFor, type ProcessSystem } from '../helpers/processes.js';

const root = path.resolve(import.meta.dirname, '../..');
export const SAMPLES = path.join(root, 'samples');
export const PASSWORD = 'correct horse battery';
export const hasModel = () => fs.existsSync(path.join(MODEL_DIR, 'manifest.json'));

/**
 * Builds web/dist when it is missing or older than the web sources. Test files run in parallel,
 * so a lock folder makes one build at a time and the others wait for it.
 */
export function ensureWebBuilt() {
  const lock = path.join(root, 'web/.build-lock');
  const deadline = Date.now() + 180_000;
  for (;;) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch {
      const age = Date.now() - (fs.statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > 120_000) fs.rmSync(lock, { recursive: true, force: true }); // left by a killed run
      if (Date.now() > deadline) throw new Error('timed out waiting for another web build');
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
    }
  }
  try {
    const dist = path.join(root, 'web/dist/index.html');
    const newest = (dir: string): number => fs.readdirSync(dir, { withFileTypes: true })
      .reduce((m, e) => Math.max(m, e.isDirectory() ? newest(path.join(dir, e.name)) : fs.statSync(path.join(dir, e.name)).mtimeMs), 0);
    const sources = Math.max(newest(path.join(root, 'web/src')), ...['index.html', 'admin.html', 'vite.config.ts'].map((f) => fs.statSync(path.join(root, 'web', f)).mtimeMs));
    if (!fs.existsSync(dist) || fs.statSync(dist).mtimeMs < sources) {
      execFileSync('npx', ['vite', 'build', '--config', 'web/vite.config.ts', '--logLevel', 'warn'], { cwd: root, stdio: 'inherit' });
    }
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
}

export interface ViewerSystem extends ProcessSystem {
  /** True when the real classifier worker produced the results; false when the model is missing and results were stood in. */
  realWorker: boolean;
  siteBStudyUid: string;
}

/**
 * The running system for the end-to-end tests and the benchmark: API and classifier worker as
 * child processes, site-a with the samples sent through STOW (the send CLI), site-b with one
 * study of its own, and users rad-a (site-a), rad-b (site-b), admin-a (site-a).
 *
 * Without a trained model (models/ not there yet) the worker cannot start; then each image gets a
 * stand-in result written through the same repository and event channel the worker uses, from
 * samples/manifest.csv (fractured → definite with the annotated boxes, else none), so the viewer
 * is still tested end to end. `realWorker` says which happened.
 */
export async function startViewerSystem(opts: { samples?: boolean } = {}): Promise<ViewerSystem> {
  const sys = await startProcessSystem({ LOG_LEVEL: 'warn' });
  const { core } = sys;
  try {
    await core.services.apiKeys.createSite('site-b', 'B');
    const keyB = (await core.services.apiKeys.createKey('site-b', 'test')).key;
    await core.services.auth.createUser({ username: 'rad-a', displayName: 'Dr A', password: PASSWORD, role: 'radiologist', siteIds: ['site-a'] });
    await core.services.auth.createUser({ username: 'rad-b', displayName: 'Dr B', password: PASSWORD, role: 'radiologist', siteIds: ['site-b'] });
    await core.services.auth.createUser({ username: 'admin-a', displayName: 'Admin A', password: PASSWORD, role: 'admin', siteIds: ['site-a'] });
    await sys.startApi();
    const realWorker = hasModel();
    // The helper waits for the worker's info-level "started" line.
    if (realWorker) await sys.startWorker({ LOG_LEVEL: 'info' });

    let files = 0;
    if (opts.samples !== false) {
      const summary = await send([SAMPLES], { url: sys.url, key: sys.key, concurrency: 2 });
      if (summary.failed) throw new Error(`send: ${JSON.stringify(summary.failures)}`);
      files = summary.stored + summary.warning;
    }
    const b = makeDx({ patientName: 'SITEB^ONLY', accession: 'SITE-B-ONLY', bodyPart: 'HAND', rows: 64, columns: 64 });
    const body = multipart([b.bytes]);
    const res = await fetch(`${sys.url}/dicomweb/studies`, { method: 'POST', headers: { 'content-type': body.contentType, authorization: `Bearer ${keyB}` }, body: body.body });
    if (res.status !== 200) throw new Error(`site-b stow: ${res.status}`);

    if (!realWorker) await standIn(sys);
    await waitFor(async () => {
      const rows = await core.database.db.selectFrom('ai_results').select('id').execute();
      return rows.length >= files + 1;
    }, 300_000, 'an AI result for every image');
    return Object.assign(sys, { realWorker, siteBStudyUid: b.studyUid });
  } catch (err) {
    console.error(sys.output().slice(-3000));
    await sys.stop();
    throw err;
  }
}

/** Stand-in results (no model): what the manifest says, stored and announced like the worker does. */
async function standIn(sys: ProcessSystem) {
  const { core } = sys;
  const manifest = new Map<string, { fractured: boolean; boxes: number[][] }>();
  const lines = fs.readFileSync(path.join(SAMPLES, 'manifest.csv'), 'utf8').trim().split('\n').slice(1);
  for (const line of lines) {
    const [file, , fractured, , , boxes] = line.split(',');
    const sop = (await parseInstance(fs.readFileSync(path.join(SAMPLES, file)))).sopInstanceUid;
    manifest.set(sop, { fractured: fractured === '1', boxes: (boxes ?? '').split(';').filter(Boolean).map((b) => b.split(' ').map(Number)) });
  }
  const instances = await core.database.db.selectFrom('instances').innerJoin('series', 'series.id', 'instances.series_id')
    .selectAll('instances').select('series.body_part as body_part').execute();
  let n = 0;
  for (const inst of instances) {
    if (inst.body_part === 'CHEST') { // as the worker does: not a body part the model knows
      await core.repos.aiResults.store({
        instance_id: inst.id, site_id: inst.site_id, study_id: inst.study_id, status: 'not_applicable', model_name: 'stand-in (no model)', model_version: 'manifest',
        backend: 'none', probability: null, raw_score: null, flag: null, boxes: null, heatmap_key: null, reason: 'body part CHEST is not one the model was trained on',
        attempts: 1, queued_at: inst.queued_at, started_at: Date.now(), decoded_at: null, inferred_at: null, stored_at: Date.now(),
      });
      continue;
    }
    const truth = manifest.get(inst.sop_instance_uid);
    const fractured = truth?.fractured ?? false;
    // Alternate definite/doubt over the fractured ones so both box styles appear.
    const flag = fractured ? (n++ % 2 === 0 ? 'definite' : 'doubt') : 'none';
    const probability = flag === 'definite' ? 0.9 : flag === 'doubt' ? 0.6 : 0.08;
    const boxes = (truth?.boxes ?? []).map(([cx, cy, w, h]) => ({
      x: (cx - w / 2) * inst.columns, y: (cy - h / 2) * inst.rows, width: w * inst.columns, height: h * inst.rows, score: probability, level: flag,
    }));
    // A heat map with a blob on each box (64×64 greyscale PNG over the whole image).
    const S = 64;
    const data = new Float32Array(S * S);
    for (const box of boxes) {
      const cx = ((box.x + box.width / 2) / inst.columns) * S;
      const cy = ((box.y + box.height / 2) / inst.rows) * S;
      for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) data[y * S + x] = Math.max(data[y * S + x], Math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 18));
    }
    const key = `heatmaps/standin-${inst.id}.png`;
    await core.repos.storage.writeDerived(key, renderPng({ width: S, height: S, data }, S));
    const { study, studyChanged } = await core.repos.aiResults.store({
      instance_id: inst.id, site_id: inst.site_id, study_id: inst.study_id, status: 'done', model_name: 'stand-in (no model)', model_version: 'manifest',
      backend: 'none', probability, raw_score: probability, flag: flag as 'none' | 'doubt' | 'definite', boxes: JSON.stringify(fractured ? boxes : []),
      heatmap_key: fractured ? key : null, reason: null, attempts: 1, queued_at: inst.queued_at, started_at: Date.now(), decoded_at: Date.now(), inferred_at: Date.now(), stored_at: Date.now(),
    });
    await core.redis.publish(eventsChannel(sys.env.QUEUE_PREFIX), JSON.stringify({ type: 'result', siteId: inst.site_id, studyId: inst.study_id, instanceId: inst.id, status: 'done', flag, probability }));
    if (studyChanged) await core.redis.publish(eventsChannel(sys.env.QUEUE_PREFIX), JSON.stringify({ type: 'study', siteId: study.site_id, studyId: study.id, aiState: study.ai_state, aiFlag: study.ai_flag, aiScore: study.ai_score }));
  }
}
