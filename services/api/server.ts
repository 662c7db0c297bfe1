import { loadConfig } from '../core/config.js';
import { createCore } from '../core/core.js';
import { createLogger } from '../core/logger.js';
import { buildApp } from './app.js';

/** The API process: HTTP server plus the reconciler that keeps Redis in step with the database. */
export async function startApi() {
  const config = loadConfig();
  const log = createLogger(config.logLevel, 'api');
  const core = await createCore(config, log);
  const app = await buildApp(core);

  const reconcile = async () => {
    try {
      await core.services.reconcile.requeueMissing();
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'reconcile pass failed; will try again');
    }
  };
  // Files left by a crash mid-upload: temp files from before this start, orphans past the grace period.
  const sweep = () => core.services.reconcile.removeOrphanFiles().catch((err) => log.warn({ err: (err as Error).message }, 'orphan sweep failed'));

  await app.listen({ host: config.host, port: config.port });
  // Both walk everything stored or pending: run them once listening, so a large store does not delay start.
  void sweep();
  void reconcile();
  const timer = setInterval(reconcile, config.reconcileIntervalSec * 1000);
  const sweeper = setInterval(sweep, 3600_000);

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
