import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../services/core/config.js';
import { createCore, type Core } from '../../services/core/core.js';
import { createLogger } from '../../services/core/logger.js';
import { DEFAULT_MODEL_DIR } from '../../services/inference/defaultModel.js';
import { freePort } from './redis-server.js';
import { REDIS_URL } from './system.js';

const root = path.resolve(import.meta.dirname, '../..');
export const MODEL_DIR = process.env.MODEL_DIR ?? path.join(root, DEFAULT_MODEL_DIR);

/**
 * The real system as separate processes (API and classify workers), sharing a temp data folder,
 * a SQLite file and a queue prefix, so tests can SIGKILL and SIGTERM them like an operator would.
 */
export interface ProcessSystem {
  env: Record<string, string>;
  core: Core;
  key: string;
  url: string;
  /**
   * `openFiles`: start it under `ulimit -n` (its soft open-file limit), as a constrained host would.
   * `entry`: another API entry point, e.g. 'services/api/cluster.ts' (several API processes, one port).
   */
  startApi(opts?: { openFiles?: number; env?: Record<string, string>; entry?: string }): Promise<ChildProcess>;
  startWorker(extra?: Record<string, string>): Promise<ChildProcess>;
  /** The DICOM listener (services/dimse/main.ts); set DIMSE_PORT in the env. */
  startDimse(extra?: Record<string, string>): Promise<ChildProcess>;
  /** Everything the processes wrote to stdout and stderr so far. */
  output(): string;
  stop(): Promise<void>;
}

function waitForLine(child: ChildProcess, text: string, timeoutMs = 60_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`timed out waiting for "${text}"; output so far:\n${seen.slice(-2000)}`)), timeoutMs);
    const onData = (d: Buffer) => {
      seen += d.toString();
      if (seen.includes(text)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (d: Buffer) => (seen += d.toString()));
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`process exited (${code ?? signal}) before "${text}":\n${seen.slice(-2000)}`));
    });
  });
}

export async function startProcessSystem(env: Record<string, string> = {}): Promise<ProcessSystem> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ft-proc-'));
  const port = String(await freePort());
  const fullEnv: Record<string, string> = {
    DATA_DIR: dataDir, DATABASE_URL: `sqlite:${path.join(dataDir, 'db.sqlite')}`, REDIS_URL,
    QUEUE_PREFIX: `ft-proc-${randomBytes(4).toString('hex')}`, PORT: port, LOG_LEVEL: 'info', MODEL_DIR,
    // Short locks so a killed worker's job is handed out again within seconds.
    JOB_LOCK_MS: '3000', STALLED_CHECK_MS: '1000',
    // Several workers run side by side in tests: no fixed metrics port.
    WORKER_METRICS_PORT: '0',
    ...env,
  };
  const core = await createCore(loadConfig(fullEnv), createLogger('silent', 'test'));
  await core.services.apiKeys.createSite('site-a', 'A');
  const { key } = await core.services.apiKeys.createKey('site-a', 'test');
  const children: ChildProcess[] = [];
  const chunks: string[] = [];
  const spawnTs = (entry: string, extra: Record<string, string>, openFiles?: number) => {
    const command = [process.execPath, '--import', 'tsx', path.join(root, entry)];
    const options = { cwd: root, env: { ...process.env, ...fullEnv, ...extra }, stdio: ['ignore', 'pipe', 'pipe'] as ('ignore' | 'pipe')[] };
    const child = openFiles
      ? spawn('/bin/sh', ['-c', `ulimit -n ${openFiles} && exec "$@"`, 'sh', ...command], options)
      : spawn(command[0], command.slice(1), options);
    child.stdout!.on('data', (d: Buffer) => chunks.push(d.toString()));
    child.stderr!.on('data', (d: Buffer) => chunks.push(d.toString()));
    children.push(child);
    return child;
  };
  return {
    env: fullEnv, core, key, url: `http://127.0.0.1:${port}`,
    async startApi(opts = {}) {
      const child = spawnTs(opts.entry ?? 'services/api/server.ts', opts.env ?? {}, opts.openFiles);
      child.stdout!.resume();
      child.stderr!.resume();
      await waitFor(async () => {
        if (child.exitCode !== null) throw new Error(`API exited (${child.exitCode}):\n${chunks.join("").slice(-2000)}`);
        return fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false);
      }, 60_000, 'the API to answer');
      return child;
    },
    async startWorker(extra = {}) {
      const child = spawnTs('services/worker/main.ts', extra);
      await waitForLine(child, 'classify worker started');
      child.stdout!.resume();
      child.stderr!.resume();
      return child;
    },
    async startDimse(extra = {}) {
      const child = spawnTs('services/dimse/main.ts', extra);
      await waitForLine(child, 'DICOM listener started');
      child.stdout!.resume();
      child.stderr!.resume();
      return child;
    },
    output: () => chunks.join(''),
    async stop() {
      for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await core.jobs.classify.queue.obliterate({ force: true }).catch(() => {});
      await core.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function waitFor<T>(check: () => Promise<T | undefined | false | null>, timeoutMs = 60_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once('exit', () => resolve()));
}
