/**
 * Sends fuzz cases through STOW-RS against a real API process, then puts every accepted image
 * through the worker's pipeline code (ClassifyService: read stored file → decode pool → letterbox →
 * heat map PNG → result row), with a stand-in model so no trained weights are needed.
 *
 * Counted as a finding (and saved under test/fixtures/fuzz-regressions/):
 * - a 5xx response, a request that does not answer within the per-request timeout, a connection
 *   reset, or the API process exiting (crash);
 * - a rejection without a reason (no Error Comment / message);
 * - in the pipeline: an error other than PixelDataError, a decoder thread that died, a decode that
 *   timed out (hang).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { ClassifyService } from '../../../services/core/services/classify.service.js';
import { createDecodePool } from '../../../services/imaging/decode-pool.js';
import { isPixelDataError } from '../../../services/imaging/index.js';
import type { FractureModel, Prediction } from '../../../services/inference/index.js';
import { createLogger } from '../../../services/core/logger.js';
import { multipart } from '../../helpers/dicom.js';
import { startProcessSystem, type ProcessSystem } from '../../helpers/processes.js';
import { fuzzCase, loadSeeds, type FuzzCase } from './mutator.js';

export const REGRESSION_DIR = path.resolve(import.meta.dirname, '../../fixtures/fuzz-regressions');

export interface FuzzFinding {
  index: number;
  seed: string;
  mutations: string[];
  kind: string;
  detail: string;
  file?: string;
}

export interface FuzzFigures {
  runSeed: number;
  cases: number;
  statuses: Record<string, number>;
  accepted: number;
  rejectedWithReason: number;
  rejectionReasons: Record<string, number>;
  serverErrors: number;
  hangs: number;
  crashes: number;
  missingReason: number;
  /** Rejections that blame the server (0x0110 / 0xA700) for a broken file. */
  wrongReason: number;
  pipeline: { classified: number; outcomes: Record<string, number> };
  apiRssMbStart: number;
  apiRssMbMax: number;
  testRssMbMax: number;
  seconds: number;
  findings: FuzzFinding[];
}

/** A stand-in for the trained network: fixed output of the right shape. */
function stubModel(inputSize = 64): FractureModel {
  const heatmapSize = 8;
  const prediction: Prediction = { probability: 0.5, rawScore: 0, flag: 'doubt', heatmap: new Float32Array(heatmapSize * heatmapSize).fill(0.5), heatmapSize, boxes: [] };
  return {
    name: 'fuzz-stub', version: '0', backend: 'none', inputSize, operatingPoints: { doubt: 0.3, definite: 0.7 },
    manifest: {} as FractureModel['manifest'],
    predict: async () => prediction,
    raw: async () => ({ heat: prediction.heatmap, cls: 0 }),
    dispose: () => {},
  };
}

function rssMb(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    return Math.round(kb / 1024);
  } catch {
    return 0;
  }
}

const reasonKey = (text: string) => text.replace(/[0-9]+/g, 'N').replace(/"[^"]*"/g, '"…"').slice(0, 80);

