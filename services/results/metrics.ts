import { Counter, Histogram } from 'prom-client';
import { METRIC_PREFIX, workerMetrics } from '../core/metrics.js';

let sends: { count: Counter<'kind' | 'outcome'>; latency: Histogram<'kind' | 'outcome'> } | undefined;

/** Result sends, in the worker's registry (the results queue runs in the worker process). */
export function recordSend(kind: string, outcome: 'sent' | 'failed', seconds: number): void {
  sends ??= {
    count: new Counter({
      name: `${METRIC_PREFIX}results_sends_total`, help: 'Result deliveries attempted, by destination kind (stow, dimse, webhook) and outcome (sent, failed)',
      labelNames: ['kind', 'outcome'] as const, registers: [workerMetrics().registry],
    }),
    latency: new Histogram({
      name: `${METRIC_PREFIX}results_send_duration_seconds`, help: 'Time one delivery attempt took, by destination kind and outcome',
      labelNames: ['kind', 'outcome'] as const, buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers: [workerMetrics().registry],
    }),
  };
  sends.count.inc({ kind, outcome });
  sends.latency.observe({ kind, outcome }, seconds);
}
