import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { METRIC_PREFIX, identityRefusalsCounter } from '../core/metrics.js';

/**
 * The C-STORE listener's metrics, per site (labels never carry AE titles of unknown callers, UIDs
 * or patient data). Served on DIMSE_METRICS_PORT by the listener process.
 */
export function createDimseMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: `${METRIC_PREFIX}dimse_` });
  return {
    registry,
    associations: new Counter({
      name: `${METRIC_PREFIX}dimse_associations_total`,
      help: 'Association requests, by site ("" when the caller is unknown) and result (accepted, unknown_calling_ae, wrong_called_ae, busy)',
      labelNames: ['site', 'result'] as const,
      registers: [registry],
    }),
    activeAssociations: new Gauge({
      name: `${METRIC_PREFIX}dimse_associations_active`,
      help: 'Associations open now',
      registers: [registry],
    }),
    stores: new Counter({
      name: `${METRIC_PREFIX}dimse_stores_total`,
      help: 'C-STORE requests answered, by site and outcome (stored, duplicate, conflict, failed)',
      labelNames: ['site', 'outcome'] as const,
      registers: [registry],
    }),
    bytes: new Counter({
      name: `${METRIC_PREFIX}dimse_bytes_total`,
      help: 'Data set bytes received by C-STORE, by site',
      labelNames: ['site'] as const,
      registers: [registry],
    }),
    identityRefusals: identityRefusalsCounter(registry),
  };
}

export type DimseMetrics = ReturnType<typeof createDimseMetrics>;
