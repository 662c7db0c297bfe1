/**
 * Evaluates the fracture model (TF.js) on a folder of images with a FracAtlas-style labels.csv.
 *
 *   npm run evaluate -- <labels.csv> <images dir> [--model models/fracatlas-mnv2-v2]
 *                       [--split val|all] [--holdout <csv> --part test] [--out metrics.json]
 *                       [--backend auto|node|wasm|cpu] [--scores per-image.csv]
 *
 * --holdout: a CSV with columns image_id, part (training/splits/fracatlas-val-v2.csv); with
 * --part, only the images of that part are evaluated (model v2's untouched test part).
 *
 * Required columns: image_id, fractured. Optional: split (default: the `val` rows when the column
 * exists), body_part, source_truncated, boxes_yolo (normalised "cx cy w h", ';'-separated).
 * Images: 8-bit JPEG (decoded with jpeg-js, pure JS), greyscale = first channel / 255, then
 * letterbox() from services/imaging/letterbox.ts — exactly the worker's path.
 * Figures: AUROC with a 95 % bootstrap CI, sensitivity/specificity at the manifest's operating
 * points (Wilson 95 % CIs), ECE (10 equal-width bins), Brier score, per body part, localisation
 * (share of fractured images whose heat-map maximum falls inside a fracture box), and the
 * scores of source_truncated negatives against the other negatives.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import jpeg from 'jpeg-js';
import { letterbox } from '../services/imaging/letterbox.js';
import { DEFAULT_MODEL_DIR, loadFractureModel, type Backend } from '../services/inference/index.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

interface Row {
  image_id: string;
  fractured: number;
  split?: string;
  body_part?: string;
  source_truncated?: number;
  boxes: [number, number, number, number][];
}

function parseArgs(argv: string[]) {
  const pos: string[] = [];
  const opt: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith('--')) {
      const [k, v] = a.includes('=') ? a.slice(2).split('=', 2) : [a.slice(2), argv[++i]];
      opt[k] = v;
    } else pos.push(a);
  }
  if (pos.length < 2) {
    console.error('usage: npm run evaluate -- <labels.csv> <images dir> [--model dir] [--split val|all] [--holdout csv --part name] [--out file] [--scores file.csv] [--backend b]');
    process.exit(2);
  }
  return { labels: pos[0], images: pos[1], opt };
}

function parseCsv(text: string): Record<string, string>[] {
  const lines = text.split(/\r?\n/).filter((l) => l.length > 0);
  const split = (line: string) => {
    const out: string[] = [];
    let cur = '', q = false;
    for (let i = 0; i < line.length; i++) {
      const c = line[i];
      if (q) {
        if (c === '"' && line[i + 1] === '"') { cur += '"'; i++; }
        else if (c === '"') q = false;
        else cur += c;
      } else if (c === '"') q = true;
      else if (c === ',') { out.push(cur); cur = ''; }
      else cur += c;
    }
    out.push(cur);
    return out;
  };
  const head = split(lines[0]);
  return lines.slice(1).map((l) => {
    const v = split(l);
    return Object.fromEntries(head.map((h, i) => [h, v[i] ?? '']));
  });
}

// ------------------------------------------------------------------ statistics
export function auroc(y: number[], s: number[]): number {
  const idx = s.map((_, i) => i).sort((a, b) => s[a] - s[b]);
  const ranks = new Float64Array(s.length);
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && s[idx[j + 1]] === s[idx[i]]) j++;
    for (let k = i; k <= j; k++) ranks[idx[k]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  let npos = 0, sum = 0;
  for (let i = 0; i < y.length; i++) if (y[i] === 1) { npos++; sum += ranks[i]; }
  const nneg = y.length - npos;
  if (npos === 0 || nneg === 0) return NaN;
  return (sum - (npos * (npos + 1)) / 2) / (npos * nneg);
}

function mulberry32(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function percentile(sorted: number[], q: number) {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos), hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

function bootstrapAuroc(y: number[], s: number[], n = 2000, seed = 7): [number, number] {
  const rnd = mulberry32(seed);
  const vals: number[] = [];
  for (let r = 0; r < n; r++) {
    const yy: number[] = [], ss: number[] = [];
    for (let i = 0; i < y.length; i++) {
      const k = Math.floor(rnd() * y.length);
      yy.push(y[k]);
      ss.push(s[k]);
    }
    const a = auroc(yy, ss);
    if (!Number.isNaN(a)) vals.push(a);
  }
  vals.sort((a, b) => a - b);
  return [percentile(vals, 0.025), percentile(vals, 0.975)];
}

function wilson(k: number, n: number): [number, number] | null {
  if (n === 0) return null;
  const z = 1.959964, p = k / n;
  const d = 1 + (z * z) / n;
  const c = (p + (z * z) / (2 * n)) / d;
  const h = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / d;
  return [Math.max(0, c - h), Math.min(1, c + h)];
}

function atThreshold(y: number[], p: number[], t: number) {
  let tp = 0, fn = 0, tn = 0, fp = 0;
  for (let i = 0; i < y.length; i++) {
    const pred = p[i] >= t;
    if (y[i] === 1) pred ? tp++ : fn++;
    else pred ? fp++ : tn++;
  }
  return {
    threshold: t,
    sensitivity: tp + fn ? tp / (tp + fn) : null, sensitivityCi95: wilson(tp, tp + fn),
    specificity: tn + fp ? tn / (tn + fp) : null, specificityCi95: wilson(tn, tn + fp),
    tp, fn, tn, fp,
  };
}

/** Best sensitivity among thresholds whose specificity is at least `spec` (read off the ROC). */
function sensitivityAtSpecificity(y: number[], p: number[], spec: number) {
  const cands = [...new Set(p)].sort((a, b) => a - b);
  let best = 0;
  for (const t of cands) {
    const r = atThreshold(y, p, t);
    if ((r.specificity ?? 0) >= spec) best = Math.max(best, r.sensitivity ?? 0);
  }
  return best;
}

