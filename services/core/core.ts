import type { Redis } from 'ioredis';
import type { Config } from './config.js';
import { openDatabase, type DatabaseHandle } from './db/database.js';
import type { Logger } from './logger.js';
import { CLASSIFY_JOBS, redisConnection, type ClassifyJobs } from './queue/classify-queue.js';
import { AeTitleRepository } from './repositories/ae-title.repository.js';
import { AiResultRepository } from './repositories/ai-result.repository.js';
import { AuditRepository } from './repositories/audit.repository.js';
import { EventRepository } from './repositories/event.repository.js';
import { HeartbeatRepository } from './repositories/heartbeat.repository.js';
import { JobRepository } from './repositories/job.repository.js';
import { InstanceRepository } from './repositories/instance.repository.js';
import { RateLimitRepository } from './repositories/rate-limit.repository.js';
import { PipelineStatsRepository } from './repositories/pipeline-stats.repository.js';
import { SiteRepository } from './repositories/site.repository.js';
import { StorageRepository } from './repositories/storage.repository.js';
import { UserRepository } from './repositories/user.repository.js';
import { ReviewRepository } from './repositories/review.repository.js';
import { WorklistRepository } from './repositories/worklist.repository.js';
import { ApiKeyService } from './services/api-key.service.js';
import { AccountAdminService } from './services/account-admin.service.js';
import { AuthService } from './services/auth.service.js';
import { DicomwebService } from './services/dicomweb.service.js';
import { EventService } from './services/event.service.js';
import { IngestService } from './services/ingest.service.js';
import { QueueAdminService } from './services/queue-admin.service.js';
import { ReconcileService } from './services/reconcile.service.js';
import { ReviewService } from './services/review.service.js';
import { StudyService } from './services/study.service.js';

/**
 * Everything the entry points (API, worker, CLI) share: one database, one Redis connection, the
 * repositories (the only code that does I/O: SQL, files, Redis, BullMQ) and the services built on
 * them. Routes use `services` only; `repos`, `jobs` and `redis` are for entry points, the CLI and tests.
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
    rateLimits: RateLimitRepository;
    heartbeats: HeartbeatRepository;
    events: EventRepository;
  };
  /** One job repository per BullMQ queue. */
  jobs: {
    classify: ClassifyJobs;
  };
  services: {
    accounts: AccountAdminService;
    apiKeys: ApiKeyService;
    auth: AuthService;
    events: EventService;
    ingest: IngestService;
    queueAdmin: QueueAdminService;
    reconcile: ReconcileService;
    reviews: ReviewService;
    studies: StudyService;
    dicomweb: DicomwebService;
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
  const sites = new SiteRepository(database.db, database.readDb);
  const instances = new InstanceRepository(database.db, database.readDb);
  const audit = new AuditRepository(database.db);
  const pipelineStats = new PipelineStatsRepository(database.db);
  const users = new UserRepository(database.db);
  const worklist = new WorklistRepository(database.db);
  const reviews = new ReviewRepository(database.db);
  const aiResults = new AiResultRepository(database.db);
  const rateLimits = new RateLimitRepository(redis, config.queuePrefix, () => redisConnection(config.redisUrl));
  const heartbeats = new HeartbeatRepository(redis, config.queuePrefix);
  // Subscribing needs a connection of its own, that waits for Redis rather than failing fast.
  const events = new EventRepository(redis, config.queuePrefix, () => redisConnection(config.redisUrl), (message) => log.warn(message));
  const classifyJobs = new JobRepository(redis, config.queuePrefix, CLASSIFY_JOBS);
  classifyJobs.onError((err) => log.warn({ err: err.message }, 'queue error'));

  const apiKeys = new ApiKeyService(sites, audit);
  const auth = new AuthService(users, sites, audit, rateLimits);
  return {
    config,
    log,
    database,
    redis,
    repos: { worklist, reviews, sites, instances, audit, storage, users, aiResults, pipelineStats, heartbeats, events, rateLimits, aeTitles: new AeTitleRepository(database.db) },
    jobs: { classify: classifyJobs },
    services: {
      accounts: new AccountAdminService(users, sites, auth, apiKeys),
      apiKeys,
      auth,
      events: new EventService(events),
      ingest: new IngestService(storage, instances, audit, classifyJobs, log, { maxInflatedBytes: config.limits.maxPartBytes }),
      queueAdmin: new QueueAdminService(classifyJobs, heartbeats, pipelineStats, audit, storage),
      reconcile: new ReconcileService(instances, classifyJobs, storage, log, aiResults),
      reviews: new ReviewService(reviews, worklist, audit, events),
      studies: new StudyService(worklist, reviews, audit, storage, config.limits.maxPartBytes),
      dicomweb: new DicomwebService(instances, audit, storage),
    },
    async close() {
      events.close();
      rateLimits.close();
      await classifyJobs.close().catch(() => {});
      redis.disconnect();
      await database.close();
    },
  };
}
