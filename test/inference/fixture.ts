import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_MODEL_DIR } from '../../services/inference/defaultModel.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The shipped model; FRACTURE_MODEL_DIR overrides (e.g. a smoke-run export). */
export const MODEL_DIR = process.env.FRACTURE_MODEL_DIR ?? path.join(root, DEFAULT_MODEL_DIR);

export interface ParityFixture {
  n: number;
  size: number;
  heat: number[][];
  cls: number[];
  rawScore: number[];
  probability: number[];
  inputs: Float32Array[];
}

/** Inputs and PyTorch outputs written by training/train.py (no Python needed here). */
export function readParityFixture(dir = MODEL_DIR): ParityFixture {
  const exp = JSON.parse(readFileSync(path.join(dir, 'parity', 'expected.json'), 'utf8'));
  const u8 = readFileSync(path.join(dir, 'parity', 'inputs.u8'));
  const S = exp.size as number;
  const inputs: Float32Array[] = [];
  for (let n = 0; n < exp.n; n++) {
    const x = new Float32Array(S * S);
    for (let i = 0; i < S * S; i++) x[i] = u8[n * S * S + i] / 255;
    inputs.push(x);
  }
  return { ...exp, inputs };
}
