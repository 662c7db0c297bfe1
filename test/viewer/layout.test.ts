import { describe, expect, it } from 'vitest';
import type { StudyImage } from '../../services/contract/index.js';
import { defaultLayout, hang, layoutById, viewKind } from '../../web/src/viewer/layout.js';
import { orientationLabels } from '../../web/src/viewer/overlays.js';

const image = (viewPosition: string | null, seriesDescription: string | null = null) => ({ viewPosition, seriesDescription }) as StudyImage;

describe('viewer layout: the hanging rule', () => {
  it('knows frontal and lateral views from View Position, else from the series description', () => {
    expect(viewKind(image('PA'))).toBe('frontal');
    expect(viewKind(image('ap '))).toBe('frontal');
    expect(viewKind(image('LL'))).toBe('lateral');
    expect(viewKind(image('RL'))).toBe('lateral');
    expect(viewKind(image(null, 'WRIST LAT'))).toBe('lateral');
    expect(viewKind(image(null, 'Hand PA'))).toBe('frontal');
    expect(viewKind(image(null, 'PLATE'))).toBe('other'); // words, not letters inside words
    expect(viewKind(image('OBL'))).toBe('other');
  });

  it('puts the frontal view left and the lateral right, whatever the order of arrival', () => {
    const images = [image('LL'), image('OBL'), image('PA')];
    expect(defaultLayout(images).id).toBe('1x2');
    expect(hang(images, layoutById('1x2'))).toEqual([2, 0]);
    expect(hang(images, layoutById('1x1'))).toEqual([0]);
    // No lateral: the next image goes right; one image: one viewport.
    expect(hang([image('PA'), image('OBL')], layoutById('1x2'))).toEqual([0, 1]);
    expect(defaultLayout([image('PA'), image('OBL')]).id).toBe('1x1');
    expect(hang([image('PA')], layoutById('1x2'))).toEqual([0]);
  });
});

describe('orientation labels from Patient Orientation', () => {
  const plain = { rotation: 0, hflip: false, vflip: false };
  it('labels the edges from the row and column directions', () => {
    expect(orientationLabels('L\\F', plain)).toEqual({ top: 'H', right: 'L', bottom: 'F', left: 'R' });
    expect(orientationLabels('A\\FL', plain)).toEqual({ top: 'HR', right: 'A', bottom: 'FL', left: 'P' });
    expect(orientationLabels(undefined, plain)).toBeUndefined();
    expect(orientationLabels('X\\Y', plain)).toBeUndefined();
  });

  it('follows flips and rotation (flip first, then rotate, as cornerstone draws)', () => {
    expect(orientationLabels('L\\F', { ...plain, hflip: true })).toEqual({ top: 'H', right: 'R', bottom: 'F', left: 'L' });
    expect(orientationLabels('L\\F', { ...plain, rotation: 90 })).toEqual({ top: 'R', right: 'H', bottom: 'L', left: 'F' });
    expect(orientationLabels('L\\F', { ...plain, rotation: 90, vflip: true })).toEqual({ top: 'R', right: 'F', bottom: 'L', left: 'H' });
  });
});
