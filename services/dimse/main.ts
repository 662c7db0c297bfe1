import { loadConfig } from '../core/config.js';
import { createCore } from '../core/core.js';
import { createLogger } from '../core/logger.js';
import { startMetricsServer } from '../core/metrics.js';
import { exitWithSupervisor } from '../supervisor/supervisor.js';
import { listenDimse, routeLibraryLog } from '../dimse-net/dcmjs-dimse.js';
import { createDimseMetrics } from './metrics.js';
import { storeScpHandlers } from './store-scp.js';

/**
 * The DICOM C-STORE/C-ECHO listener as its own process (`npm start` forks it; docker-compose runs
 * it as the "dimse" service). DIMSE_PORT=0 turns it off.
 */
async function main() {
  const config = loadConfig();
  const log = createLogger(config.logLevel, 'dimse');
  // Under `npm start`: gone with the supervisor, like the API and the worker (else a kill -9 of the
  // supervisor left the listener holding the DICOM port, and the next start could not bind it).
  exitWithSupervisor();
  if (!config.dimse.port) {
    log.info('DIMSE_PORT=0: DICOM listener off');
    return;
  }
  routeLibraryLog(log);
  const core = await createCore(config, log);
  const metrics = createDimseMetrics();
  const listener = await listenDimse({
    port: config.dimse.port,
    host: config.dimse.host,
    // A few more connections than associations, so a caller over the limit gets a proper A-ASSOCIATE-RJ.
    maxConnections: config.dimse.maxAssociations + 4,
    handlers: storeScpHandlers(core, metrics, log),
  });
  const metricsServer = await startMetricsServer(config.dimse.metricsPort, metrics.registry);
  log.info({ port: listener.port, host: config.dimse.host, aeTitle: config.dimse.aeTitle, demo: config.demo, metricsPort: metricsServer?.port }, 'DICOM listener started');

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await listener.close();
    await metricsServer?.close();
    await core.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
}

main().catch((err) => {
  console.error(`fracture-triage DICOM listener: ${err instanceof Error ? err.message : err}`);
  process.exit(1);
});