function ece(y: number[], p: number[], bins = 10) {
  const n = new Array(bins).fill(0), sp = new Array(bins).fill(0), sy = new Array(bins).fill(0);
  for (let i = 0; i < p.length; i++) {
    const b = Math.min(bins - 1, Math.floor(p[i] * bins));
    n[b]++; sp[b] += p[i]; sy[b] += y[i];
  }
  let e = 0;
  for (let b = 0; b < bins; b++) if (n[b]) e += (n[b] / p.length) * Math.abs(sp[b] / n[b] - sy[b] / n[b]);
  return e;
}

const mean = (a: number[]) => (a.length ? a.reduce((x, v) => x + v, 0) / a.length : null);
const r4 = (v: unknown): unknown =>
  typeof v === 'number' ? Math.round(v * 1e4) / 1e4 : Array.isArray(v) ? v.map(r4)
  : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, r4(x)])) : v;

// ------------------------------------------------------------------ main
async function main() {
  const { labels, images, opt } = parseArgs(process.argv.slice(2));
  const modelDir = path.resolve(opt.model ?? path.join(ROOT, DEFAULT_MODEL_DIR));
  const all = parseCsv(await readFile(labels, 'utf8'));
  if (!!opt.holdout !== !!opt.part) throw new Error('--holdout and --part go together');
  const holdout = opt.holdout ? new Map(parseCsv(await readFile(opt.holdout, 'utf8')).map((r) => [r.image_id, r.part])) : undefined;
  const hasSplit = all.length > 0 && 'split' in all[0];
  const split = opt.split ?? (hasSplit && all.some((r) => r.split === 'val') ? 'val' : 'all');
  const rows: Row[] = all
    .filter((r) => split === 'all' || r.split === split)
    .filter((r) => !holdout || holdout.get(r.image_id) === opt.part)
    .map((r) => ({
      image_id: r.image_id,
      fractured: Number(r.fractured),
      split: r.split,
      body_part: r.body_part || undefined,
      source_truncated: r.source_truncated ? Number(r.source_truncated) : undefined,
      boxes: (r.boxes_yolo ?? '').split(';').map((b) => b.trim()).filter(Boolean)
        .map((b) => b.split(/\s+/).map(Number) as [number, number, number, number]),
    }));
  const model = await loadFractureModel(modelDir, { backend: (opt.backend as Backend) ?? 'auto' });
  const S = model.inputSize;
  const stride = model.manifest.heatmap.stride;
  if (rows.length === 0) throw new Error('no images selected (check --split / --holdout / --part)');
  console.error(`model ${model.name} ${model.version} on ${model.backend}; ${rows.length} images (split: ${split}${opt.part ? `, part: ${opt.part}` : ''})`);

  const y: number[] = [], p: number[] = [], raw: number[] = [];
  const used: Row[] = [];
  const failures: { image_id: string; error: string }[] = [];
  let locHits = 0, locN = 0, boxHits = 0, boxN = 0;
  let ms = 0;
  const t0 = Date.now();
  for (const [i, r] of rows.entries()) {
    let grey;
    try {
      const img = jpeg.decode(await readFile(path.join(images, r.image_id)), { useTArray: true, formatAsRGBA: true });
      const data = new Float32Array(img.width * img.height);
      for (let k = 0; k < data.length; k++) data[k] = img.data[4 * k] / 255;
      grey = { width: img.width, height: img.height, data };
    } catch (e) {
      failures.push({ image_id: r.image_id, error: String(e) });
      continue;
    }
    const lb = letterbox(grey, S);
    const t = performance.now();
    const pred = await model.predict(lb.data);
    ms += performance.now() - t;
    y.push(r.fractured); p.push(pred.probability); raw.push(pred.rawScore); used.push(r);
    if (r.fractured === 1 && r.boxes.length) {
      // ground-truth boxes in model-input pixels
      const gt = r.boxes.map(([cx, cy, w, h]) => ({
        x0: (cx - w / 2) * grey.width * lb.scale + lb.offsetX, x1: (cx + w / 2) * grey.width * lb.scale + lb.offsetX,
        y0: (cy - h / 2) * grey.height * lb.scale + lb.offsetY, y1: (cy + h / 2) * grey.height * lb.scale + lb.offsetY,
      }));
      let k = 0;
      for (let j = 1; j < pred.heatmap.length; j++) if (pred.heatmap[j] > pred.heatmap[k]) k = j;
      const px = ((k % pred.heatmapSize) + 0.5) * stride, py = (Math.floor(k / pred.heatmapSize) + 0.5) * stride;
      locN++;
      if (gt.some((g) => px >= g.x0 && px <= g.x1 && py >= g.y0 && py <= g.y1)) locHits++;
      if (pred.boxes.length) {
        boxN++;
        const b = pred.boxes[0];
        if (gt.some((g) => b.x < g.x1 && b.x + b.width > g.x0 && b.y < g.y1 && b.y + b.height > g.y0)) boxHits++;
      }
    }
    if ((i + 1) % 100 === 0) console.error(`  ${i + 1}/${rows.length} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  }

  if (opt.scores) {
    // per-image figures (no pixels, no patient data: FracAtlas file names), for paired comparisons of models
    const lines = ['image_id,body_part,fractured,raw_score,probability', ...used.map((r, i) => `${r.image_id},${r.body_part ?? ''},${y[i]},${raw[i]},${p[i]}`)];
    await writeFile(opt.scores, lines.join('\n') + '\n');
  }
  const op = model.operatingPoints;
  const perBodyPart: Record<string, unknown> = {};
  for (const part of [...new Set(used.map((r) => r.body_part).filter((b): b is string => !!b))].sort()) {
    const ix = used.map((r, i) => (r.body_part === part ? i : -1)).filter((i) => i >= 0);
    const yy = ix.map((i) => y[i]), pp = ix.map((i) => p[i]);
    perBodyPart[part] = {
      n: ix.length, fractured: yy.filter((v) => v === 1).length, auroc: auroc(yy, pp),
      doubt: atThreshold(yy, pp, op.doubt), definite: atThreshold(yy, pp, op.definite),
    };
  }
  const negTrunc = used.map((r, i) => (r.fractured === 0 && r.source_truncated === 1 ? i : -1)).filter((i) => i >= 0);
  const negOther = used.map((r, i) => (r.fractured === 0 && r.source_truncated !== 1 ? i : -1)).filter((i) => i >= 0);
  const aboveShare = (ix: number[], t: number) => (ix.length ? ix.filter((i) => p[i] >= t).length / ix.length : null);
  const brier = mean(p.map((v, i) => (v - y[i]) ** 2));

  const metrics = {
    model: { name: model.name, version: model.version, backend: model.backend, dir: path.relative(ROOT, modelDir) },
    data: {
      labels: path.resolve(labels), images: path.resolve(images), split,
      holdout: opt.holdout ? { file: path.relative(ROOT, path.resolve(opt.holdout)), part: opt.part } : null,
      n: y.length, fractured: y.filter((v) => v === 1).length, decodeFailures: failures,
    },
    command: `npm run evaluate -- ${process.argv.slice(2).join(' ')}`,
    auroc: auroc(y, p),
    aurocCi95: bootstrapAuroc(y, p),
    bootstrap: { resamples: 2000, seed: 7, method: 'percentile, resampling images' },
    operatingPoints: { doubt: atThreshold(y, p, op.doubt), definite: atThreshold(y, p, op.definite) },
    sensitivityAtSpecificity085: sensitivityAtSpecificity(y, p, 0.85),
    ece: { bins: 10, value: ece(y, p) },
    brier,
    meanProbability: mean(p),
    prevalence: mean(y),
    perBodyPart,
    localisation: {
      definition: 'share of fractured images (with boxes) whose heat-map maximum (cell centre) lies inside a fracture box',
      n: locN, hits: locHits, rate: locN ? locHits / locN : null,
      topBox: { definition: 'flagged fractured images whose strongest predicted box overlaps a fracture box', n: boxN, hits: boxHits, rate: boxN ? boxHits / boxN : null },
    },
    sourceTruncated: {
      negatives: negTrunc.length,
      meanProbability: mean(negTrunc.map((i) => p[i])),
      flaggedDoubtShare: aboveShare(negTrunc, op.doubt), flaggedDefiniteShare: aboveShare(negTrunc, op.definite),
      otherNegatives: {
        n: negOther.length, meanProbability: mean(negOther.map((i) => p[i])),
        flaggedDoubtShare: aboveShare(negOther, op.doubt), flaggedDefiniteShare: aboveShare(negOther, op.definite),
      },
    },
    timing: { meanInferenceMs: used.length ? ms / used.length : null, totalSeconds: (Date.now() - t0) / 1000 },
    generatedAt: new Date().toISOString(),
  };
  const out = r4(metrics) as typeof metrics;
  const text = JSON.stringify(out, null, 2) + '\n';
  if (opt.out) await writeFile(opt.out, text);
  else process.stdout.write(text);
  const od = out.operatingPoints;
  console.error(
    `AUROC ${out.auroc} (95% CI ${out.aurocCi95.join('-')}); doubt sens ${od.doubt.sensitivity} spec ${od.doubt.specificity}; ` +
      `definite sens ${od.definite.sensitivity} spec ${od.definite.specificity}; ECE ${out.ece.value}; ` +
      `localisation ${out.localisation.rate}; sens@spec0.85 ${out.sensitivityAtSpecificity085}; failures ${failures.length}`,
  );
  for (const [part, v] of Object.entries(out.perBodyPart) as [string, { n: number; fractured: number; auroc: number; doubt: { sensitivity: number | null; specificity: number | null } }][]) {
    console.error(`  ${part}: n ${v.n} (${v.fractured} fractured) AUROC ${v.auroc} doubt sens ${v.doubt.sensitivity} spec ${v.doubt.specificity}`);
  }
  console.error(`mean inference ${out.timing.meanInferenceMs} ms/image (${model.backend})`);
  model.dispose();
}

await main();
