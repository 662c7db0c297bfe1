import type { Generated, Insertable, Selectable } from 'kysely';

/**
 * Tables, as Kysely sees them. Times are epoch milliseconds (bigint on PostgreSQL, parsed to
 * number), booleans are 0/1 integers: the same values on SQLite and PostgreSQL.
 */
export interface Database {
  sites: SitesTable;
  api_keys: ApiKeysTable;
  studies: StudiesTable;
  series: SeriesTable;
  instances: InstancesTable;
  audit_log: AuditLogTable;
  ai_results: AiResultsTable;
  users: UsersTable;
  user_sites: UserSitesTable;
  sessions: SessionsTable;
  reviews: ReviewsTable;
  ae_titles: AeTitlesTable;
  result_destinations: ResultDestinationsTable;
  result_versions: ResultVersionsTable;
  result_deliveries: ResultDeliveriesTable;
}

export interface SitesTable {
  id: string;
  name: string;
  created_at: number;
}

export interface ApiKeysTable {
  id: string;
  site_id: string;
  label: string;
  key_hash: string;
  created_at: number;
  revoked_at: number | null;
  last_used_at: number | null;
  /** After this (epoch ms) the key gets 401, like a revoked one; null = no expiry. */
  expires_at: number | null;
}

export interface StudiesTable {
  id: Generated<number>;
  site_id: string;
  study_uid: string;
  patient_name: string | null;
  patient_id: string | null;
  patient_birth_date: string | null;
  patient_sex: string | null;
  patient_age: string | null;
  accession_number: string | null;
  study_date: string | null;
  study_time: string | null;
  description: string | null;
  /** 1 = STAT … 10 = routine … 20 = low; lower is more urgent. */
  priority: number;
  received_at: number;
  updated_at: number;
  /** pending until every instance has a result or a final failure, then complete. */
  ai_state: Generated<'pending' | 'complete'>;
  /**
   * Roll-up over the study's images, the most pressing wins: definite > doubt > unreadable > failed >
   * none > not_applicable. An unreadable or failed image keeps the study off "none": it needs a look.
   */
  ai_flag: StudyAiFlag | null;
  /** Highest calibrated probability over the study's images. */
  ai_score: number | null;
  review_state: Generated<'unreviewed' | 'reviewed'>;
}

export type AiFlag = 'none' | 'doubt' | 'definite';

/** An image's AI result: a score (done), or none, with the reason (unreadable, failed, not applicable). */
export type AiResultStatus = 'done' | 'unreadable' | 'failed' | 'not_applicable';

export type StudyAiFlag = AiFlag | Exclude<AiResultStatus, 'done'>;

export interface SeriesTable {
  id: Generated<number>;
  study_id: number;
  series_uid: string;
  series_number: number | null;
  modality: string | null;
  body_part: string | null;
  description: string | null;
}

/** stored → queued → (worker) processing → done | failed */
export type InstanceStatus = 'stored' | 'queued' | 'processing' | 'done' | 'failed';

export interface InstancesTable {
  id: Generated<number>;
  site_id: string;
  study_id: number;
  series_id: number;
  sop_instance_uid: string;
  sop_class_uid: string;
  instance_number: number | null;
  transfer_syntax_uid: string;
  rows: number;
  columns: number;
  bits_allocated: number;
  bits_stored: number;
  high_bit: number;
  pixel_representation: number;
  samples_per_pixel: number;
  photometric_interpretation: string;
  number_of_frames: number;
  laterality: string | null;
  view_position: string | null;
  sha256: string;
  size_bytes: number;
  storage_key: string;
  status: InstanceStatus;
  priority: number;
  received_at: number;
  queued_at: number | null;
  /** How it arrived; null for rows stored before origins were recorded. */
  origin: IngestOrigin | null;
  /** Who sent it: API key id, or the calling AE title for DIMSE; null for old rows. */
  actor_id: string | null;
}

/**
 * The door an instance came in by: STOW-RS, the single-file upload API, a DIMSE C-STORE, or `ai`:
 * an object our AI made (its SR and Secondary Captures), stored so QIDO-RS / WADO-RS serve it. An
 * `ai` instance is never classified, counted as an image, rolled up, shown to decide on or a
 * trigger for sending results (see ORIGINAL_IMAGE in instance.repository.ts).
 */
export type IngestOrigin = 'stow' | 'api' | 'dimse' | 'ai';

export interface AuditLogTable {
  id: Generated<number>;
  at: number;
  /** `device`: our AI algorithm (name/version), e.g. storing the SR it made. */
  actor_type: 'api_key' | 'user' | 'system' | 'dicom_ae' | 'device';
  actor_id: string | null;
  site_id: string | null;
  action: string;
  target_type: string | null;
  target_id: string | null;
  /** JSON; never patient names or IDs. */
  details: string | null;
}

