/**
 * npm run check:reduced-decode [-- --limit N --model models/… --tolerance 0.05]
 *
 * The worker decodes JPEG 2000 at the wavelet level the model needs (services/imaging/frame.ts,
 * `minLongSide`), not at full size. This check runs the model on the full-resolution decode and
 * on the reduced decode of the same files and reports how far the fracture probability moves
 * (max and p95 of |Δ|) and which flags change, against a stated tolerance:
 *   - samples/ as committed (only the JPEG 2000 CR files are reduced; the rest decode at full size);
 *   - the FracAtlas val images (../shared/datasets/fracatlas). The shared copy is at most 512 px
 *     on its longer side, too small to be reduced for a 384² model, so each image is brought back
 *     to its acquisition size (original_width × original_height in labels.csv, bilinear), stored
 *     12-bit, and wrapped as DICOM JPEG 2000 lossless (OpenJPEG's opj_compress, Debian
 *     libopenjp2-tools, default 5 decomposition levels) — the way a CR/DX modality would send it.
 * Writes docs/benchmarks/reduced-decode.md. Exits 1 if a change exceeds the tolerance.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import jpeg from 'jpeg-js';
import { decodeInstance, letterbox, resize, type DecodedImage } from '../services/imaging/index.js';
import { loadFractureModel, type FractureModel } from '../services/inference/index.js';
import { DEFAULT_MODEL_DIR } from '../services/inference/defaultModel.js';
import { decodeLongSide, justBelowAnOperatingPoint, RESCORE_MARGIN_LOGIT } from '../services/core/services/classify.service.js';
import { encapsulatedPixelData, imageElements, writeDicom } from '../test/helpers/images.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: process.env.MODEL_DIR ?? DEFAULT_MODEL_DIR },
    limit: { type: 'string' },
    tolerance: { type: 'string', default: '0.05' },
    out: { type: 'string', default: 'docs/benchmarks/reduced-decode.md' },
  },
});
const root = path.resolve(import.meta.dirname, '..');
const atlas = path.resolve(root, '../shared/datasets/fracatlas');
const tolerance = Number(values.tolerance);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ft-reduced-check-'));

interface Row {
  name: string;
  size: string;
  reduction: number;
  full: number;
  reduced: number;
  delta: number;
  flagFull: string;
  flagReduced: string;
  fullMs: number;
  reducedMs: number;
  /** The worker scored the full image again (reduced score just under an operating point). */
  rescored: boolean;
  /** The alternative, one wavelet level more: longer side only at least the model input (the first policy). */
  reduction2: number;
  delta2: number;
  flagReduced2: string;
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
const median = (xs: number[]) => pct([...xs].sort((a, b) => a - b), 50);

async function compare(model: FractureModel, name: string, bytes: Uint8Array): Promise<Row> {
  const timed = async (opts: { minLongSide?: number }) => {
    const t = performance.now();
    const d: DecodedImage = await decodeInstance(bytes, opts);
    const ms = performance.now() - t;
    return { d, ms, p: await model.predict(letterbox(d.display, model.inputSize).data) };
  };
  const full = await timed({});
  const reduced = await timed({ minLongSide: decodeLongSide(model.inputSize) });
  const reduced2 = await timed({ minLongSide: model.inputSize });
  // The worker's rule: a reduced score just under an operating point is replaced by the full-resolution one.
  const rescored = reduced.d.reduction > 1 && justBelowAnOperatingPoint(reduced.p.probability, model.operatingPoints);
  if (rescored) reduced.p = full.p;
  return {
    rescored,
    reduction2: reduced2.d.reduction, delta2: Math.abs(full.p.probability - reduced2.p.probability), flagReduced2: reduced2.p.flag,
    name, size: `${full.d.width}×${full.d.height}`, reduction: reduced.d.reduction,
    full: full.p.probability, reduced: reduced.p.probability, delta: Math.abs(full.p.probability - reduced.p.probability),
    flagFull: full.p.flag, flagReduced: reduced.p.flag, fullMs: full.ms, reducedMs: reduced.ms,
  };
}

