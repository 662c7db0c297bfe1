import { Type, type Static } from '@sinclair/typebox';
import { Nullable, StringEnum } from './schema.js';

/** Response schemas of the admin dashboard's API (queue health, workers, throughput, failed jobs). */

const Count = Type.Integer({ minimum: 0 });
const Health = StringEnum(['ok', 'unreachable'] as const);

export const WorkerSchema = Type.Object({
  id: Type.String(), host: Type.String(), pid: Type.Integer(), backend: Type.String(), modelName: Type.String(), modelVersion: Type.String(),
  concurrency: Type.Integer(), jobsDone: Count, jobsFailed: Count, startedAt: Type.Number(), lastHeartbeat: Type.Number(), alive: Type.Boolean(),
});
export type WorkerStatus = Static<typeof WorkerSchema>;

export const QUEUE_COUNT_TYPES = ['waiting', 'prioritized', 'active', 'delayed', 'completed', 'failed', 'waiting-children'] as const;

export const OverviewSchema = Type.Object({
  at: Type.Number(),
  queue: Nullable(Type.Object({
    name: Type.String(), paused: Type.Boolean(), waitingTotal: Count, oldestWaitingAgeSec: Nullable(Type.Number()),
    counts: Type.Object(Object.fromEntries(QUEUE_COUNT_TYPES.map((k) => [k, Count])) as Record<(typeof QUEUE_COUNT_TYPES)[number], typeof Count>),
  })),
  workers: Nullable(Type.Array(WorkerSchema)),
  health: Type.Object({ redis: Health, database: Health }),
  disk: Nullable(Type.Object({ path: Type.String(), freeBytes: Type.Number(), totalBytes: Type.Number(), usedFraction: Type.Number() })),
  /** Images per status. */
  instances: Nullable(Type.Record(Type.String(), Count)),
});
export type Overview = Static<typeof OverviewSchema>;

export const MinuteStatsSchema = Type.Object({ minute: Type.Number(), results: Count, p50Ms: Nullable(Type.Number()), p95Ms: Nullable(Type.Number()) });
export type MinuteStats = Static<typeof MinuteStatsSchema>;

export const StageStatsSchema = Type.Object({ count: Count, p50Ms: Nullable(Type.Number()), p95Ms: Nullable(Type.Number()) });
export type StageStats = Static<typeof StageStatsSchema>;

export const PIPELINE_STAGES = ['queue_wait', 'decode', 'inference', 'store', 'total', 'upload_to_result'] as const;

export const ThroughputSchema = Type.Object({
  since: Type.Number(), until: Type.Number(),
  minutes: Type.Array(MinuteStatsSchema),
  total: Type.Object({ results: Count, perMinute: Type.Number(), p50Ms: Nullable(Type.Number()), p95Ms: Nullable(Type.Number()) }),
  stages: Type.Object(Object.fromEntries(PIPELINE_STAGES.map((k) => [k, StageStatsSchema])) as Record<(typeof PIPELINE_STAGES)[number], typeof StageStatsSchema>),
  /** More rows than the window reads: the figures cover the newest ones. */
  truncated: Type.Boolean(),
});
export type Throughput = Static<typeof ThroughputSchema>;

export const FailedJobSchema = Type.Object({
  id: Type.String(), instanceId: Nullable(Type.Integer()), siteId: Nullable(Type.String()), failedReason: Type.String(),
  attemptsMade: Count, attempts: Count, queuedAt: Type.Number(), processedOn: Nullable(Type.Number()), finishedOn: Nullable(Type.Number()),
  sopInstanceUid: Nullable(Type.String()), studyUid: Nullable(Type.String()), accessionNumber: Nullable(Type.String()),
});
export type FailedJob = Static<typeof FailedJobSchema>;

export const FailedJobsSchema = Type.Object({ total: Count, jobs: Type.Array(FailedJobSchema) });
export type FailedJobs = Static<typeof FailedJobsSchema>;

export const AdminActionSchema = Type.Object({
  at: Type.Number(), actor_type: Type.String(), actor_id: Nullable(Type.String()), action: Type.String(),
  target_type: Nullable(Type.String()), target_id: Nullable(Type.String()),
  details: Nullable(Type.Unsafe<Record<string, unknown>>({ type: 'object', additionalProperties: true })),
});
export type AdminAction = Static<typeof AdminActionSchema>;
export const AdminActionsSchema = Type.Array(AdminActionSchema);

/** Account management (issue 16): users and API keys an admin may manage (their sites'; a superadmin, all). */
export const ManagedUserSchema = Type.Object({
  username: Type.String(), displayName: Type.String(), role: StringEnum(['radiologist', 'admin', 'superadmin'] as const),
  siteIds: Type.Array(Type.String()), disabled: Type.Boolean(),
});
export type ManagedUser = Static<typeof ManagedUserSchema>;
export const ManagedUsersSchema = Type.Array(ManagedUserSchema);

export const ManagedKeySchema = Type.Object({
  id: Type.String(), siteId: Type.String(), label: Type.String(), state: StringEnum(['active', 'expired', 'revoked'] as const),
  createdAt: Type.String(), expiresAt: Nullable(Type.String()), lastUsedAt: Nullable(Type.String()),
});
export type ManagedKey = Static<typeof ManagedKeySchema>;
export const ManagedKeysSchema = Type.Array(ManagedKeySchema);

/** A new password or key is in this answer only: it is stored as a hash and never shown again. */
export const NewPasswordSchema = Type.Object({ username: Type.String(), password: Type.String() });
export const RotatedKeySchema = Type.Object({ id: Type.String(), key: Type.String(), replaces: Type.String(), oldExpiresAt: Type.String() });
export const KeyExpirySchema = Type.Object({ id: Type.String(), expiresAt: Type.String() });
