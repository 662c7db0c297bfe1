import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../core/logger.js';

/** One process the supervisor keeps running: `entry` is a module path under services/, without extension. */
export interface ChildSpec {
  name: string;
  entry: string;
}

const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 30_000;
/** A child that ran this long before dying is restarted quickly again (its back-off is reset). */
const STABLE_AFTER_MS = 60_000;
/** How long children get to finish work in flight after SIGTERM before they are killed. */
const STOP_GRACE_MS = 60_000;

/** services/<entry>.js or .ts, whichever this file itself is (dist or tsx). */
function entryPath(entry: string): string {
  const here = fileURLToPath(import.meta.url);
  return path.join(path.dirname(here), '..', `${entry}${path.extname(here)}`);
}

/**
 * Starts a child through the shell so its soft open-file limit is raised to the hard limit first
 * (Node has no setrlimit); where there is no POSIX shell, the node binary is started directly.
 */
function spawnChild(entry: string): ChildProcess {
  const node = [process.execPath, ...process.execArgv, entryPath(entry)];
  const env = { ...process.env, FT_SUPERVISED: '1' };
  if (process.platform === 'win32') return spawn(node[0], node.slice(1), { stdio: 'inherit', env });
  return spawn('/bin/sh', ['-c', 'ulimit -S -n "$(ulimit -H -n)" 2>/dev/null; exec "$@"', 'ft-child', ...node], { stdio: 'inherit', env });
}

/**
 * Keeps every child running: one that exits (crash, kill -9, out of memory) is started again after
 * a pause that doubles with each quick death (0.5 s up to 30 s). SIGTERM or SIGINT to the supervisor
 * stops all children (SIGTERM, then SIGKILL after the grace period) and exits.
 */
export function supervise(children: ChildSpec[], log: Logger): { stop(): Promise<void> } {
  const running = new Map<string, ChildProcess>();
  let stopping = false;

  const start = (spec: ChildSpec, delay: number) => {
    const startedAt = Date.now();
    const child = spawnChild(spec.entry);
    running.set(spec.name, child);
    log.info({ child: spec.name, pid: child.pid }, 'child started');
    child.on('error', (err) => log.error({ child: spec.name, err: err.message }, 'child could not be started'));
    child.on('exit', (code, signal) => {
      running.delete(spec.name);
      if (stopping) return;
      const next = Date.now() - startedAt > STABLE_AFTER_MS ? FIRST_DELAY_MS : delay;
      log.error({ child: spec.name, code, signal, restartInMs: next }, 'child exited; restarting');
      setTimeout(() => { if (!stopping) start(spec, Math.min(next * 2, MAX_DELAY_MS)); }, next);
    });
  };
  for (const spec of children) start(spec, FIRST_DELAY_MS);

  const stop = async () => {
    if (stopping) return;
    stopping = true;
    const exits = [...running.values()].map((child) => new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      const kill = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      child.once('exit', () => { clearTimeout(kill); resolve(); });
      child.kill('SIGTERM');
    }));
    await Promise.all(exits);
  };
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      log.info({ signal }, 'stopping all children');
      void stop().then(() => process.exit(0));
    });
  }
  return { stop };
}

/**
 * In a supervised child: exit when the supervisor is gone (killed with -9, its children would
 * otherwise live on as orphans that nothing restarts or stops).
 */
export function exitWithSupervisor(): void {
  if (process.env.FT_SUPERVISED !== '1') return;
  const parent = process.ppid;
  setInterval(() => { if (process.ppid !== parent) process.kill(process.pid, 'SIGTERM'); }, 1_000).unref();
}
