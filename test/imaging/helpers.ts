import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FixtureRecord } from '../../scripts/make-imaging-fixtures.js';

const here = dirname(fileURLToPath(import.meta.url));
export const fixtureDir = resolve(here, '../fixtures/imaging');
export const sharedDicomDir = resolve(here, '../../../shared/dicom');
export const hasShared = existsSync(join(sharedDicomDir, 'RG3_J2KR.dcm'));

export type { FixtureRecord };
export interface Expected {
  fixtures: FixtureRecord[];
  renders: Record<string, { file: string; options: string[] }>;
  j2k: { file: string; transferSyntax: string; sha256: string; width: number; height: number; renderBlocks: { grid: number; means: number[] } }[];
}

export const expected: Expected = JSON.parse(readFileSync(join(fixtureDir, 'expected.json'), 'utf8'));

export function fixture(name: string): Uint8Array {
  return new Uint8Array(readFileSync(join(fixtureDir, name)));
}

export function sha(a: Int32Array): string {
  return createHash('sha256').update(Buffer.from(a.buffer, a.byteOffset, a.byteLength)).digest('hex');
}

export function readPgm(buf: Buffer): { width: number; height: number; values: Uint8Array } {
  const text = buf.subarray(0, 64).toString('latin1');
  const m = /^P5\s+(?:#[^\n]*\n\s*)*(\d+)\s+(\d+)\s+(\d+)\s/.exec(text);
  if (!m) throw new Error('not a binary PGM');
  const width = +m[1];
  const height = +m[2];
  return { width, height, values: new Uint8Array(buf.subarray(m[0].length, m[0].length + width * height)) };
}

export function blockMeans(values: ArrayLike<number>, width: number, height: number, grid: number): number[] {
  const sums = new Float64Array(grid * grid);
  const counts = new Float64Array(grid * grid);
  for (let y = 0; y < height; y++) {
    const gy = Math.floor((y * grid) / height);
    for (let x = 0; x < width; x++) {
      const k = gy * grid + Math.floor((x * grid) / width);
      sums[k] += values[y * width + x];
      counts[k]++;
    }
  }
  return Array.from(sums, (s, k) => s / counts[k]);
}