/** One per instance: a score, or a recorded reason why there is none. */
export interface AiResultsTable {
  id: Generated<number>;
  instance_id: number;
  site_id: string;
  study_id: number;
  /** unreadable: decoded, but damaged or not plausibly a radiograph (services/imaging/plausibility.ts); never scored. */
  status: AiResultStatus;
  model_name: string | null;
  model_version: string | null;
  backend: string | null;
  probability: number | null;
  raw_score: number | null;
  flag: AiFlag | null;
  /** JSON: [{ x, y, width, height, level }] in original pixel coordinates; at most 3, level never above the image flag, no number (services/inference/boxes.ts). */
  boxes: string | null;
  /** Storage key of the heat-map PNG (greyscale, covers the whole image; stretch to overlay). */
  heatmap_key: string | null;
  /** Why there is no score (unreadable / failed / not_applicable), in plain words. No patient data. */
  reason: string | null;
  attempts: Generated<number>;
  queued_at: number | null;
  started_at: number | null;
  decoded_at: number | null;
  inferred_at: number | null;
  stored_at: number;
}

/** superadmin: deployment-wide queue operations (pause, resume, drain, every site's jobs); admin: their sites' jobs. */
export type UserRole = 'radiologist' | 'admin' | 'superadmin';

export interface UsersTable {
  id: Generated<number>;
  username: string;
  display_name: string;
  /** scrypt, see services/auth.service.ts */
  password_hash: string;
  role: UserRole;
  created_at: number;
  disabled_at: number | null;
}

export interface UserSitesTable {
  user_id: number;
  site_id: string;
}

export interface SessionsTable {
  /** SHA-256 of the session token; the token itself only lives in the cookie. */
  id_hash: string;
  user_id: number;
  csrf_token: string;
  created_at: number;
  expires_at: number;
  last_seen_at: number;
}

export type ReviewDecision = 'agree' | 'disagree' | 'missed' | 'uncertain';

/** A radiologist's decision on a study. A change adds a row and supersedes the old one: history is kept. */
export interface ReviewsTable {
  id: Generated<number>;
  study_id: number;
  site_id: string;
  user_id: number;
  decision: ReviewDecision;
  comment: string | null;
  /** JSON boxes drawn by the radiologist (for "missed"), original pixel coordinates. */
  boxes: string | null;
  /** JSON array of the instance ids the radiologist had rendered when deciding (at least one, all of the study). */
  shown_instance_ids: string | null;
  /** JSON [{ kind: 'length' | 'angle', points, value, unit, instanceId }] taken with the decision. */
  measurements: string | null;
  created_at: number;
  /** Set when a newer decision replaced this one, or it was undone. */
  superseded_at: number | null;
  /** Set when the radiologist undid the decision (DELETE /api/studies/{id}/review); the study is unreviewed again. */
  undone_at: number | null;
}

/** A DICOM sender (calling AE title) and the site its C-STOREs are filed under. */
export interface AeTitlesTable {
  ae_title: string;
  site_id: string;
  /** When set, associations with this calling AE are accepted only from this peer address. */
  host: string | null;
  created_at: number;
}

export type AiResult = Selectable<AiResultsTable>;
export type AeTitle = Selectable<AeTitlesTable>;
export type User = Selectable<UsersTable>;
export type Review = Selectable<ReviewsTable>;
export type Site = Selectable<SitesTable>;
export type ApiKey = Selectable<ApiKeysTable>;
export type Study = Selectable<StudiesTable>;
export type Series = Selectable<SeriesTable>;
export type Instance = Selectable<InstancesTable>;
export type NewInstance = Insertable<InstancesTable>;
export type AuditEntry = Insertable<AuditLogTable>;

/** Where a site's AI results are sent (issue 13). Secrets and headers never leave the server. */
export interface ResultDestinationsTable {
  id: Generated<number>;
  site_id: string;
  name: string;
  kind: 'stow' | 'dimse' | 'webhook';
  /** STOW-RS: DICOMweb base URL; webhook: the URL to POST to. */
  url: string | null;
  /** JSON object of extra HTTP headers (STOW-RS), e.g. Authorization. */
  headers: string | null;
  ae_title: string | null;
  host: string | null;
  port: number | null;
  /** Webhook HMAC-SHA256 key. */
  secret: string | null;
  created_at: number;
}

/** One version of a study's AI output (SR + Secondary Captures); a later image makes the next version. */
export interface ResultVersionsTable {
  id: Generated<number>;
  site_id: string;
  study_id: number;
  version: number;
  content_hash: string;
  sr_sop_uid: string;
  sr_series_uid: string;
  /** JSON: [{ kind: 'sr' | 'sc' | 'pr', sopInstanceUid, sopClassUid, seriesUid, instanceId (stored as our own instance) or storageKey (older versions: derived/ only), sourceSopInstanceUid? }] */
  objects: string;
  /** JSON: the webhook / results-API summary (flag, score, model, images). No patient names or IDs. */
  summary: string;
  created_at: number;
}

export type DeliveryStatus = 'queued' | 'retrying' | 'sent' | 'failed';

export interface ResultDeliveriesTable {
  id: Generated<number>;
  site_id: string;
  version_id: number;
  destination_id: number;
  status: DeliveryStatus;
  attempts: Generated<number>;
  /** Bumped by a manual retry, so the retried job gets a fresh job id. */
  generation: Generated<number>;
  last_error: string | null;
  queued_at: number;
  sent_at: number | null;
  latency_ms: number | null;
  updated_at: number;
}

export type ResultDestination = Selectable<ResultDestinationsTable>;
export type ResultVersion = Selectable<ResultVersionsTable>;
export type ResultDelivery = Selectable<ResultDeliveriesTable>;