/** A FracAtlas val JPEG at its acquisition size, 12 bits stored, as DICOM JPEG 2000 lossless. */
function atlasAsJ2k(imageId: string, width: number, height: number): Uint8Array {
  const decoded = jpeg.decode(fs.readFileSync(path.join(atlas, 'images', imageId)), { useTArray: true, formatAsRGBA: true });
  const grey = new Float32Array(decoded.width * decoded.height);
  for (let i = 0; i < grey.length; i++) grey[i] = decoded.data[i * 4] * 16; // 8 → 12 bits, as make-samples does
  const up = width === decoded.width && height === decoded.height ? grey : resize({ width: decoded.width, height: decoded.height, data: grey }, width, height);
  const body = Buffer.alloc(width * height * 2);
  for (let i = 0; i < up.length; i++) body.writeUInt16BE(Math.max(0, Math.min(4095, Math.round(up[i]))), 2 * i);
  const pgm = path.join(tmp, 'in.pgm');
  const cs = path.join(tmp, 'out.j2k');
  fs.writeFileSync(pgm, Buffer.concat([Buffer.from(`P5\n${width} ${height}\n4095\n`, 'latin1'), body]));
  execFileSync('opj_compress', ['-i', pgm, '-o', cs], { stdio: 'ignore' });
  return writeDicom({
    transferSyntaxUid: '1.2.840.10008.1.2.4.90',
    elements: imageElements({ rows: height, columns: width, bitsAllocated: 16, bitsStored: 12, pixelRepresentation: 0, windows: [{ center: 2048, width: 4096 }] }),
    encapsulated: encapsulatedPixelData([new Uint8Array(fs.readFileSync(cs))]),
  });
}

interface Policy {
  reduction: (r: Row) => number;
  delta: (r: Row) => number;
  flag: (r: Row) => string;
}
const worker: Policy = { reduction: (r) => r.reduction, delta: (r) => r.delta, flag: (r) => r.flagReduced };
const oneLevelMore: Policy = { reduction: (r) => r.reduction2, delta: (r) => r.delta2, flag: (r) => r.flagReduced2 };

function summary(label: string, rows: Row[], p: Policy = worker): string {
  const reduced = rows.filter((r) => p.reduction(r) > 1);
  const d = reduced.map(p.delta).sort((a, b) => a - b);
  const flips = reduced.filter((r) => r.flagFull !== p.flag(r)).length;
  const over = d.filter((x) => x > tolerance).length;
  const speed = p === worker && reduced.length ? `${median(reduced.map((r) => r.fullMs)).toFixed(0)} → ${median(reduced.map((r) => r.reducedMs)).toFixed(0)}` : '—';
  const f = (x: number | undefined) => (x === undefined ? '—' : x.toFixed(4));
  return `| ${label} | ${rows.length} | ${reduced.length} | ${f(d.length ? pct(d, 95) : undefined)} | ${f(d[d.length - 1])} | ${f(d.length ? d.reduce((s, x) => s + x, 0) / d.length : undefined)} | ${over} | ${flips} | ${speed} |`;
}

const rowLine = (r: Row) => `| ${r.name} | ${r.size} | ${r.reduction}×${r.rescored ? ' (re-scored at full)' : ''} | ${r.full.toFixed(4)} | ${r.reduced.toFixed(4)} | ${r.delta.toFixed(4)} | ${r.flagFull}${r.flagFull === r.flagReduced ? '' : ` → ${r.flagReduced}`} | ${r.reduction2}× ${r.delta2.toFixed(4)}${r.flagFull === r.flagReduced2 ? '' : ` (${r.flagReduced2})`} |`;
const rowHeader = ['| file | size | reduced | p full | p reduced | \\|Δ\\| | flag | one level more (≥ input): reduced, \\|Δ\\| |', '|---|---|---:|---:|---:|---:|---|---|'];

