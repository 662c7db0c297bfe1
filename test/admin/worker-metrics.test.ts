import { afterAll, describe, expect, it } from 'vitest';
import { EventEmitter } from 'node:events';
import { countJob, countResult, instrumentBullWorker, observeResultTimes, recordHeartbeat, recordStoredResult, startMetricsServer, workerMetricsPort, type MetricsServer } from '../../services/core/metrics.js';
import { metric, parseMetrics } from './helpers.js';
import { freePort } from '../helpers/redis-server.js';

describe('worker metrics server', () => {
  let server: MetricsServer | null = null;
  afterAll(() => server?.close());

  it('reads WORKER_METRICS_PORT (default 9464, 0 = off)', async () => {
    expect(workerMetricsPort({})).toBe(9464);
    expect(workerMetricsPort({ WORKER_METRICS_PORT: '0' })).toBe(0);
    expect(workerMetricsPort({ WORKER_METRICS_PORT: '9100' })).toBe(9100);
    expect(() => workerMetricsPort({ WORKER_METRICS_PORT: 'x' })).toThrow(/WORKER_METRICS_PORT/);
    expect(await startMetricsServer(0)).toBeNull();
  });

  it('serves job stage durations, results by flag, jobs, heartbeat and model as Prometheus text', async () => {
    server = await startMetricsServer(await freePort());
    const url = `http://127.0.0.1:${server!.port}/metrics`;
    const before = parseMetrics(await (await fetch(url)).text()).samples;

    const t = Date.now();
    observeResultTimes({ received_at: t - 9_000, queued_at: t - 8_000, started_at: t - 3_000, decoded_at: t - 2_500, inferred_at: t - 500, stored_at: t });
    countResult('done', 'definite');
    countResult('done', 'none');
    countResult('failed', null);
    countJob('completed');
    countJob('completed');
    countJob('failed');
    recordHeartbeat({ id: 'host-1:7', backend: 'wasm', modelName: 'fracatlas-heatnet', modelVersion: 'v1', jobsDone: 2, lastHeartbeat: t });

    const res = await fetch(url);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const { samples } = parseMetrics(await res.text());
    const delta = (name: string, labels: Record<string, string> = {}) => metric(samples, name, labels) - metric(before, name, labels);
    for (const stage of ['queue_wait', 'decode', 'inference', 'store', 'total', 'upload_to_result']) {
      expect(delta('ft_job_stage_duration_seconds_count', { stage }), stage).toBe(1);
    }
    expect(delta('ft_job_stage_duration_seconds_sum', { stage: 'queue_wait' })).toBeCloseTo(5, 6);
    expect(delta('ft_job_stage_duration_seconds_sum', { stage: 'inference' })).toBeCloseTo(2, 6);
    expect(delta('ft_job_stage_duration_seconds_sum', { stage: 'upload_to_result' })).toBeCloseTo(9, 6);
    expect(delta('ft_worker_results_total', { status: 'done', flag: 'definite' })).toBe(1);
    expect(delta('ft_worker_results_total', { status: 'failed', flag: '' })).toBe(1);
    expect(delta('ft_worker_jobs_total', { outcome: 'completed' })).toBe(2);
    expect(delta('ft_worker_jobs_total', { outcome: 'failed' })).toBe(1);
    expect(metric(samples, 'ft_worker_last_heartbeat_timestamp_seconds', { worker: 'host-1:7' })).toBeCloseTo(t / 1000, 3);
    expect(metric(samples, 'ft_worker_model_info', { model_name: 'fracatlas-heatnet', model_version: 'v1', backend: 'wasm' })).toBe(1);
    expect(metric(samples, 'ft_worker_process_cpu_seconds_total')).toBeGreaterThan(0);
    expect((await fetch(`http://127.0.0.1:${server!.port}/other`)).status).toBe(404);

    // The one-call helpers the worker uses.
    const bull = new EventEmitter();
    instrumentBullWorker(bull as any);
    bull.emit('completed');
    bull.emit('failed');
    recordStoredResult({ status: 'done', flag: 'doubt', queued_at: t - 4_000, started_at: t - 1_000, decoded_at: t - 800, inferred_at: t - 200, stored_at: t }, t - 5_000);
    const after = parseMetrics(await (await fetch(url)).text()).samples;
    const delta2 = (name: string, labels: Record<string, string> = {}) => metric(after, name, labels) - metric(samples, name, labels);
    expect(delta2('ft_worker_jobs_total', { outcome: 'completed' })).toBe(1);
    expect(delta2('ft_worker_jobs_total', { outcome: 'failed' })).toBe(1);
    expect(delta2('ft_worker_results_total', { status: 'done', flag: 'doubt' })).toBe(1);
    expect(delta2('ft_job_stage_duration_seconds_count', { stage: 'upload_to_result' })).toBe(1);
    expect(delta2('ft_job_stage_duration_seconds_sum', { stage: 'upload_to_result' })).toBeCloseTo(5, 6);
  });
});
