import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import { ORIGINAL_IMAGE } from './instance.repository.js';

export interface MinuteStats {
  /** Start of the minute, epoch ms. */
  minute: number;
  /** AI results stored in that minute (any status). */
  results: number;
  /** Upload → result latency percentiles of those results, ms (null when none). */
  p50Ms: number | null;
  p95Ms: number | null;
}

export type PipelineStage = 'queue_wait' | 'decode' | 'inference' | 'store' | 'total' | 'upload_to_result';

export interface StageStats { count: number; p50Ms: number | null; p95Ms: number | null }

export interface PipelineWindowStats {
  since: number;
  until: number;
  minutes: MinuteStats[];
  total: { results: number; perMinute: number; p50Ms: number | null; p95Ms: number | null };
  /** Time per pipeline stage over the window, from the times in ai_results (stages a result has times for). */
  stages: Record<PipelineStage, StageStats>;
  /** True when the window had more results than were read for the percentiles. */
  truncated: boolean;
}

export interface InstanceRef {
  instanceId: number;
  siteId: string;
  studyId: number;
  sopInstanceUid: string;
  studyUid: string;
  accessionNumber: string | null;
  status: string;
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (!sorted.length) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/**
 * Read-only queries for the admin dashboard and /metrics. One set of queries for SQLite and
 * PostgreSQL: rows are bucketed and percentiles taken in JavaScript (SQLite has no
 * percentile_cont), over at most `maxRows` results per window.
 */
export class PipelineStatsRepository {
  constructor(private readonly db: Db) {}

  /** Throughput per minute and upload→result latency (ai_results.stored_at − instances.received_at). */
  async window(opts: { minutes?: number; now?: number; maxRows?: number } = {}): Promise<PipelineWindowStats> {
    const minutes = Math.min(Math.max(opts.minutes ?? 60, 1), 24 * 60);
    const until = opts.now ?? Date.now();
    const firstMinute = Math.floor(until / 60_000) * 60_000 - (minutes - 1) * 60_000;
    const maxRows = opts.maxRows ?? 100_000;
    const rows = await this.db.selectFrom('ai_results')
      .innerJoin('instances', 'instances.id', 'ai_results.instance_id')
      .select([
        'ai_results.stored_at as stored_at', 'instances.received_at as received_at', 'ai_results.queued_at as queued_at',
        'ai_results.started_at as started_at', 'ai_results.decoded_at as decoded_at', 'ai_results.inferred_at as inferred_at',
      ])
      .where('ai_results.stored_at', '>=', firstMinute)
      .where('ai_results.stored_at', '<=', until)
      .orderBy('ai_results.stored_at', 'desc')
      .limit(maxRows + 1)
      .execute();
    const truncated = rows.length > maxRows;
    if (truncated) rows.pop();
    const buckets = new Map<number, number[]>();
    for (let m = 0; m < minutes; m++) buckets.set(firstMinute + m * 60_000, []);
    const all: number[] = [];
    const stageValues: Record<PipelineStage, number[]> = { queue_wait: [], decode: [], inference: [], store: [], total: [], upload_to_result: [] };
    const span = (stage: PipelineStage, from: number | null, to: number | null) => {
      if (from != null && to != null) stageValues[stage].push(Math.max(0, Number(to) - Number(from)));
    };
    for (const row of rows) {
      const storedAt = Number(row.stored_at);
      const latency = Math.max(0, storedAt - Number(row.received_at));
      buckets.get(Math.floor(storedAt / 60_000) * 60_000)?.push(latency);
      all.push(latency);
      span('queue_wait', row.queued_at, row.started_at);
      span('decode', row.started_at, row.decoded_at);
      span('inference', row.decoded_at, row.inferred_at);
      span('store', row.inferred_at, row.stored_at);
      span('total', row.started_at, row.stored_at);
    }
    const byNumber = (a: number, b: number) => a - b;
    all.sort(byNumber);
    stageValues.upload_to_result = all;
    const stages = Object.fromEntries(Object.entries(stageValues).map(([stage, values]) => {
      values.sort(byNumber);
      return [stage, { count: values.length, p50Ms: percentile(values, 50), p95Ms: percentile(values, 95) }];
    })) as Record<PipelineStage, StageStats>;
    const minuteStats = [...buckets.entries()].map(([minute, latencies]) => {
      latencies.sort(byNumber);
      return { minute, results: latencies.length, p50Ms: percentile(latencies, 50), p95Ms: percentile(latencies, 95) };
    });
    // Count exactly even when the percentile sample was capped.
    const results = truncated ? await this.countResultsSince(firstMinute, until) : all.length;
    return {
      since: firstMinute, until, minutes: minuteStats, truncated, stages,
      total: { results, perMinute: results / minutes, p50Ms: percentile(all, 50), p95Ms: percentile(all, 95) },
    };
  }

