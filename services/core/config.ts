import path from 'node:path';

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
  /** Trust X-Forwarded-* from a reverse proxy (TLS terminated in front of us). */
  trustProxy: boolean;
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
    trustProxy: env.TRUST_PROXY === '1' || env.TRUST_PROXY === 'true',
    worker: {
      modelDir: path.resolve(env.MODEL_DIR ?? 'models/fracatlas-heatnet-v1'),
      backend: backendFrom(env.INFERENCE_BACKEND),
      concurrency: Math.max(1, int(env, 'WORKER_CONCURRENCY', 2)),
      decodeThreads: Math.max(1, int(env, 'DECODE_THREADS', 1)),
      decodeTimeoutMs: int(env, 'DECODE_TIMEOUT_SEC', 60) * 1000,
      lockDurationMs: Math.max(1000, int(env, 'JOB_LOCK_MS', 30_000)),
      stalledIntervalMs: Math.max(1000, int(env, 'STALLED_CHECK_MS', 30_000)),
    },
  };
}
