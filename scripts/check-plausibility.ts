/**
 * npm run check:plausibility  (= tsx scripts/check-plausibility.ts [--images DIR])
 *
 * The proof behind services/imaging/plausibility.ts: runs the check on every FracAtlas image
 * (../shared/datasets/fracatlas/images, 8-bit JPEG, greyscale = first channel / 255, as
 * scripts/evaluate.ts reads them) and on every DICOM file in samples/ (decoded as the worker
 * decodes them), and reports how many were called "unreadable" (must be 0) and how close the
 * nearest image came to each limit. Writes docs/benchmarks/plausibility.md; exits 1 on any false
 * "unreadable". Not in CI's test run (needs the data set and a few minutes).
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import jpeg from 'jpeg-js';
import { decodeInstance } from '../services/imaging/index.js';
import { checkPlausibility, PLAUSIBILITY_LIMITS, plausibilityMeasures, type PlausibilityMeasures } from '../services/imaging/plausibility.js';
import type { GreyImage } from '../services/imaging/letterbox.js';

const root = resolve(import.meta.dirname, '..');
const imagesArg = process.argv.indexOf('--images');
const imagesDir = imagesArg > 0 ? process.argv[imagesArg + 1] : resolve(root, '../shared/datasets/fracatlas/images');

interface Outcome { name: string; measures: PlausibilityMeasures; unreadable?: string }

function greyFromJpeg(bytes: Buffer): GreyImage {
  const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 1024 });
  const data = new Float32Array(img.width * img.height);
  for (let k = 0; k < data.length; k++) data[k] = img.data[4 * k] / 255;
  return { width: img.width, height: img.height, data };
}

function judge(name: string, image: GreyImage, warnings: readonly string[] = []): Outcome {
  const verdict = checkPlausibility(image, warnings);
  return { name, measures: plausibilityMeasures(image), unreadable: verdict.readable ? undefined : verdict.reason };
}

function dicomFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? dicomFiles(p) : e.name.endsWith('.dcm') ? [p] : [];
  });
}

/** The image nearest each limit, and by how much it clears it. */
function margins(outcomes: Outcome[]) {
  const L = PLAUSIBILITY_LIMITS;
  const worst = <K extends keyof PlausibilityMeasures>(key: K, dir: 'max' | 'min') =>
    outcomes.reduce((a, b) => ((dir === 'max' ? b.measures[key] > a.measures[key] : b.measures[key] < a.measures[key]) ? b : a));
  const row = (label: string, key: keyof PlausibilityMeasures, dir: 'max' | 'min', limit: number) => {
    const w = worst(key, dir);
    return `| ${label} | ${dir === 'max' ? '≤' : '≥'} ${limit} | ${w.measures[key].toFixed(3)} (${w.name}) |`;
  };
  return [
    '| measure | readable when | worst image here |',
    '|---|---|---|',
    row('share of the most common grey level', 'dominantLevel', 'max', L.maxDominantLevel),
    row('1st–99th percentile spread', 'spread', 'min', L.minSpread),
    row('share of pure white', 'saturated', 'max', L.maxSaturated),
    row('grey levels in use (of 256)', 'levels', 'min', L.minLevels),
    row('adjacent-pixel correlation', 'neighbourCorrelation', 'min', L.minNeighbourCorrelation),
  ];
}

async function main() {
  const t0 = Date.now();
  const atlas: Outcome[] = [];
  const files = readdirSync(imagesDir).filter((f) => /\.jpe?g$/i.test(f)).sort();
  for (const [i, f] of files.entries()) {
    atlas.push(judge(f, greyFromJpeg(readFileSync(join(imagesDir, f)))));
    if ((i + 1) % 500 === 0) console.error(`${i + 1}/${files.length}`);
  }
  const samples: Outcome[] = [];
  for (const file of dicomFiles(join(root, 'samples'))) {
    const decoded = await decodeInstance(new Uint8Array(readFileSync(file)));
    samples.push(judge(file.slice(root.length + 1), decoded.display, decoded.warnings));
  }
  const falseAtlas = atlas.filter((o) => o.unreadable);
  const falseSamples = samples.filter((o) => o.unreadable);
  const seconds = Math.round((Date.now() - t0) / 1000);
  const md = [
    '# Plausibility check: no false "unreadable"',
    '',
    `\`npm run check:plausibility\` — ${new Date().toISOString().slice(0, 10)}, ${cpus().length} cores, ${seconds} s.`,
    '',
    'The worker calls an image "unreadable" (and gives it no score) when the decoder warned about',
    'damaged data or the decoded image is not plausibly a radiograph (services/imaging/plausibility.ts).',
    'Every image below is a real radiograph, so every "unreadable" here would be a false one.',
    '',
    `- FracAtlas (${files.length} JPEGs, train + val): **${falseAtlas.length} unreadable**`,
    `- samples/ (${samples.length} DICOM files, every transfer syntax we ship): **${falseSamples.length} unreadable**`,
    ...[...falseAtlas, ...falseSamples].map((o) => `  - ${o.name}: ${o.unreadable}`),
    '',
    '## Margins (FracAtlas)',
    '',
    ...margins(atlas),
    '',
    '## Margins (samples/)',
    '',
    ...margins(samples),
    '',
  ].join('\n');
  writeFileSync(join(root, 'docs/benchmarks/plausibility.md'), md);
  console.log(md);
  if (falseAtlas.length || falseSamples.length) process.exit(1);
}

await main();
