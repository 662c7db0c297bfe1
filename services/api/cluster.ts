/**
 * Several API processes behind one port, for a host whose HTTP side needs more than one core:
 *
 *   API_PROCESSES=2 node dist/services/api/cluster.js      (instead of dist/services/api/server.js)
 *
 * node:cluster: the primary listens on PORT and hands each new connection to the next API process
 * in turn (round-robin; Node 20 has no SO_REUSEPORT). Every process is a complete API (its own
 * database pool and Redis connections); ingest stays durable-before-ack in each, because the answer
 * is sent by the process that wrote the file and committed the row. Only the first process runs the
 * reconciler and the orphan sweep. An API process that dies is started again after a second; a
 * connection the primary hands to it in the instant it dies can hang until the client's timeout
 * (seen in test/supervisor/api-cluster.test.ts), so clients must time out and retry, as STOW
 * senders do (a retried upload is acknowledged once: same SOP Instance UID, same bytes).
 * Not the default: `npm start` and the supervisor run one API process (services/api/server.ts).
 */
import cluster from 'node:cluster';
import { exitWithSupervisor } from '../supervisor/supervisor.js';
import { startApi } from './server.js';

const count = Math.max(1, Number(process.env.API_PROCESSES ?? 2) || 1);

if (cluster.isPrimary) {
  exitWithSupervisor();
  let stopping = false;
  const fork = (index: number) => {
    // API_CHORES: only one process runs the reconciler and the orphan sweep.
    const child = cluster.fork({ API_CHORES: index === 0 ? '1' : '0' });
    child.on('exit', (code, signal) => {
      if (stopping) return;
      console.error(`fracture-triage api cluster: process ${child.process.pid} exited (${code ?? signal}); starting another`);
      setTimeout(() => fork(index), 1_000);
    });
  };
  for (let i = 0; i < count; i++) fork(i);
  const stop = (signal: NodeJS.Signals) => {
    stopping = true;
    for (const child of Object.values(cluster.workers ?? {})) child?.process.kill(signal);
    cluster.disconnect(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
} else {
  startApi().catch((err) => {
    console.error(`fracture-triage api: ${err instanceof Error ? err.message : err}`);
    process.exit(1);
  });
}
