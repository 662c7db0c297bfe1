/**
 * npm run bench:classify-cost [-- --runs 5]
 *
 * Cost per image on one core, by stage (parse + decode, letterbox, inference), for a 512² and a
 * 2048×2500 16-bit image stored uncompressed, and the 2048×2500 image as JPEG 2000 lossless
 * (decoded at full size and at the size the model needs), JPEG-LS lossless and JPEG lossless
 * (process 14, SV1). In the same run a reference decoder decodes the same data run after run, so
 * the figures are ratios on the same load: OpenJPEG's opj_decompress (full and with -r) on the
 * codestream, dcmtk's dcmdjpls / dcmdjpeg on the DICOM file. Everything of ours runs in this one
 * process and thread; the reference decoders run as child processes, timed by wall clock including
 * their start-up (measured on its own too) and writing their output. Results go to
 * docs/benchmarks/classify-cost.md.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { decodeInstance, letterbox } from '../services/imaging/index.js';
import { loadFractureModel } from '../services/inference/index.js';
import { DEFAULT_MODEL_DIR } from '../services/inference/defaultModel.js';
import { decodeLongSide } from '../services/core/services/classify.service.js';
import { encapsulatedPixelData, imageElements, packPixels, syntheticImage, writeDicom, type ImageSpec } from '../test/helpers/images.js';
import { median } from './stats.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, out: { type: 'string', default: 'docs/benchmarks/classify-cost.md' } } });
const runs = Number(values.runs);
const root = path.resolve(import.meta.dirname, '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ft-classify-cost-'));

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
  const model = await loadFractureModel(path.resolve(root, process.env.MODEL_DIR ?? DEFAULT_MODEL_DIR));
  const rows: string[] = [];
  await model.predict(new Float32Array(model.inputSize * model.inputSize)); // warm-up: the first call compiles the graph
  type Codec = 'native' | 'j2k' | 'jpeg-ls' | 'jpeg-lossless';
  const cases: { label: string; w: number; h: number; codec: Codec }[] = [
    { label: '512×512 uncompressed', w: 512, h: 512, codec: 'native' },
    { label: '2048×2500 uncompressed', w: 2048, h: 2500, codec: 'native' },
    { label: '2048×2500 JPEG 2000 lossless', w: 2048, h: 2500, codec: 'j2k' },
    { label: '2048×2500 JPEG-LS lossless', w: 2048, h: 2500, codec: 'jpeg-ls' },
    { label: '2048×2500 JPEG lossless SV1', w: 2048, h: 2500, codec: 'jpeg-lossless' },
  ];
  // dcmtk encoders for the DICOM file, and the reference decoder for each compressed syntax.
  const dcmtkEncode: Partial<Record<Codec, string[]>> = { 'jpeg-ls': ['dcmcjpls', '+el'], 'jpeg-lossless': ['dcmcjpeg', '+e1'] };
  const reference: Partial<Record<Codec, string>> = { j2k: 'opj_decompress', 'jpeg-ls': 'dcmdjpls', 'jpeg-lossless': 'dcmdjpeg' };
  // Start-up of each reference tool alone (help/version output, no decoding), for reading the ratios.
  const startup: Record<string, number> = {};
  for (const [tool, args] of [['opj_decompress', ['-h']], ['dcmdjpls', ['--version']], ['dcmdjpeg', ['--version']]] as const) {
    const t: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      try { execFileSync(tool, [...args], { stdio: 'ignore' }); } catch { /* -h exits non-zero on some builds */ }
      t.push(performance.now() - t0);
    }
    startup[tool] = median(t);
  }
  for (const c of cases) {
    const spec: ImageSpec = { rows: c.h, columns: c.w, bitsAllocated: 16, bitsStored: 12, pixelRepresentation: 0, windows: [{ center: 2048, width: 4096 }] };
    const pixels = syntheticImage(c.w, c.h, 0, 4095, 42);
    let bytes: Uint8Array;
    let codestream: string | undefined;
    let dicomFile: string | undefined;
    if (c.codec === 'j2k') {
      codestream = j2kCodestream(pixels, c.w, c.h, 'case');
      bytes = writeDicom({ transferSyntaxUid: '1.2.840.10008.1.2.4.90', elements: imageElements(spec), encapsulated: encapsulatedPixelData([new Uint8Array(fs.readFileSync(codestream))]) });
    } else {
      bytes = writeDicom({ elements: imageElements(spec), pixelData: packPixels(pixels, 16, 12), bitsAllocated: 16 });
      const encoder = dcmtkEncode[c.codec];
      if (encoder) {
        const native = path.join(tmp, 'native.dcm');
        dicomFile = path.join(tmp, `${c.codec}.dcm`);
        fs.writeFileSync(native, bytes);
        execFileSync(encoder[0], [...encoder.slice(1), native, dicomFile], { stdio: 'ignore' });
        bytes = new Uint8Array(fs.readFileSync(dicomFile));
      }
    }
    const refTool = reference[c.codec];
    const modes = c.codec === 'j2k' ? [{ name: 'full', minLongSide: undefined }, { name: 'reduced', minLongSide: decodeLongSide(model.inputSize) }] : [{ name: 'full', minLongSide: undefined }];
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
        if (refTool) {
          const args = codestream
            ? ['-i', codestream, '-o', path.join(tmp, 'ref.pgm'), ...(mode.minLongSide ? ['-r', String(Math.log2(d.value.reduction))] : [])]
            : [dicomFile!, path.join(tmp, 'ref.dcm')];
          const t = performance.now();
          execFileSync(refTool, args, { stdio: 'ignore' });
          ref.push(performance.now() - t);
        }
      }
      const [dm, lm, im] = [median(decode), median(lbMs), median(infer)];
      const refMs = ref.length ? median(ref) : undefined;
      rows.push(`| ${c.label} | ${(bytes.length / 2 ** 20).toFixed(2)} MiB | ${mode.name} (${size}) | ${dm.toFixed(0)} | ${lm.toFixed(0)} | ${im.toFixed(0)} | ${(dm + lm + im).toFixed(0)} | ${refTool ?? '—'} | ${refMs === undefined ? '—' : refMs.toFixed(0)} | ${refMs === undefined ? '—' : `${(dm / refMs).toFixed(2)}×`} | ${refMs === undefined ? '—' : `${(dm / Math.max(1, refMs - startup[refTool!])).toFixed(2)}×`} |`);
      console.error(rows[rows.length - 1]);
    }
  }
  model.dispose();
  const lines = [
    '# Classify cost per image, by stage, on one core',
    '',
    `Command: \`npm run bench:classify-cost -- --runs ${runs}\``,
    `Machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}), Node ${process.version}, TF.js backend ${model.backend}, model ${model.name} ${model.version} (input ${model.inputSize}²); shared with other work while measured (load average 1/5/15 min ${os.loadavg().map((l) => l.toFixed(1)).join(' / ')} at the end). Date: ${new Date().toISOString().slice(0, 10)}.`,
    'One thread (no decode pool), medians of the runs, ms, ours and the reference interleaved run after run. Decode = parse + pixel decode + modality + VOI (the worker\'s decodeInstance). Reference decoders from Debian: opj_decompress (OpenJPEG 2.5) decodes the same codestream to PGM, reduced with -r at the same level as ours; dcmdjpls / dcmdjpeg (dcmtk 3.6.7) decode the same DICOM file to an uncompressed DICOM file. Their time is wall clock of the child process, so it includes process start-up and writing the output; the last column subtracts the start-up measured alone (' + Object.entries(startup).map(([t, ms]) => `${t} ${ms.toFixed(0)} ms`).join(', ') + ').',
    '',
    '| image | encoded size | decoded at | decode ms | letterbox ms | inference ms | total ms | reference | reference ms | ours / reference | ours / (reference − start-up) |',
    '|---|---:|---|---:|---:|---:|---:|---|---:|---:|---:|',
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