function report(model: FractureModel, started: number, sampleRows: Row[], atlasRows: Row[], valCount: number, tooSmall: number, seen: number): { text: string; ok: boolean } {
  const all = [...sampleRows, ...atlasRows].filter((r) => r.reduction > 1);
  const worst = [...all].sort((a, b) => b.delta - a.delta);
  const over = all.filter((r) => r.delta > tolerance);
  const flips = all.filter((r) => r.flagFull !== r.flagReduced);
  const partial = seen < valCount;
  const flips2 = all.filter((r) => r.flagFull !== r.flagReduced2);
  const text = [
    '# Reduced-resolution decode: does the score move?',
    '',
    `Command: \`npm run check:reduced-decode${values.limit ? ` -- --limit ${values.limit}` : ''}\` (scripts/check-reduced-decode.ts)`,
    `Model: ${model.name} ${model.version} (input ${model.inputSize}², backend ${model.backend}). Machine: ${os.cpus().length} cores, Node ${process.version}, shared (load average ${os.loadavg()[0].toFixed(1)} when written); ${((Date.now() - started) / 60000).toFixed(0)} min. Date: ${new Date().toISOString().slice(0, 10)}.`,
    partial ? `\n**Partial: ${seen} of ${valCount} FracAtlas val images** (taken evenly through the list, every ${STRIDE}th first, so a partial run is a spread sample; the report is rewritten as the run goes).\n` : '',
    `FracAtlas val: ${seen} images looked at; ${tooSmall} were acquired smaller than twice the model input (longer side < ${2 * model.inputSize} px), so neither policy skips a wavelet level and the worker decodes them exactly as the viewer does (Δ = 0 by construction; not re-run); the other ${atlasRows.length} were wrapped as JPEG 2000 and scored both ways.`,
    '',
    `The worker asks the decoder for an image whose longer side is at least twice the model input (${decodeLongSide(model.inputSize)} px, decodeLongSide() in`,
    'services/core/services/classify.service.ts); for JPEG 2000 it decodes the smallest wavelet resolution level that is still that',
    'large (OpenJPEG `decodeSubResolution`), then letterboxes as always.',
    'Here every file is decoded at full resolution (as the viewer and exports get it) and reduced (as the worker gets it), and',
    'scored by the model; |Δ| is the absolute change of the calibrated fracture probability. The same run also scores decoding',
    'one wavelet level further (longer side only ≥ the model input: the first policy, replaced because of these figures).',
    '',
    `"p reduced" is what the worker stores: when the reduced score fell less than ${RESCORE_MARGIN_LOGIT} in log-odds under an operating point, the worker scores the full image again and stores that (${all.filter((r) => r.rescored).length} of ${all.length} reduced files here; the alternative column does not apply this rule).`,
    '',
    `**Tolerance: |Δ probability| ≤ ${tolerance}, and no flag may change.** ${over.length === 0 && flips.length === 0 ? 'Met on every file.' : `NOT met: ${over.length} file(s) above the tolerance, ${flips.length} flag change(s) (listed below).`}`,
    '',
    '| set | files | reduced | p95 \\|Δ\\| | max \\|Δ\\| | mean \\|Δ\\| | over tolerance | flags changed | median decode ms full → reduced |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---|',
    summary('samples/ (committed)', sampleRows),
    summary('FracAtlas val at acquisition size, JPEG 2000 lossless', atlasRows),
    summary('all reduced files', all),
    summary('all, one level more (longer side ≥ input)', [...sampleRows, ...atlasRows], oneLevelMore),
    '',
    'Statistics are over the files that were actually reduced (files not in JPEG 2000, or already small, decode at full size and',
    'score identically: Δ = 0 by construction). FracAtlas val: the shared copy was downscaled to ≤ 512 px, so upscaling it back',
    'adds no detail — the check measures what the smaller wavelet level and the shorter box filter change, not anatomy lost at',
    'acquisition resolution; the real CR files in samples/real-cr are the native-resolution case.',
    '',
    '## samples/',
    '',
    ...rowHeader,
    ...sampleRows.map(rowLine),
    '',
    '## Largest changes (all sets)',
    '',
    ...rowHeader,
    ...worst.slice(0, 10).map(rowLine),
    '',
    flips.length ? ['## Flag changes', '', ...rowHeader, ...flips.map(rowLine), ''].join('\n') : 'No flag changed.',
    '',
    flips2.length ? ['## Flag changes with one level more', '', ...rowHeader, ...flips2.map(rowLine), ''].join('\n') : 'No flag changed with one level more either.',
    '',
    '## JPEG baseline / extended: DCT scaling',
    '',
    'Not used. The JPEG decoder we ship for 8-bit DCT (`@cornerstonejs/codec-libjpeg-turbo-8bit` 1.2.8, WASM) exposes only',
    '`getEncodedBuffer`, `readHeader`, `decode`, `getFrameInfo` and `getDecodedBuffer` — libjpeg-turbo\'s `scale_num/scale_denom`',
    '(1/2, 1/4, 1/8 IDCT scaling) is not reachable from JavaScript, and the 12-bit DCT path is our own decoder',
    '(services/imaging/codecs/jpeg-dct.ts). JPEG images therefore decode at full size; they are cheap already (docs/benchmarks/decode.md:',
    '~70 ms for 2048×2500 8-bit). JPEG-LS and JPEG lossless have no reduced-resolution mode by design.',
    '',
  ].join('\n');
  return { text, ok: over.length === 0 && flips.length === 0 };
}

