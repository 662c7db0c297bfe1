import path from 'node:path';
import { DEFAULT_MODEL_DIR } from '../inference/defaultModel.js';

/**
 * All configuration comes from the environment, read once. Defaults run the whole system on one
 * machine with embedded storage (SQLite + a local data folder); only Redis is a separate server.
 */
export interface Config {
  /** Folder for stored DICOM files, the SQLite database, Redis AOF when we start Redis ourselves. */
  dataDir: string;
  /** `sqlite:<path>` or `postgres://…`. */
  databaseUrl: string;
  redisUrl: string;
  /** Prefix for every BullMQ key, so several deployments (or test runs) can share one Redis. */
  queuePrefix: string;
  host: string;
  port: number;
  /** Public base URL used in Retrieve URLs; defaults to http://host:port. */
  publicUrl: string;
  limits: {
    maxPartBytes: number;
    maxRequestBytes: number;
    /** Uploads handled at once; more get 503 with Retry-After. */
    maxConcurrentUploads: number;
    /** A client that sends nothing for this long is cut off. */
    idleTimeoutMs: number;
    /** A whole request must finish within this. */
    requestTimeoutMs: number;
    /** Uploads one API key may have in progress at once (one site cannot take every slot). */
    maxConcurrentUploadsPerKey: number;
    /** Uploads one API key may start per minute, counted in Redis across API processes (0 = no limit). */
    uploadsPerKeyPerMinute: number;
    /** Open client connections at most (0 = derived from the open-file limit). */
    maxConnections: number;
    /** A client must finish sending its request headers within this. */
    headersTimeoutMs: number;
    /** Open /api/events streams per user, per site, in all. */
    maxStreamsPerUser: number;
    maxStreamsPerSite: number;
    /** /readyz is not ready when the data disk has less free space than this. */
    minFreeDiskBytes: number;
  };
  /** The DICOM C-STORE listener (services/dimse); port 0 turns it off. */
  dimse: {
    port: number;
    host: string;
    aeTitle: string;
    /** Associations open at once; more are rejected with "local limit exceeded" (transient). */
    maxAssociations: number;
    /** Instances being stored at once over all associations; the rest wait their turn. */
    maxConcurrentStores: number;
    /** Prometheus /metrics of the listener process (0 = off). */
    metricsPort: number;
  };
  /** Seconds between reconciler passes (re-queue stored images Redis forgot). */
  reconcileIntervalSec: number;
  logLevel: string;
  demo: boolean;
  /** Session cookie Secure flag: 'auto' sets it when the request came over HTTPS (see TRUST_PROXY). */
  cookieSecure: 'auto' | boolean;
  /**
   * Addresses or CIDR ranges of the reverse proxies whose X-Forwarded-* headers are believed
   * (TLS terminated in front of us); empty = none. Never "everything": a client could then choose
   * the address its sign-in attempts are counted under.
   */
  trustProxy: string[];
  /** AI results going back to the hospital (services/results). */
  results: {
    /** A study is sent once all its images have results and none arrived for this long. */
    stableSec: number;
    /** Delivery attempts before a send shows as failed, and the first back-off (doubling). */
    sendAttempts: number;
    sendBackoffMs: number;
  };
  worker: {
    /** Folder with manifest.json, model.json and weights. */
    modelDir: string;
    /** auto = tfjs-node if installed, else wasm, else cpu. */
    backend: 'auto' | 'node' | 'wasm' | 'cpu';
    /** Jobs one worker process runs at once (decoding overlaps with inference). */
    concurrency: number;
    /** Worker threads for decoding. */
    decodeThreads: number;
    decodeTimeoutMs: number;
    /** A job whose worker stops renewing its lock this long is given to another worker. */
    lockDurationMs: number;
    stalledIntervalMs: number;
  };
}

