/**
 * npm run bench:decode  (= tsx bench/decode.ts [--runs N])
 *
 * Generates a 2048x2500 16-bit (12 bits stored) synthetic radiograph, encodes it in every transfer
 * syntax the pipeline handles (dcmtk for all but JPEG 2000, opj_compress for JPEG 2000; a syntax
 * whose encoder is not installed is skipped), and reports the median decode (decodeInstance: pixels
 * + modality + VOI + presentation) and decode + letterbox(384) time over repeated runs.
 * Writes the table to docs/benchmarks/decode.md.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { encapsulatedPixelData, imageElements, packPixels, syntheticImage, writeDicom, type ImageSpec } from '../test/helpers/images.js';
import { decodeInstance, letterbox } from '../services/imaging/index.js';
import { median } from './stats.js';

const root = resolve(import.meta.dirname, '..');
const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 7;
const W = 2048;
const H = 2500;
const tmp = mkdtempSync(join(tmpdir(), 'bench-decode-'));

function have(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });

const spec12: ImageSpec = { rows: H, columns: W, bitsAllocated: 16, bitsStored: 12, pixelRepresentation: 0, windows: [{ center: 2048, width: 4096 }] };
const spec8: ImageSpec = { ...spec12, bitsAllocated: 8, bitsStored: 8, windows: [{ center: 128, width: 256 }] };
const pixels12 = syntheticImage(W, H, 0, 4095, 42);
const pixels8 = pixels12.map((v) => v >> 4);
const src12 = join(tmp, 'src12.dcm');
const src8 = join(tmp, 'src8.dcm');
writeFileSync(src12, writeDicom({ elements: imageElements(spec12), pixelData: packPixels(pixels12, 16, 12), bitsAllocated: 16 }));
writeFileSync(src8, writeDicom({ elements: imageElements(spec8), pixelData: packPixels(pixels8, 8, 8), bitsAllocated: 8 }));

interface Case {
  name: string;
  tool: string;
  make: (dst: string) => void;
}
const dcm = (tool: string, args: string[], src = src12) => (dst: string) => void run(tool, [...args, src, dst]);
const j2k = (args: string[]) => (dst: string) => {
  // opj_compress reads PGM: 16-bit big endian samples.
  const pgm = join(tmp, 'src.pgm');
  const header = Buffer.from(`P5\n${W} ${H}\n4095\n`, 'latin1');
  const body = Buffer.alloc(W * H * 2);
  for (let i = 0; i < pixels12.length; i++) body.writeUInt16BE(pixels12[i], 2 * i);
  writeFileSync(pgm, Buffer.concat([header, body]));
  const cs = join(tmp, 'out.j2k');
  run('opj_compress', ['-i', pgm, '-o', cs, ...args]);
  const ts = args.includes('-r') ? '1.2.840.10008.1.2.4.91' : '1.2.840.10008.1.2.4.90';
  writeFileSync(dst, writeDicom({ transferSyntaxUid: ts, elements: imageElements(spec12), encapsulated: encapsulatedPixelData([new Uint8Array(readFileSync(cs))]) }));
};

const cases: Case[] = [
  { name: 'Explicit VR Little Endian', tool: 'dcmconv', make: dcm('dcmconv', ['+te']) },
  { name: 'Implicit VR Little Endian', tool: 'dcmconv', make: dcm('dcmconv', ['+ti']) },
  { name: 'Explicit VR Big Endian', tool: 'dcmconv', make: dcm('dcmconv', ['+tb']) },
  { name: 'Deflated Explicit VR LE', tool: 'dcmconv', make: dcm('dcmconv', ['+td']) },
  { name: 'RLE Lossless', tool: 'dcmcrle', make: dcm('dcmcrle', []) },
  { name: 'JPEG Baseline 8-bit (8-bit version of the image)', tool: 'dcmcjpeg', make: dcm('dcmcjpeg', ['+eb', '+q', '90'], src8) },
  { name: 'JPEG Extended 12-bit', tool: 'dcmcjpeg', make: dcm('dcmcjpeg', ['+ee', '+q', '90']) },
  { name: 'JPEG Lossless SV1 (.70)', tool: 'dcmcjpeg', make: dcm('dcmcjpeg', ['+e1']) },
  { name: 'JPEG Lossless process 14, SV6 (.57)', tool: 'dcmcjpeg', make: dcm('dcmcjpeg', ['+el', '+sv', '6']) },
  { name: 'JPEG-LS Lossless', tool: 'dcmcjpls', make: dcm('dcmcjpls', ['+el']) },
  { name: 'JPEG-LS Near-Lossless (NEAR=2)', tool: 'dcmcjpls', make: dcm('dcmcjpls', ['+en', '+md', '2']) },
  { name: 'JPEG 2000 Lossless', tool: 'opj_compress', make: j2k([]) },
  { name: 'JPEG 2000 lossy (rate 10)', tool: 'opj_compress', make: j2k(['-r', '10']) },
];


const rows: string[] = [];
for (const c of cases) {
  if (!have(c.tool)) {
    console.log(`skip ${c.name}: ${c.tool} not installed`);
    rows.push(`| ${c.name} | skipped (${c.tool} not installed) | | | | |`);
    continue;
  }
  const file = join(tmp, 'case.dcm');
  c.make(file);
  const bytes = new Uint8Array(readFileSync(file));
  // Warm-up (WASM instantiation, JIT) and a check that lossless rows really decode to the source pixels.
  const first = await decodeInstance(bytes);
  const source = c.name.startsWith('JPEG Baseline') ? pixels8 : pixels12;
  let maxErr = 0;
  for (let i = 0; i < source.length; i++) maxErr = Math.max(maxErr, Math.abs(first.stored[i] - source[i]));
  const dec: number[] = [];
  const full: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    const img = await decodeInstance(bytes);
    const t1 = performance.now();
    letterbox(img.display, 384);
    const t2 = performance.now();
    dec.push(t1 - t0);
    full.push(t2 - t0);
  }
  const line = `| ${c.name} | ${(bytes.length / 2 ** 20).toFixed(2)} MiB | ${median(dec).toFixed(0)} | ${median(full).toFixed(0)} | ${Math.min(...dec).toFixed(0)} | ${maxErr} |`;
  console.log(line);
  rows.push(line);
}
rmSync(tmp, { recursive: true, force: true });

const cpu = cpus()[0]?.model ?? 'unknown CPU';
const doc = `# Decode benchmark

Command: \`npm run bench:decode\` (= \`tsx bench/decode.ts\`; \`-- --runs N\` to change the repeat count).

Image: ${W}x${H}, 16 bits allocated, 12 stored, MONOCHROME2, synthetic radiograph (soft-tissue gradient,
a bright bar, 3 % noise); the JPEG Baseline row uses an 8-bit version of it. Encoded with dcmtk
(dcmconv, dcmcrle, dcmcjpeg, dcmcjpls) and OpenJPEG's opj_compress for JPEG 2000; a syntax whose
encoder is missing at bench time is skipped.

Timed, after one warm-up decode, ${RUNS} runs each, in one thread of one Node process:
- **decode**: \`decodeInstance()\` = parse + pixel decode + modality LUT + VOI window + presentation, to Float32 display
- **+ letterbox**: the same plus \`letterbox(display, 384)\` (box-filter resize to the model input)
- **max abs error vs source**: decoded stored values against the generated pixels (0 = lossless)

Machine: ${cpus().length} cores (${cpu}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}.
A model-training job shared the 2 cores while this ran, so timings are noisy (the min column shows the spread).

| transfer syntax | encoded size | median decode (ms) | median decode + letterbox 384 (ms) | min decode (ms) | max abs error vs source |
|---|---|---|---|---|---|
${rows.join('\n')}

Notes
- For the lossy rows the last column is the encoder's loss, not decoder error: against dcmtk's own
  decode (dcmdjpeg, dcmdjpls) and OpenJPEG's opj_decompress the decoders agree exactly
  (test/imaging/syntaxes.test.ts, display.test.ts).
- JPEG 2000 uses the OpenJPEG WASM build (single thread); JPEG Extended 12-bit uses the built-in
  sequential DCT decoder (IJG islow IDCT), since the libjpeg-turbo WASM build is 8-bit only.
- Times are for one decode on one thread. In a service, decode through \`createDecodePool()\`
  (services/imaging/decode-pool.ts) so the event loop stays free; on 2 cores a pool of 1 leaves a
  core for the HTTP process.
`;
mkdirSync(join(root, 'docs/benchmarks'), { recursive: true });
writeFileSync(join(root, 'docs/benchmarks/decode.md'), doc);
console.log('wrote docs/benchmarks/decode.md');