/** Val images in a spread order (0, S, 2S, …, 1, S+1, …) so any prefix samples the whole list. */
const STRIDE = 8;

async function main() {
  try {
    execFileSync('sh', ['-c', 'command -v opj_compress'], { stdio: 'ignore' });
  } catch {
    throw new Error('opj_compress not found: apt-get install libopenjp2-tools');
  }
  if (!fs.existsSync(path.join(atlas, 'labels.csv'))) throw new Error(`FracAtlas not found at ${atlas}`);
  const model = await loadFractureModel(path.resolve(root, values.model!));
  const started = Date.now();
  const outFile = path.resolve(root, values.out!);

  const sampleRows: Row[] = [];
  for (const dir of ['fracatlas', 'real-cr']) {
    for (const f of fs.readdirSync(path.join(root, 'samples', dir)).filter((f) => f.endsWith('.dcm')).sort()) {
      sampleRows.push(await compare(model, `${dir}/${f}`, fs.readFileSync(path.join(root, 'samples', dir, f))));
      console.error(rowLine(sampleRows[sampleRows.length - 1]));
    }
  }

  const [header, ...lines] = fs.readFileSync(path.join(atlas, 'labels.csv'), 'utf8').trim().split(/\r?\n/);
  const cols = header.split(',');
  const listed = lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [cols[i], v]))).filter((r) => r.split === 'val');
  let val = Array.from({ length: STRIDE }, (_, k) => listed.filter((_, i) => i % STRIDE === k)).flat();
  if (values.limit) val = val.slice(0, Number(values.limit));
  const atlasRows: Row[] = [];
  let tooSmall = 0;
  for (const [i, r] of val.entries()) {
    // Smaller than twice the model input at acquisition: no wavelet level can be skipped, so the
    // worker's decode is the full decode (the same call with level 0). Counted, not re-run.
    if (Math.max(Number(r.original_width), Number(r.original_height)) < 2 * model.inputSize) {
      tooSmall++;
      continue;
    }
    const bytes = atlasAsJ2k(r.image_id, Number(r.original_width), Number(r.original_height));
    const row = await compare(model, `${r.image_id} (${r.fractured === '1' ? 'fractured' : 'not fractured'}, ${r.body_part})`, bytes);
    atlasRows.push(row);
    if (i % 10 === 0 || row.delta > tolerance || row.flagFull !== row.flagReduced || row.flagFull !== row.flagReduced2) console.error(`${i + 1}/${val.length} ${rowLine(row)}`);
    if (atlasRows.length % 5 === 0) fs.writeFileSync(outFile, report(model, started, sampleRows, atlasRows, val.length, tooSmall, i + 1).text);
  }
  const { text, ok } = report(model, started, sampleRows, atlasRows, val.length, tooSmall, val.length);
  model.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.writeFileSync(outFile, text);
  console.log(text);
  if (!ok) process.exitCode = 1;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