function int(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number, got "${raw}"`);
  return value;
}

const MB = 1024 * 1024;

function backendFrom(value: string | undefined): Config['worker']['backend'] {
  const v = (value ?? 'auto').toLowerCase();
  if (v === 'auto' || v === 'node' || v === 'wasm' || v === 'cpu') return v;
  throw new Error(`INFERENCE_BACKEND must be auto, node, wasm or cpu, got "${value}"`);
}

/** An AE title: 1-16 characters of the default repertoire, no backslash, not only spaces (PS3.5 §6.2). */
export function aeTitle(value: string, name = 'AE title'): string {
  const trimmed = value.trim();
  if (!trimmed || trimmed.length > 16 || !/^[\x20-\x7e]+$/.test(trimmed) || trimmed.includes('\\')) {
    throw new Error(`${name} must be 1-16 printable ASCII characters without a backslash, got "${value}"`);
  }
  return trimmed;
}

/** TRUST_PROXY: a comma-separated list of proxy addresses or CIDRs ("127.0.0.1,10.0.0.0/8"). */
function trustedProxies(value: string | undefined): string[] {
  const list = (value ?? '').split(',').map((x) => x.trim()).filter(Boolean);
  if (list.length === 1 && ['0', 'false', 'off', 'no'].includes(list[0].toLowerCase())) return [];
  for (const entry of list) {
    if (!/^[0-9a-f.:]+(\/\d{1,3})?$/i.test(entry) || entry === '0.0.0.0/0' || entry === '::/0') {
      throw new Error(`TRUST_PROXY must list proxy addresses or CIDRs (e.g. "172.18.0.0/16"), not "${entry}": trusting every sender would let any client choose its address`);
    }
  }
  return list;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const dataDir = path.resolve(env.DATA_DIR ?? 'data');
  const host = env.HOST ?? '127.0.0.1';
  const port = int(env, 'PORT', 8080);
  return {
    dataDir,
    databaseUrl: env.DATABASE_URL ?? `sqlite:${path.join(dataDir, 'fracture-triage.sqlite')}`,
    redisUrl: env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    queuePrefix: env.QUEUE_PREFIX ?? 'ft',
    host,
    port,
    publicUrl: (env.PUBLIC_URL ?? `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`).replace(/\/$/, ''),
    limits: {
      maxPartBytes: int(env, 'MAX_PART_MB', 100) * MB,
      maxRequestBytes: int(env, 'MAX_REQUEST_MB', 1024) * MB,
      maxConcurrentUploads: int(env, 'MAX_CONCURRENT_UPLOADS', 16),
      idleTimeoutMs: int(env, 'UPLOAD_IDLE_TIMEOUT_SEC', 30) * 1000,
      requestTimeoutMs: int(env, 'UPLOAD_TIMEOUT_SEC', 600) * 1000,
      maxConcurrentUploadsPerKey: Math.max(1, int(env, 'MAX_CONCURRENT_UPLOADS_PER_KEY', Math.ceil(int(env, 'MAX_CONCURRENT_UPLOADS', 16) / 2))),
      uploadsPerKeyPerMinute: int(env, 'UPLOADS_PER_KEY_PER_MIN', 6000),
      maxConnections: int(env, 'MAX_CONNECTIONS', 0),
      headersTimeoutMs: Math.max(1000, int(env, 'HEADERS_TIMEOUT_SEC', 20) * 1000),
      maxStreamsPerUser: Math.max(1, int(env, 'SSE_MAX_PER_USER', 8)),
      maxStreamsPerSite: Math.max(1, int(env, 'SSE_MAX_PER_SITE', 200)),
      minFreeDiskBytes: int(env, 'MIN_FREE_DISK_MB', 256) * MB,
    },
    dimse: {
      port: int(env, 'DIMSE_PORT', 11112),
      host: env.DIMSE_HOST ?? host,
      aeTitle: aeTitle(env.DIMSE_AE_TITLE ?? 'FRACTURE_TRIAGE', 'DIMSE_AE_TITLE'),
      maxAssociations: Math.max(1, int(env, 'DIMSE_MAX_ASSOCIATIONS', 16)),
      maxConcurrentStores: Math.max(1, int(env, 'DIMSE_MAX_CONCURRENT_STORES', 8)),
      metricsPort: int(env, 'DIMSE_METRICS_PORT', 0),
    },
    reconcileIntervalSec: int(env, 'RECONCILE_INTERVAL_SEC', 30),
    logLevel: env.LOG_LEVEL ?? 'info',
    demo: env.FT_DEMO === '1' || env.FT_DEMO === 'true',
    cookieSecure: env.COOKIE_SECURE === undefined || env.COOKIE_SECURE === 'auto' ? 'auto' : env.COOKIE_SECURE === 'true' || env.COOKIE_SECURE === '1',
    trustProxy: trustedProxies(env.TRUST_PROXY),
    results: {
      stableSec: int(env, 'STUDY_STABLE_SEC', 30),
      sendAttempts: Math.max(1, int(env, 'SEND_ATTEMPTS', 12)),
      sendBackoffMs: Math.max(100, int(env, 'SEND_BACKOFF_MS', 5_000)),
    },
    worker: {
      modelDir: path.resolve(env.MODEL_DIR ?? DEFAULT_MODEL_DIR),
      backend: backendFrom(env.INFERENCE_BACKEND),
      concurrency: Math.max(1, int(env, 'WORKER_CONCURRENCY', 2)),
      decodeThreads: Math.max(1, int(env, 'DECODE_THREADS', 1)),
      decodeTimeoutMs: int(env, 'DECODE_TIMEOUT_SEC', 60) * 1000,
      lockDurationMs: Math.max(1000, int(env, 'JOB_LOCK_MS', 30_000)),
      stalledIntervalMs: Math.max(1000, int(env, 'STALLED_CHECK_MS', 30_000)),
    },
  };
}
