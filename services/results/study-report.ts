/**
 * What we send back for one study, independent of how it is encoded: the AI result of each image
 * and the version of that content. Built from the database by results.service.ts.
 */
import { createHash } from 'node:crypto';

export type ImageFlag = 'none' | 'doubt' | 'definite';

/** A box as the worker stores it: no number of its own (issue 15: one scale, the image's calibrated probability). */
export interface ReportBox { x: number; y: number; width: number; height: number; level: 'doubt' | 'definite' }

export interface ReportImage {
  sopClassUid: string;
  sopInstanceUid: string;
  seriesUid: string;
  rows: number;
  columns: number;
  status: 'done' | 'unreadable' | 'failed' | 'not_applicable';
  flag: ImageFlag | null;
  probability: number | null;
  /** Why there is no score (failed = unreadable, not_applicable). */
  reason: string | null;
  boxes: ReportBox[];
  /** Storage key of the heat-map PNG, when there is one. */
  heatmapKey: string | null;
  storageKey: string;
}

export interface StudyReport {
  siteId: string;
  studyId: number;
  studyUid: string;
  accessionNumber: string | null;
  algorithm: { name: string; version: string };
  images: ReportImage[];
  /** The study's overall flag: the highest over its images (see ai-result.repository.ts). */
  studyFlag: string | null;
  studyScore: number | null;
}

/** Stable across runs for the same results: what decides whether a new version is needed. */
export function contentHash(report: StudyReport): string {
  const images = [...report.images].sort((a, b) => a.sopInstanceUid.localeCompare(b.sopInstanceUid)).map((i) => [
    i.sopInstanceUid, i.status, i.flag, i.probability === null ? null : i.probability.toFixed(6), i.reason,
    i.boxes.map((b) => [b.x, b.y, b.width, b.height, b.level]),
  ]);
  return createHash('sha256').update(JSON.stringify([report.studyUid, report.algorithm, images])).digest('hex');
}

/** What the report says in words for an image without a score. */
export function noScoreStatement(image: ReportImage): string {
  return image.status === 'not_applicable'
    ? `Not applicable: ${image.reason ?? 'outside what the model reads'}`
    : `Unreadable, no AI result: ${image.reason ?? 'the image could not be processed'}`;
}
