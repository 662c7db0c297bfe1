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
}

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
}

export interface AuditLogTable {
  id: Generated<number>;
  at: number;
  actor_type: 'api_key' | 'user' | 'system';
  actor_id: string | null;
  site_id: string | null;
  action: string;
  target_type: string | null;
  target_id: string | null;
  /** JSON; never patient names or IDs. */
  details: string | null;
}

export type Site = Selectable<SitesTable>;
export type ApiKey = Selectable<ApiKeysTable>;
export type Study = Selectable<StudiesTable>;
export type Series = Selectable<SeriesTable>;
export type Instance = Selectable<InstancesTable>;
export type NewInstance = Insertable<InstancesTable>;
export type AuditEntry = Insertable<AuditLogTable>;
