import type { Redis } from 'ioredis';
import type { Config } from './config.js';
import { openDatabase, type DatabaseHandle } from './db/database.js';
import type { Logger } from './logger.js';
import { ClassifyQueue, redisConnection } from './queue/classify-queue.js';
import { AeTitleRepository } from './repositories/ae-title.repository.js';
import { AiResultRepository } from './repositories/ai-result.repository.js';
import { AuditRepository } from './repositories/audit.repository.js';
import { InstanceRepository } from './repositories/instance.repository.js';
import { PipelineStatsRepository } from './repositories/pipeline-stats.repository.js';
import { SiteRepository } from './repositories/site.repository.js';
import { StorageRepository } from './repositories/storage.repository.js';
import { UserRepository } from './repositories/user.repository.js';
import { ReviewRepository } from './repositories/review.repository.js';
import { WorklistRepository } from './repositories/worklist.repository.js';
import { ApiKeyService } from './services/api-key.service.js';
import { AuthService } from './services/auth.service.js';
import { IngestService } from './services/ingest.service.js';
import { QueueAdminService } from './services/queue-admin.service.js';
import { ReconcileService } from './services/reconcile.service.js';
import { ReviewService } from './services/review.service.js';

/**
 * Everything the entry points (API, worker, CLI) share: one database, one Redis connection, the
 * repositories (the only code that does I/O) and the services built on them.
 */
export interface Core {
  config: Config;
  log: Logger;
  database: DatabaseHandle;
  redis: Redis;
  repos: {
    worklist: WorklistRepository;
    reviews: ReviewRepository;
    sites: SiteRepository;
    instances: InstanceRepository;
    audit: AuditRepository;
    pipelineStats: PipelineStatsRepository;
    storage: StorageRepository;
    users: UserRepository;
    aiResults: AiResultRepository;
    aeTitles: AeTitleRepository;
  };
  queue: ClassifyQueue;
  services: {
    apiKeys: ApiKeyService;
    auth: AuthService;
    ingest: IngestService;
    queueAdmin: QueueAdminService;
    reconcile: ReconcileService;
    reviews: ReviewService;
  };
  close(): Promise<void>;
}

export async function createCore(config: Config, log: Logger, opts: { dbSchema?: string } = {}): Promise<Core> {
  const database = await openDatabase(config.databaseUrl, { schema: opts.dbSchema });
  // Producers fail fast when Redis is away (the database keeps the record; the reconciler catches up).
  const redis = redisConnection(config.redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
  redis.on('error', (err) => log.warn({ err: err.message }, 'redis connection error'));
  // Give Redis a moment to connect so the first uploads can queue at once; if it is down we go on
  // without it (uploads are still stored and recorded; the reconciler queues them later).
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 3_000);
    redis.once('ready', () => { clearTimeout(timer); resolve(); });
  });
  const storage = new StorageRepository(config.dataDir, config.limits.maxPartBytes);
  await storage.init();
  const sites = new SiteRepository(database.db);
  const instances = new InstanceRepository(database.db);
  const audit = new AuditRepository(database.db);
  const pipelineStats = new PipelineStatsRepository(database.db);
  const users = new UserRepository(database.db);
  const worklist = new WorklistRepository(database.db);
  const reviews = new ReviewRepository(database.db);
  const aiResults = new AiResultRepository(database.db);
  const queue = new ClassifyQueue(redis, config.queuePrefix);
  queue.queue.on('error', (err) => log.warn({ err: err.message }, 'queue error'));

  return {
    config,
    log,
    database,
    redis,
    repos: { worklist, reviews, sites, instances, audit, storage, users, aiResults, pipelineStats, aeTitles: new AeTitleRepository(database.db) },
    queue,
    services: {
      apiKeys: new ApiKeyService(sites, audit),
      auth: new AuthService(users, sites, audit),
      ingest: new IngestService(storage, instances, audit, queue, log, { maxInflatedBytes: config.limits.maxPartBytes }),
      queueAdmin: new QueueAdminService(queue, redis, config.queuePrefix, pipelineStats, audit, config.dataDir),
      reconcile: new ReconcileService(instances, queue, storage, log, aiResults),
      reviews: new ReviewService(reviews, worklist, audit, redis, config.queuePrefix),
    },
    async close() {
      await queue.close().catch(() => {});
      redis.disconnect();
      await database.close();
    },
  };
}