  async countResultsSince(since: number, until = Date.now()): Promise<number> {
    const row = await this.db.selectFrom('ai_results').select((eb) => eb.fn.countAll<number>().as('n'))
      .where('stored_at', '>=', since).where('stored_at', '<=', until).executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  /** Stored AI results by status and flag (all time): the flag mix the model produces. */
  async resultsByFlag(): Promise<{ status: string; flag: string | null; count: number }[]> {
    const rows = await this.db.selectFrom('ai_results')
      .select(['status', 'flag', (eb) => eb.fn.countAll<number>().as('n')])
      .groupBy(['status', 'flag']).execute();
    return rows.map((r) => ({ status: r.status, flag: r.flag, count: Number(r.n) }));
  }

  async instancesByStatus(): Promise<Record<string, number>> {
    const rows = await this.db.selectFrom('instances').select(['status', (eb) => eb.fn.countAll<number>().as('n')]).where(ORIGINAL_IMAGE).groupBy('status').execute();
    return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
  }

  /** When the oldest image still waiting for the AI (status queued) was queued, epoch ms. */
  async oldestQueuedAt(): Promise<number | null> {
    const row = await this.db.selectFrom('instances').select((eb) => eb.fn.min<number>('queued_at').as('oldest'))
      .where('status', '=', 'queued').executeTakeFirst();
    return row?.oldest == null ? null : Number(row.oldest);
  }

  /** Instance, study UID and accession number for job data (instance ids). */
  async instanceRefs(instanceIds: number[]): Promise<Map<number, InstanceRef>> {
    const ids = [...new Set(instanceIds.filter((id) => Number.isInteger(id)))];
    const out = new Map<number, InstanceRef>();
    for (let i = 0; i < ids.length; i += 500) {
      const rows = await this.refQuery().where('instances.id', 'in', ids.slice(i, i + 500)).execute();
      for (const r of rows) out.set(r.instanceId, r);
    }
    return out;
  }

  /** Instances whose SOP Instance UID, Study Instance UID or accession number is exactly `term`. */
  async findInstances(term: string, limit = 1000): Promise<InstanceRef[]> {
    return this.refQuery()
      .where((eb) => eb.or([
        eb('instances.sop_instance_uid', '=', term),
        eb('studies.study_uid', '=', term),
        eb('studies.accession_number', '=', term),
      ]))
      .orderBy('instances.id').limit(limit).execute();
  }

  private refQuery() {
    return this.db.selectFrom('instances').innerJoin('studies', 'studies.id', 'instances.study_id')
      .select([
        'instances.id as instanceId', 'instances.site_id as siteId', 'instances.study_id as studyId',
        'instances.sop_instance_uid as sopInstanceUid', 'studies.study_uid as studyUid',
        'studies.accession_number as accessionNumber', 'instances.status as status',
      ]);
  }

  /** The stored AI result of an instance: attempts, reason and stage times for a job's history. */
  aiResult(instanceId: number) {
    return this.db.selectFrom('ai_results')
      .select(['status', 'flag', 'probability', 'reason', 'attempts', 'model_name', 'model_version', 'backend', 'queued_at', 'started_at', 'decoded_at', 'inferred_at', 'stored_at'])
      .where('instance_id', '=', instanceId).executeTakeFirst();
  }

  /** Before a retry: a failed instance is waiting again (the reconciler then leaves it to its job). */
  async markRequeued(instanceIds: number[]): Promise<number> {
    let changed = 0;
    for (let i = 0; i < instanceIds.length; i += 500) {
      const result = await this.db.updateTable('instances').set({ status: 'queued', queued_at: Date.now() })
        .where('id', 'in', instanceIds.slice(i, i + 500)).where('status', '=', 'failed').executeTakeFirst();
      changed += Number(result.numUpdatedRows ?? 0);
    }
    return changed;
  }

  /** Audit entries about one job (retries, removal) for its history. */
  jobAudit(jobId: string, limit = 50) {
    return this.db.selectFrom('audit_log').select(['at', 'actor_type', 'actor_id', 'action', 'details'])
      .where('target_type', '=', 'job').where('target_id', '=', jobId).orderBy('id', 'desc').limit(limit).execute();
  }

  /** Recent audited queue actions for the dashboard. */
  recentQueueActions(limit = 20) {
    return this.db.selectFrom('audit_log').select(['at', 'actor_type', 'actor_id', 'action', 'target_type', 'target_id', 'details'])
      .where('action', 'like', 'queue.%').orderBy('id', 'desc').limit(limit).execute();
  }

  async ping(): Promise<void> {
    await sql`select 1`.execute(this.db);
  }
}
