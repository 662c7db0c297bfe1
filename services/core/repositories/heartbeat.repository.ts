import { hostname } from 'node:os';
import type { Redis } from 'ioredis';

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

export function workerId(): string {
  return `${hostname()}:${process.pid}`;
}

/** The worker registry in Redis. */
export class HeartbeatRepository {
  constructor(private readonly redis: Redis, private readonly prefix: string) {}

  private key(id: string) {
    return `${this.prefix}:workers:${id}`;
  }

  async write(beat: WorkerHeartbeat): Promise<void> {
    await this.redis.set(this.key(beat.id), JSON.stringify(beat), 'EX', TTL_SEC);
  }

  async remove(id: string): Promise<void> {
    await this.redis.del(this.key(id));
  }

  /** Every worker with a heartbeat, sorted by id, each marked alive or stale. */
  async list(): Promise<(WorkerHeartbeat & { alive: boolean })[]> {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await this.redis.scan(cursor, 'MATCH', this.key('*'), 'COUNT', 100);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    if (!keys.length) return [];
    const values = await this.redis.mget(keys);
    const now = Date.now();
    return values.flatMap((v) => (v ? [JSON.parse(v) as WorkerHeartbeat] : []))
      .map((w) => ({ ...w, alive: now - w.lastHeartbeat < STALE_MS }))
      .sort((a, b) => a.id.localeCompare(b.id));
  }

  /** Whether Redis answers (for readiness). */
  async ping(): Promise<void> {
    await this.redis.ping();
  }
}
