/**
 * AI results going back to the hospital (issue 13): DICOM SR + Secondary Captures, STOW-RS /
 * C-STORE / webhook destinations, their queue, and the results API's data. `resultsFor(core)`
 * gives every entry point (API, worker, CLI) the same set, built once per Core.
 */
import type { Core } from '../core/core.js';
import { decodeInstance, type DecodedImage } from '../imaging/index.js';
import { ResultsQueue } from './results-queue.js';
import { ResultsRepository } from './results.repository.js';
import { ResultsService } from './results.service.js';

export interface Results {
  repo: ResultsRepository;
  queue: ResultsQueue;
  service: ResultsService;
}

const built = new WeakMap<Core, Results>();

export function resultsFor(core: Core, decode: (bytes: Uint8Array) => Promise<DecodedImage> = (bytes) => decodeInstance(bytes)): Results {
  const existing = built.get(core);
  if (existing) return existing;
  const { config } = core;
  const repo = new ResultsRepository(core.database.db);
  const queue = new ResultsQueue(core.redis, config.queuePrefix, { attempts: config.results.sendAttempts, backoffMs: config.results.sendBackoffMs });
  queue.queue.on('error', (err) => core.log.warn({ err: err.message }, 'results queue error'));
  const service = new ResultsService(repo, core.repos.storage, core.services.ingest, queue, decode, {
    stableMs: config.results.stableSec * 1000,
    // Read when used: tests (and a server on port 0) learn the public URL after start.
    get publicUrl() { return config.publicUrl; },
  }, core.log);
  const results = { repo, queue, service };
  built.set(core, results);
  return results;
}

export { ResultsWorker } from './results-worker.js';
