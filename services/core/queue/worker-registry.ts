import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import type { AiResultStatus } from '../db/schema.js';

/**
 * Worker liveness. Each classify worker process writes a heartbeat every HEARTBEAT_MS to
 * `<prefix>:workers:<host>:<pid>` with a TTL; a worker whose key is older than STALE_MS is shown
 * as not alive, and its key disappears after the TTL.
 */
export const HEARTBEAT_MS = 5_000;
export const STALE_MS = 20_000;
const TTL_SEC = 300;

export interface WorkerHeartbeat {
  id: string;
  host: string;
  pid: number;
  backend: string;
  modelName: string;
  modelVersion: string;
  concurrency: number;
  jobsDone: number;
  jobsFailed: number;
  startedAt: number;
  lastHeartbeat: number;
}

export function workerKey(prefix: string, id: string) {
  return `${prefix}:workers:${id}`;
}

export function workerId(): string {
  return `${hostname()}:${process.pid}`;
}

export async function writeHeartbeat(redis: Redis, prefix: string, beat: WorkerHeartbeat): Promise<void> {
  await redis.set(workerKey(prefix, beat.id), JSON.stringify(beat), 'EX', TTL_SEC);
}

export async function removeHeartbeat(redis: Redis, prefix: string, id: string): Promise<void> {
  await redis.del(workerKey(prefix, id));
}

export async function listWorkers(redis: Redis, prefix: string): Promise<(WorkerHeartbeat & { alive: boolean })[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}:workers:*`, 'COUNT', 100);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  if (!keys.length) return [];
  const values = await redis.mget(keys);
  const now = Date.now();
  return values.flatMap((v) => (v ? [JSON.parse(v) as WorkerHeartbeat] : []))
    .map((w) => ({ ...w, alive: now - w.lastHeartbeat < STALE_MS }))
    .sort((a, b) => a.id.localeCompare(b.id));
}

/** Redis pub/sub channel on which workers announce results; the API relays them to viewers. */
export function eventsChannel(prefix: string) {
  return `${prefix}:events`;
}

export type PipelineEvent =
  | { type: 'result'; siteId: string; studyId: number; instanceId: number; status: AiResultStatus; flag: string | null; probability: number | null }
  | { type: 'study'; siteId: string; studyId: number; aiState: 'pending' | 'complete'; aiFlag: string | null; aiScore: number | null };
