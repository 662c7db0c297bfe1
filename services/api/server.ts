import { loadConfig } from '../core/config.js';
import { createCore } from '../core/core.js';
import { createLogger } from '../core/logger.js';
import { DemoService } from '../core/services/demo.service.js';
import { exitWithSupervisor } from '../supervisor/supervisor.js';
import { buildApp } from './app.js';
import { surviveDescriptorExhaustion } from './plugins/connection-guard.js';

/** The API process: HTTP server plus the reconciler that keeps Redis in step with the database. */
export async function startApi() {
  process.umask(0o077);
  const config = loadConfig();
  const log = createLogger(config.logLevel, 'api');
  surviveDescriptorExhaustion(log);
  exitWithSupervisor();
  const core = await createCore(config, log);
  const demo = new DemoService(core.services.apiKeys, core.services.auth, core.repos.sites, core.repos.users, core.repos.audit, config.dataDir);
  if (config.demo) {
    log.warn('DEMO MODE: demo site, key and users are active; never use with real patients\' data');
  } else {
    const retired = await demo.retire();
    if (retired.users.length || retired.keys.length) log.warn({ users: retired.users, keys: retired.keys }, 'demo mode is off: demo users disabled and demo keys revoked');
  }
  const app = await buildApp(core);

  const reconcile = async () => {
    try {
      await core.services.reconcile.requeueMissing();
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'reconcile pass failed; will try again');
    }
  };
  // Files left by a crash mid-upload: files without a row, unchanged for the grace period (a live
  // upload touches its file more often), and, in tmp/, partial files of versions before 2026-12.
  const sweep = () => core.services.reconcile.removeOrphanFiles(undefined, 2 * config.limits.idleTimeoutMs)
    .catch((err) => log.warn({ err: (err as Error).message }, 'orphan sweep failed'));

  await app.listen({ host: config.host, port: config.port });
  // Both walk everything stored or pending: run them once listening, so a large store does not delay start.
  // Behind services/api/cluster.ts only one of the API processes runs them (API_CHORES=0 in the others).
  const chores = process.env.API_CHORES !== '0';
  if (chores) {
    void sweep();
    void reconcile();
  }
  const timer = chores ? setInterval(reconcile, config.reconcileIntervalSec * 1000) : undefined;
  const sweeper = chores ? setInterval(sweep, 10 * 60_000) : undefined;

  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    log.info({ signal }, 'shutting down: finishing requests in flight');
    clearInterval(timer);
    clearInterval(sweeper);
    await app.close();
    await core.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  return { app, core };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  startApi().catch((err) => {
    console.error(`fracture-triage api: ${err instanceof Error ? err.message : err}`);
    process.exit(1);
  });
}
