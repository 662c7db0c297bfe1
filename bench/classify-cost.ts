/**
 * npm run bench:classify-cost [-- --runs 5]
 *
 * Cost per image on one core, by stage (parse + decode, letterbox, inference), for a 512² and a
 * 2048×2500 16-bit image stored uncompressed and as JPEG 2000 lossless, decoded at full size and
 * at the size the model needs; in the same run the reference decoder (OpenJPEG's opj_decompress,
 * full and with -r) decodes the same codestream, so the figures are ratios on the same load.
 * Everything runs in this one process and thread (the reference decoder as a child, timed by wall
 * clock including its start-up). Results go to docs/benchmarks/classify-cost.md.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { decodeInstance, letterbox } from '../services/imaging/index.js';
import { loadFractureModel } from '../services/inference/index.js';
import { encapsulatedPixelData, imageElements, packPixels, syntheticImage, writeDicom, type ImageSpec } from '../test/helpers/images.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, out: { type: 'string', default: 'docs/benchmarks/classify-cost.md' } } });
const runs = Number(values.runs);
const root = path.resolve(import.meta.dirname, '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ft-classify-cost-'));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function time<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t = performance.now();
  return fn().then((value) => ({ ms: performance.now() - t, value }));
}

function j2kCodestream(pixels: Int32Array, w: number, h: number, name: string): string {
  const body = Buffer.alloc(w * h * 2);
  for (let i = 0; i < pixels.length; i++) body.writeUInt16BE(pixels[i], 2 * i);
  const pgm = path.join(tmp, `${name}.pgm`);
  fs.writeFileSync(pgm, Buffer.concat([Buffer.from(`P5\n${w} ${h}\n4095\n`, 'latin1'), body]));
  const cs = path.join(tmp, `${name}.j2k`);
  execFileSync('opj_compress', ['-i', pgm, '-o', cs], { stdio: 'ignore' });
  return cs;
}

async function main() {
  const model = await loadFractureModel(path.join(root, 'models/fracatlas-heatnet-v1'));
  const rows: string[] = [];
  const cases: { label: string; w: number; h: number; j2k: boolean }[] = [
    { label: '512×512 uncompressed', w: 512, h: 512, j2k: false },
    { label: '2048×2500 uncompressed', w: 2048, h: 2500, j2k: false },
    { label: '2048×2500 JPEG 2000 lossless', w: 2048, h: 2500, j2k: true },
  ];
  for (const c of cases) {
    const spec: ImageSpec = { rows: c.h, columns: c.w, bitsAllocated: 16, bitsStored: 12, pixelRepresentation: 0, windows: [{ center: 2048, width: 4096 }] };
    const pixels = syntheticImage(c.w, c.h, 0, 4095, 42);
    let bytes: Uint8Array;
    let codestream: string | undefined;
    if (c.j2k) {
      codestream = j2kCodestream(pixels, c.w, c.h, 'case');
      bytes = writeDicom({ transferSyntaxUid: '1.2.840.10008.1.2.4.90', elements: imageElements(spec), encapsulated: encapsulatedPixelData([new Uint8Array(fs.readFileSync(codestream))]) });
    } else {
      bytes = writeDicom({ elements: imageElements(spec), pixelData: packPixels(pixels, 16, 12), bitsAllocated: 16 });
    }
    const modes = c.j2k ? [{ name: 'full', minLongSide: undefined }, { name: 'reduced', minLongSide: model.inputSize }] : [{ name: 'full', minLongSide: undefined }];
    for (const mode of modes) {
      const decode: number[] = [];
      const lbMs: number[] = [];
      const infer: number[] = [];
      const ref: number[] = [];
      let size = '';
      for (let i = 0; i < runs; i++) {
        // Interleaved: ours, then the reference on the same codestream, run after run.
        const d = await time(() => decodeInstance(bytes, { minLongSide: mode.minLongSide }));
        size = `${d.value.display.width}×${d.value.display.height}`;
        const l = await time(async () => letterbox(d.value.display, model.inputSize));
        const p = await time(() => model.predict(l.value.data));
        decode.push(d.ms); lbMs.push(l.ms); infer.push(p.ms);
        if (codestream) {
          const args = ['-i', codestream, '-o', path.join(tmp, 'ref.pgm'), ...(mode.minLongSide ? ['-r', String(Math.log2(d.value.reduction))] : [])];
          const t = performance.now();
          execFileSync('opj_decompress', args, { stdio: 'ignore' });
          ref.push(performance.now() - t);
        }
      }
      const [dm, lm, im] = [median(decode), median(lbMs), median(infer)];
      const refMs = ref.length ? median(ref) : undefined;
      rows.push(`| ${c.label} | ${mode.name} (${size}) | ${dm.toFixed(0)} | ${lm.toFixed(0)} | ${im.toFixed(0)} | ${(dm + lm + im).toFixed(0)} | ${refMs === undefined ? '—' : `${refMs.toFixed(0)} (ours/ref ${(dm / refMs).toFixed(2)}×)`} |`);
      console.error(rows[rows.length - 1]);
    }
  }
  model.dispose();
  const lines = [
    '# Classify cost per image, by stage, on one core',
    '',
    `Command: \`npm run bench:classify-cost -- --runs ${runs}\``,
    `Machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}), Node ${process.version}, TF.js backend ${model.backend}; shared with other work while measured (load average ${os.loadavg()[0].toFixed(1)}). Date: ${new Date().toISOString().slice(0, 10)}.`,
    'One thread (no decode pool), medians of the runs, ms. Decode = parse + pixel decode + modality + VOI; the reference decoder (opj_decompress, OpenJPEG 2.5 from Debian) decodes the same codestream to PGM in the same loop (its time includes process start and writing the file), reduced with -r at the same level.',
    '',
    '| image | decoded at | decode ms | letterbox ms | inference ms | total ms | opj_decompress ms |',
    '|---|---|---:|---:|---:|---:|---:|',
    ...rows,
    '',
  ];
  fs.writeFileSync(path.resolve(root, values.out!), lines.join('\n'));
  console.log(lines.join('\n'));
  fs.rmSync(tmp, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
