import type { StudyImage } from '../../../services/contract/index.js';

/**
 * Layouts as data, and the hanging rule. A layout is how many viewports side by side; the rule says
 * which image goes in which: for a fracture study the frontal view (PA/AP) left, the lateral right.
 */
export interface Layout { id: '1x1' | '1x2'; label: string; columns: number }

export const LAYOUTS: readonly Layout[] = [
  { id: '1x1', label: '1 × 1', columns: 1 },
  { id: '1x2', label: '1 × 2', columns: 2 },
];

export const layoutById = (id: Layout['id']) => LAYOUTS.find((l) => l.id === id)!;

export type ViewKind = 'frontal' | 'lateral' | 'other';

const FRONTAL = /^(PA|AP)$/;
const LATERAL = /^(LL|RL|LAT|LATERAL|LLD|RLD|LLO|RLO)$/;

/** Frontal or lateral, from View Position (0018,5101), else from words in the series description. */
export function viewKind(image: Pick<StudyImage, 'viewPosition' | 'seriesDescription'>): ViewKind {
  const view = (image.viewPosition ?? '').trim().toUpperCase();
  if (FRONTAL.test(view)) return 'frontal';
  if (LATERAL.test(view)) return 'lateral';
  const words = (image.seriesDescription ?? '').toUpperCase().split(/[^A-Z]+/);
  if (words.some((w) => LATERAL.test(w))) return 'lateral';
  if (words.some((w) => FRONTAL.test(w) || w === 'FRONTAL')) return 'frontal';
  return 'other';
}

/** The layout a study opens in: 1 × 2 when it has a frontal and a lateral view, else 1 × 1. */
export function defaultLayout(images: readonly StudyImage[]): Layout {
  const kinds = new Set(images.map(viewKind));
  return layoutById(kinds.has('frontal') && kinds.has('lateral') ? '1x2' : '1x1');
}

/**
 * Image indexes for the viewports of a layout: in 1 × 2, the first frontal left and the first
 * lateral right (falling back to the images in order); in 1 × 1, the first image.
 */
export function hang(images: readonly StudyImage[], layout: Layout): number[] {
  if (!images.length) return [];
  if (layout.columns === 1) return [0];
  const kinds = images.map(viewKind);
  const frontal = kinds.indexOf('frontal');
  const lateral = kinds.indexOf('lateral');
  const left = frontal >= 0 ? frontal : 0;
  const right = lateral >= 0 && lateral !== left ? lateral : images.findIndex((_, i) => i !== left);
  return right >= 0 ? [left, right] : [left];
}