export async function runFuzz(opts: {
  cases: number;
  runSeed: number;
  concurrency?: number;
  requestTimeoutMs?: number;
  decodeTimeoutMs?: number;
  saveFindings?: boolean;
  log?: (line: string) => void;
}): Promise<FuzzFigures> {
  const started = Date.now();
  const seeds = await loadSeeds();
  const concurrency = opts.concurrency ?? 4;
  const requestTimeoutMs = opts.requestTimeoutMs ?? 20_000;
  const system: ProcessSystem = await startProcessSystem({ LOG_LEVEL: 'warn', MAX_CONCURRENT_UPLOADS: '64', MAX_CONCURRENT_UPLOADS_PER_KEY: '64', RECONCILE_INTERVAL_SEC: '3600' });
  const figures: FuzzFigures = {
    runSeed: opts.runSeed, cases: 0, statuses: {}, accepted: 0, rejectedWithReason: 0, rejectionReasons: {}, serverErrors: 0, hangs: 0,
    crashes: 0, missingReason: 0, wrongReason: 0, pipeline: { classified: 0, outcomes: {} }, apiRssMbStart: 0, apiRssMbMax: 0, testRssMbMax: 0, seconds: 0, findings: [],
  };
  const pool = createDecodePool(1, { timeoutMs: opts.decodeTimeoutMs ?? 20_000, maxQueue: 100_000 });
  let api: ChildProcess | undefined;
  try {
    api = await system.startApi();
    figures.apiRssMbStart = rssMb(api.pid);
    const classify = new ClassifyService(
      system.core.repos.instances, system.core.repos.aiResults, system.core.repos.storage, stubModel(),
      { decode: (bytes) => pool.decode(bytes) }, system.core.repos.events, createLogger('silent', 'fuzz'),
    );

    const finding = (c: FuzzCase, kind: string, detail: string) => {
      const f: FuzzFinding = { index: c.index, seed: c.seed, mutations: c.mutations, kind, detail: detail.slice(0, 500) };
      if (opts.saveFindings !== false) {
        fs.mkdirSync(REGRESSION_DIR, { recursive: true });
        const name = `seed${opts.runSeed}-case${c.index}-${kind}.dcm`;
        fs.writeFileSync(path.join(REGRESSION_DIR, name), c.bytes);
        fs.writeFileSync(path.join(REGRESSION_DIR, name.replace(/\.dcm$/, '.json')), `${JSON.stringify({ ...f, file: name }, null, 2)}\n`);
        f.file = name;
      }
      figures.findings.push(f);
      opts.log?.(`finding: case ${c.index} (${c.seed}; ${c.mutations.join('+')}): ${kind}: ${f.detail}`);
    };

    const bump = (map: Record<string, number>, key: string) => void (map[key] = (map[key] ?? 0) + 1);

    const sendOne = async (c: FuzzCase) => {
      const body = multipart([c.bytes]);
      let status: number;
      let text: string;
      try {
        const res = await fetch(`${system.url}/dicomweb/studies`, {
          method: 'POST', headers: { 'content-type': body.contentType, authorization: `Bearer ${system.key}` }, body: body.body,
          signal: AbortSignal.timeout(requestTimeoutMs),
        });
        status = res.status;
        text = await res.text();
      } catch (error) {
        const err = error as Error;
        if (err.name === 'TimeoutError') {
          figures.hangs++;
          finding(c, 'hang', `no answer within ${requestTimeoutMs} ms`);
        } else {
          figures.crashes++;
          finding(c, 'connection', `${err.message} ${(err.cause as Error | undefined)?.message ?? ''}`);
        }
        return;
      }
      bump(figures.statuses, String(status));
      if (status >= 500) {
        figures.serverErrors++;
        finding(c, `http${status}`, text);
        return;
      }
      const json = text ? JSON.parse(text) : undefined;
      const failed = json?.['00081198']?.Value ?? [];
      const stored = json?.['00081199']?.Value ?? [];
      if (status === 200 || status === 202 || status === 409) {
        for (const item of failed) {
          const reason = item['00000902']?.Value?.[0];
          const code = item['00081197']?.Value?.[0];
          if (!reason || typeof code !== 'number') {
            figures.missingReason++;
            finding(c, 'no-reason', JSON.stringify(item));
          } else if (code === 0x0110 || code === 0xa700) {
            // The server is healthy during the fuzz run: "processing failure, try again" or "out of
            // resources" for a broken file is a wrong reason (an exception escaped the validation).
            figures.wrongReason++;
            finding(c, 'wrong-reason', `0x${code.toString(16)} ${reason}`);
          } else {
            figures.rejectedWithReason++;
            bump(figures.rejectionReasons, `0x${code.toString(16).toUpperCase()} ${reasonKey(reason)}`);
          }
        }
      } else if (!json?.message) {
        figures.missingReason++;
        finding(c, 'no-reason', `${status} ${text}`);
      } else {
        figures.rejectedWithReason++;
        bump(figures.rejectionReasons, `${status} ${reasonKey(json.message)}`);
      }
      for (const item of stored) {
        figures.accepted++;
        const sop = item['00081155'].Value[0] as string;
        const row = await system.core.repos.instances.findBySop('site-a', sop);
        if (!row) {
          finding(c, 'acknowledged-not-recorded', sop);
          continue;
        }
        // The job in Redis is not needed here: this harness runs the worker's code directly.
        if (await system.core.repos.aiResults.byInstance(row.id)) continue;
        try {
          const outcome = await classify.classify(row.id, { queuedAt: Date.now(), attempt: 1, maxAttempts: 1 });
          bump(figures.pipeline.outcomes, outcome);
        } catch (error) {
          const err = error as Error;
          const result = await system.core.repos.aiResults.byInstance(row.id);
          if (err.name === 'UnrecoverableError' && result?.status === 'failed' && result.reason) {
            bump(figures.pipeline.outcomes, `failed: ${reasonKey(result.reason).slice(0, 60)}`);
            if (/decode did not finish/.test(result.reason)) { figures.hangs++; finding(c, 'decode-hang', result.reason); }
            if (/decoder thread/.test(result.reason)) { figures.crashes++; finding(c, 'decoder-crash', result.reason); }
          } else if (!isPixelDataError(err)) {
            figures.crashes++;
            finding(c, 'pipeline-error', `${err.name}: ${err.message}\n${err.stack ?? ''}`);
          }
        }
        figures.pipeline.classified++;
      }
    };

    let next = 0;
    const sampler = setInterval(() => {
      figures.apiRssMbMax = Math.max(figures.apiRssMbMax, rssMb(api?.pid));
      figures.testRssMbMax = Math.max(figures.testRssMbMax, Math.round(process.memoryUsage().rss / 1024 / 1024));
    }, 250);
    try {
      await Promise.all(Array.from({ length: concurrency }, async () => {
        while (next < opts.cases) {
          const index = next++;
          const c = fuzzCase(opts.runSeed, index, seeds);
          await sendOne(c);
          figures.cases++;
          if (api!.exitCode !== null || api!.signalCode !== null) {
            figures.crashes++;
            finding(c, 'api-exited', `API process exited (${api!.exitCode ?? api!.signalCode})\n${system.output().slice(-3000)}`);
            api = await system.startApi();
          }
          if (figures.cases % 1000 === 0) opts.log?.(`${figures.cases} cases, ${figures.accepted} accepted, API RSS ${rssMb(api!.pid)} MB`);
        }
      }));
    } finally {
      clearInterval(sampler);
    }
    figures.apiRssMbMax = Math.max(figures.apiRssMbMax, rssMb(api.pid));
  } finally {
    await pool.close();
    await system.stop();
  }
  figures.seconds = Math.round((Date.now() - started) / 1000);
  return figures;
}
