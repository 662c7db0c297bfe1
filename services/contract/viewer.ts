import { Type, type Static } from '@sinclair/typebox';
import { Nullable, StringEnum } from './schema.js';

/** Response schemas of the radiologist's API (worklist, study, decisions). Decision support only. */

/** The worklist's AI column: the study roll-up, "pending" while results are outstanding. */
export const AI_STATES = ['pending', 'definite', 'doubt', 'none', 'unreadable', 'failed', 'not_applicable'] as const;
export type AiState = (typeof AI_STATES)[number];

export const DECISIONS = ['agree', 'disagree', 'missed', 'uncertain'] as const;
export type Decision = (typeof DECISIONS)[number];

export const WorklistItemSchema = Type.Object({
  id: Type.Integer(),
  siteId: Type.String(),
  studyUid: Type.String(),
  patient: Type.Object({
    name: Nullable(Type.String()), id: Nullable(Type.String()), age: Nullable(Type.String()), sex: Nullable(Type.String()),
    birthDate: Type.Optional(Nullable(Type.String())),
  }),
  accession: Nullable(Type.String()),
  bodyPart: Nullable(Type.String()),
  description: Nullable(Type.String()),
  studyDate: Nullable(Type.String()),
  studyTime: Nullable(Type.String()),
  receivedAt: Type.Number({ description: 'epoch ms' }),
  priority: Type.Integer({ description: 'lower = sooner; see services/contract/priority.ts' }),
  ai: Type.Object({
    state: StringEnum(AI_STATES),
    complete: Type.Boolean(),
    /** Calibrated probability of the study's most suspicious image (the one scale shown anywhere). */
    score: Nullable(Type.Number()),
    /** Why the AI could not read the study ("unreadable", "failed"), when it says. */
    reason: Type.Optional(Nullable(Type.String())),
    /** Why an image of the study is "unreadable" (plain words), else null. */
    unreadableReason: Type.Optional(Nullable(Type.String())),
  }),
  reviewState: StringEnum(['unreviewed', 'reviewed'] as const),
  images: Type.Integer(),
});
export type WorklistItem = Static<typeof WorklistItemSchema>;

export const WorklistPageSchema = Type.Object({
  total: Type.Integer(), offset: Type.Integer(), limit: Type.Integer(),
  items: Type.Array(WorklistItemSchema),
});
export type WorklistPage = Static<typeof WorklistPageSchema>;

export const BodyPartsSchema = Type.Object({ bodyParts: Type.Array(Type.String()) });
export type BodyParts = Static<typeof BodyPartsSchema>;

/** An AI box in original pixel coordinates. `level` never above the image's flag. */
export const AiBoxSchema = Type.Object({
  x: Type.Number(), y: Type.Number(), width: Type.Number(), height: Type.Number(),
  score: Type.Optional(Nullable(Type.Number())),
  level: Type.Optional(StringEnum(['doubt', 'definite'] as const)),
});
export type AiBox = Static<typeof AiBoxSchema>;

export const ModelSchema = Type.Object({ name: Nullable(Type.String()), version: Nullable(Type.String()) });
export type Model = Static<typeof ModelSchema>;

export const ImageAiSchema = Type.Object({
  status: StringEnum(['done', 'failed', 'not_applicable', 'unreadable'] as const),
  /** Calibrated probability. */
  probability: Nullable(Type.Number()),
  flag: Nullable(StringEnum(['none', 'doubt', 'definite', 'unreadable', 'failed', 'not_applicable'] as const)),
  boxes: Type.Array(AiBoxSchema),
  heatmapUrl: Nullable(Type.String()),
  model: ModelSchema,
  reason: Nullable(Type.String()),
  /** The reason when status is "unreadable", else null. */
  unreadableReason: Type.Optional(Nullable(Type.String())),
});
export type ImageAi = Static<typeof ImageAiSchema>;

