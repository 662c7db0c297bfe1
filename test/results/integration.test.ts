import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { redisConnection } from '../../services/core/queue/classify-queue.js';
import { destinationRow } from '../../services/results/destinations.js';
import { resultsFor, ResultsWorker, type Results } from '../../services/results/index.js';
import type { ResultSummary } from '../../services/results/results.service.js';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER } from '../../services/results/senders/webhook-sender.js';
import { makeDx } from '../helpers/dicom.js';
import { ingestDirect } from '../helpers/ingest.js';
import { waitFor } from '../helpers/processes.js';
import { REDIS_URL, startSystem, type TestSystem } from '../helpers/system.js';

const root = path.resolve(import.meta.dirname, '../..');
const run = promisify(execFile);

/** A webhook receiver that answers 500 to the first `failFirst` calls, then 204. */
async function receiver(failFirst: number) {
  const calls: { headers: http.IncomingHttpHeaders; body: string; answered: number }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const answered = calls.length < failFirst ? 500 : 204;
      calls.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), answered });
      res.writeHead(answered).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  return { url: `http://127.0.0.1:${address.port}/ris/ai`, calls, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe('results: CLI destinations, signed webhook, results API, quiet period', () => {
  let system: TestSystem;
  let results: Results;
  let connection: Redis;
  let worker: ResultsWorker;

  /** Stores an image and a result for it (as the classify worker would), returns the study id. */
  async function classifiedStudy(opts: { studyUid?: string; accession: string; flag: 'none' | 'doubt' | 'definite' }) {
    const dx = makeDx({ studyUid: opts.studyUid, rows: 64, columns: 64, accession: opts.accession });
    await ingestDirect(system.core, dx.bytes);
    const instance = (await system.core.repos.instances.findBySop('site-a', dx.sopInstanceUid))!;
    const boxes = opts.flag === 'none' ? [] : [{ x: 8, y: 8, width: 20, height: 16, level: opts.flag }];
    await system.core.repos.aiResults.store({
      instance_id: instance.id, site_id: 'site-a', study_id: instance.study_id, status: 'done', model_name: 'test-model', model_version: '9.9',
      backend: 'cpu', probability: opts.flag === 'none' ? 0.02 : 0.4, raw_score: 0, flag: opts.flag, boxes: JSON.stringify(boxes),
      heatmap_key: null, reason: null, queued_at: null, started_at: Date.now(), stored_at: Date.now(),
    });
    await results.service.studyChanged('site-a', instance.study_id);
    return { studyId: instance.study_id, studyUid: dx.studyUid, sop: dx.sopInstanceUid };
  }

  const cli = (...args: string[]) => run(process.execPath, ['--import', 'tsx', path.join(root, 'services/cli/admin.ts'), ...args], {
    cwd: root, env: { ...process.env, DATA_DIR: system.dataDir, DATABASE_URL: system.config.databaseUrl, REDIS_URL, QUEUE_PREFIX: system.config.queuePrefix },
  }).then((r) => ({ code: 0, out: r.stdout + r.stderr }), (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout + e.stderr }));

  beforeAll(async () => {
    system = await startSystem({ env: { STUDY_STABLE_SEC: '0', SEND_BACKOFF_MS: '200', SEND_ATTEMPTS: '10' } });
    results = resultsFor(system.core);
    connection = redisConnection(REDIS_URL);
    worker = new ResultsWorker(connection, system.config.queuePrefix, results.service, system.core.log);
    await worker.start();
  }, 60_000);

  afterAll(async () => {
    await worker?.close();
    connection?.disconnect();
    await results?.queue.queue.obliterate({ force: true }).catch(() => {});
    await results?.queue.close();
    await system?.close();
  });

  it('adds, lists and removes destinations with the CLI, and refuses malformed ones with a clear message', async () => {
    expect((await cli('destination:add', 'site-b', 'pacs', '--stow', 'https://pacs.example/dicom-web/', '--header', 'Authorization: Bearer abc')).code).toBe(0);
    expect((await cli('destination:add', 'site-b', 'router', '--dimse', 'ROUTER@10.0.0.5:104')).code).toBe(0);
    const listed = await cli('destination:list', 'site-b');
    expect(listed.out).toContain('site-b\tpacs\tstow\thttps://pacs.example/dicom-web headers: Authorization');
    expect(listed.out).toContain('site-b\trouter\tdimse\tROUTER@10.0.0.5:104');
    expect(listed.out).not.toContain('Bearer abc');
    const bad = await cli('destination:add', 'site-b', 'x', '--dimse', 'A_TITLE_MUCH_TOO_LONG@h:104');
    expect(bad.code).toBe(1);
    expect(bad.out).toMatch(/AE title at most 16 characters/);
    const webhook = await cli('webhook:add', 'site-b', 'https://ris.example/hook');
    expect(webhook.out).toMatch(/webhook secret \(shown once/);
    expect((await cli('destination:remove', 'site-b', 'router')).code).toBe(0);
    expect((await results.repo.listDestinations('site-b')).map((d) => d.name).sort()).toEqual(['pacs', 'webhook-ris.example']);
    expect((await cli('destination:remove', 'site-b', 'router')).code).toBe(1);
  }, 300_000);

  it('checks destinations before storing them', () => {
    expect(() => destinationRow('site-b', 'y', { kind: 'stow', url: 'ftp://pacs', headers: [] })).toThrow(/must be an http\(s\) URL/);
    expect(() => destinationRow('site-b', 'y', { kind: 'stow', url: 'http://pacs', headers: ['no colon'] })).toThrow(/'Name: value'/);
    expect(() => destinationRow('site-b', 'y', { kind: 'dimse', target: 'AE@host:70000' })).toThrow(/AE@host:port/);
    expect(destinationRow('site-b', 'y', { kind: 'dimse', target: 'PACS@10.1.2.3:11112' }).row).toMatchObject({ ae_title: 'PACS', host: '10.1.2.3', port: 11112 });
  });

  it('posts a signed JSON result to the webhook, retries a failing receiver, and posts once', async () => {
    const ris = await receiver(2);
    try {
      const secret = 'shared-secret-for-the-test';
      const added = await cli('webhook:add', 'site-a', ris.url, '--secret', secret);
      expect(added.code, added.out).toBe(0);
      const study = await classifiedStudy({ accession: 'ACC-WH-1', flag: 'doubt' });
      await waitFor(async () => ris.calls.some((c) => c.answered === 204), 60_000, 'the webhook to be accepted');
      // Nothing more arrives after success, even when the study is prepared again.
      expect((await results.service.prepare(study.studyId)).outcome).toBe('unchanged');
      expect(ris.calls.map((c) => c.answered)).toEqual([500, 500, 204]);
      const call = ris.calls[2];
      const expected = `sha256=${createHmac('sha256', secret).update(`${call.headers[TIMESTAMP_HEADER.toLowerCase()]}.${call.body}`).digest('hex')}`;
      expect(call.headers[SIGNATURE_HEADER.toLowerCase()]).toBe(expected);
      const body = JSON.parse(call.body) as ResultSummary;
      expect(body).toMatchObject({
        event: 'ai-result', schemaVersion: 1, studyInstanceUid: study.studyUid, accessionNumber: 'ACC-WH-1', flag: 'doubt', score: 0.4,
        model: { name: 'test-model', version: '9.9' }, version: 1, supersedesVersion: null,
      });
      expect(body.viewerUrl).toBe(`${system.url}/#/study/${study.studyId}`);
      expect(body.disclaimer).toMatch(/not a diagnosis/);
      expect(JSON.stringify(body)).not.toMatch(/TEST\^PATIENT|PID0001/);

      // A PACS that forwards the study back to us sends our own Secondary Capture: it is already
      // stored (as our own instance), so it is acknowledged as a duplicate and starts nothing.
      const version = (await results.repo.latestVersion(study.studyId))!;
      const sc = (JSON.parse(version.objects) as { kind: string; sopInstanceUid: string }[]).find((o) => o.kind === 'sc')!;
      const ours = (await system.core.repos.instances.findBySop('site-a', sc.sopInstanceUid))!;
      expect(ours).toMatchObject({ study_id: study.studyId, origin: 'ai' });
      expect((await ingestDirect(system.core, await system.core.repos.storage.readFile(ours.storage_key))).status).toBe('duplicate');
      expect((await results.service.prepare(study.studyId)).outcome).toBe('unchanged');
      expect(ris.calls).toHaveLength(3);
    } finally {
      for (const d of await results.repo.listDestinations('site-a')) await results.repo.removeDestination('site-a', d.name);
      await ris.close();
    }
  }, 180_000);

  it('answers the results API with the site key only, by Study Instance UID and by accession number', async () => {
    const study = await classifiedStudy({ accession: 'ACC-API-1', flag: 'definite' });
    await waitFor(async () => (await results.repo.latestVersion(study.studyId)) ?? false, 30_000, 'the study output');
    const get = (p: string, key?: string) => fetch(`${system.url}${p}`, { headers: key ? { authorization: `Bearer ${key}` } : {} });
    expect((await get(`/api/results/studies/${study.studyUid}`)).status).toBe(401);
    expect((await get(`/api/results/studies/${study.studyUid}`, system.keys.b)).status).toBe(404);
    const byUid = await get(`/api/results/studies/${study.studyUid}`, system.keys.a);
    expect(byUid.status).toBe(200);
    const json = await byUid.json() as { flag: string; result: ResultSummary };
    expect(json.flag).toBe('definite');
    expect(json.result.images[0]).toMatchObject({ sopInstanceUid: study.sop, flag: 'definite', boxes: 1 });
    const byAccession = await (await get('/api/results?accession=ACC-API-1', system.keys.a)).json() as { studies: { studyInstanceUid: string }[] };
    expect(byAccession.studies.map((s) => s.studyInstanceUid)).toEqual([study.studyUid]);
    expect((await (await get('/api/results?accession=ACC-API-1', system.keys.b)).json() as { studies: unknown[] }).studies).toEqual([]);
    const audited = await system.core.database.db.selectFrom('audit_log').selectAll().where('action', '=', 'results.read').execute();
    expect(audited.length).toBeGreaterThanOrEqual(2);
  }, 60_000);

  it('waits for the quiet period: a study whose last image is newer than STUDY_STABLE_SEC is not prepared yet', async () => {
    const quiet = resultsFor(system.core).service;
    const study = await classifiedStudy({ accession: 'ACC-Q-1', flag: 'none' });
    const received = (await system.core.repos.instances.findBySop('site-a', study.sop))!.received_at;
    // Same service, a 30 s quiet period, asked 10 s after the image arrived.
    const settings = (quiet as unknown as { settings: { stableMs: number } }).settings;
    const before = settings.stableMs;
    settings.stableMs = 30_000;
    try {
      const early = await quiet.prepare(study.studyId, received + 10_000);
      expect(early).toEqual({ outcome: 'waiting', waitMs: 20_000 });
    } finally {
      settings.stableMs = before;
    }
  });
});
