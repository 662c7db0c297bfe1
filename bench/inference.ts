/**
 * npm run bench:inference  (= tsx bench/inference.ts [--runs N] [--backend wasm] [model dir ...])
 *
 * Inference time per image of each model (default: the shipped model and v1), on the worker's
 * backend (wasm unless told): predict() on letterboxed sample radiographs (samples/fracatlas),
 * i.e. the network plus calibration, heat map and boxes, after 2 warm-up runs. The models run
 * interleaved, so a busy machine slows them alike. Reports median and mean ms and writes
 * docs/benchmarks/inference.md.
 */
import { readdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import { decodeInstance, letterbox } from '../services/imaging/index.js';
import { DEFAULT_MODEL_DIR, loadFractureModel, type Backend, type FractureModel } from '../services/inference/index.js';
import { median } from './stats.js';

const root = resolve(import.meta.dirname, '..');
const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args.splice(i, 2)[1] : dflt;
};
const RUNS = Number(opt('runs', '5'));
const backend = opt('backend', 'wasm') as Backend;
const dirs = (args.length ? args : [DEFAULT_MODEL_DIR, 'models/fracatlas-heatnet-v1']).map((d) => resolve(root, d));

const sampleDir = join(root, 'samples', 'fracatlas');
const images = await Promise.all(readdirSync(sampleDir).sort().map(async (f) => (await decodeInstance(readFileSync(join(sampleDir, f)))).display));
const models: FractureModel[] = [];
for (const d of dirs) models.push(await loadFractureModel(d, { backend }));
const times = models.map(() => [] as number[]);
for (let run = -2; run < RUNS; run++) {
  for (const [m, model] of models.entries()) {
    for (const img of images) {
      const x = letterbox(img, model.inputSize).data;
      const t = performance.now();
      await model.predict(x);
      if (run >= 0) times[m].push(performance.now() - t);
    }
  }
}
const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
const lines = [
  '# Inference benchmark',
  '',
  `Command: \`npm run bench:inference -- --runs ${RUNS} --backend ${backend}\``,
  `Machine: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}. Date: ${new Date().toISOString().slice(0, 10)}.`,
  `What: predict() (network, calibration, heat map, boxes) on the ${images.length} letterboxed samples in samples/fracatlas, ${RUNS} runs after 2 warm-up runs, models interleaved. Budget (issue 17): ≤ 120 ms per image on wasm.`,
  '',
  '| model | input | backend | median ms | mean ms | images timed |',
  '|---|---:|---|---:|---:|---:|',
  ...models.map((m, i) => `| ${m.name} ${m.version} (${relative(root, dirs[i])}) | ${m.inputSize}² | ${m.backend} | ${median(times[i]).toFixed(1)} | ${mean(times[i]).toFixed(1)} | ${times[i].length} |`),
  '',
  'The machine is shared: the figures move with its load; compare models within one run.',
  '',
];
writeFileSync(join(root, 'docs', 'benchmarks', 'inference.md'), lines.join('\n'));
console.log(lines.join('\n'));
for (const m of models) m.dispose();