export const StudyImageSchema = Type.Object({
  id: Type.Integer(),
  sopInstanceUid: Type.String(),
  seriesUid: Type.String(),
  seriesNumber: Nullable(Type.Integer()),
  seriesDescription: Nullable(Type.String()),
  instanceNumber: Nullable(Type.Integer()),
  modality: Nullable(Type.String()),
  bodyPart: Nullable(Type.String()),
  laterality: Nullable(Type.String()),
  /** View Position (0018,5101): PA, AP, LL, RL, LAT… */
  viewPosition: Nullable(Type.String()),
  rows: Type.Integer(),
  columns: Type.Integer(),
  photometric: Type.String(),
  transferSyntax: Type.String(),
  frames: Type.Integer(),
  /** The stored original (application/dicom), for the viewer's wadouri: image ids. */
  url: Type.String(),
  ai: Nullable(ImageAiSchema),
});
export type StudyImage = Static<typeof StudyImageSchema>;

/** A box the radiologist drew ("AI missed a fracture"), original pixel coordinates of one image. */
export const ReviewBoxSchema = Type.Object({
  x: Type.Number(), y: Type.Number(), width: Type.Number(), height: Type.Number(), instanceId: Type.Integer(),
});
export type ReviewBox = Static<typeof ReviewBoxSchema>;

/** A measurement kept with a decision: points in original pixel coordinates of one image. */
export const MeasurementSchema = Type.Object({
  kind: StringEnum(['length', 'angle'] as const),
  points: Type.Array(Type.Object({ x: Type.Number(), y: Type.Number() }), { minItems: 2, maxItems: 4 }),
  value: Type.Number(),
  unit: StringEnum(['mm', 'px', 'deg'] as const),
  /** The image's instance id (as in StudyImage.id); the server returns both names. */
  imageId: Type.Integer(),
  instanceId: Type.Optional(Type.Integer()),
});
export type Measurement = Static<typeof MeasurementSchema>;

export const ReviewEntrySchema = Type.Object({
  id: Type.Integer(),
  decision: StringEnum(DECISIONS),
  comment: Nullable(Type.String()),
  boxes: Type.Array(ReviewBoxSchema),
  measurements: Type.Optional(Type.Array(MeasurementSchema)),
  user: Type.Object({ id: Type.Integer(), username: Type.String(), displayName: Type.String() }),
  at: Type.Number({ description: 'epoch ms' }),
  supersededAt: Nullable(Type.Number()),
  /** The images the radiologist had rendered when deciding. */
  shownInstanceIds: Type.Optional(Type.Array(Type.Integer())),
  /** Set when the decision was withdrawn (undo); history is kept. */
  undoneAt: Type.Optional(Nullable(Type.Number())),
});
export type ReviewEntry = Static<typeof ReviewEntrySchema>;

export const ReviewListSchema = Type.Object({ reviews: Type.Array(ReviewEntrySchema) });
export type ReviewList = Static<typeof ReviewListSchema>;

export const StudyDetailSchema = Type.Object({
  study: WorklistItemSchema,
  model: Nullable(ModelSchema),
  images: Type.Array(StudyImageSchema),
  reviews: Type.Array(ReviewEntrySchema),
});
export type StudyDetail = Static<typeof StudyDetailSchema>;

/** AI results only (no patient data), for an open viewer to refresh when results arrive. */
export const StudyAiSchema = Type.Object({
  study: Type.Object({ id: Type.Integer(), ai: WorklistItemSchema.properties.ai, reviewState: WorklistItemSchema.properties.reviewState }),
  model: Nullable(ModelSchema),
  images: Type.Array(Type.Object({ id: Type.Integer(), ai: Nullable(ImageAiSchema) })),
});
export type StudyAi = Static<typeof StudyAiSchema>;

export const DecisionResultSchema = Type.Object({
  review: Type.Object({
    id: Type.Integer(), studyId: Type.Integer(), decision: StringEnum(DECISIONS), comment: Nullable(Type.String()), at: Type.Number(),
  }),
});
export type DecisionResult = Static<typeof DecisionResultSchema>;

/** What a decision request carries (the read service validates it; the viewer builds it). */
export interface DecisionRequest {
  decision: Decision;
  comment: string | null;
  /** The images rendered on screen when deciding (the server refuses a decision without them). */
  shownInstanceIds: number[];
  boxes?: ReviewBox[];
  measurements?: Measurement[];
}

export const UserSchema = Type.Object({
  userId: Type.Integer(),
  username: Type.String(),
  displayName: Type.String(),
  role: StringEnum(['radiologist', 'admin', 'superadmin'] as const),
  siteIds: Type.Array(Type.String()),
});
export type User = Static<typeof UserSchema>;
