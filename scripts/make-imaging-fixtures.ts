/**
 * Makes the imaging test fixtures with dcmtk (and OpenJPEG's opj_decompress for JPEG 2000), and
 * records what the independent decoders produce, so the tests need neither tool installed.
 *
 *   (needs: dcmtk; libopenjp2-tools for opj_decompress; libjpeg-turbo-progs for cjpeg/djpeg;
 *    ../shared/dicom for the J2K references)
 *   npx tsx scripts/make-imaging-fixtures.ts
 *
 * Output: test/fixtures/imaging/*.dcm, *.ref.bin (dcmtk's decode of lossy fixtures, Int32 LE),
 * *.dcmtk.pgm (dcmtk's 8-bit rendering) and expected.json (sha256 of dcmtk-decoded stored values,
 * Int32 little endian per pixel, per frame).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import dicomParser from 'dicom-parser';
import {
  imageElements,
  packPixels,
  syntheticImage,
  writeDicom,
  type DicomElement,
  type ImageSpec,
} from '../test/helpers/images.js';

const root = resolve(import.meta.dirname, '..');
const outDir = join(root, 'test/fixtures/imaging');
const sharedDir = resolve(root, '../shared/dicom');
mkdirSync(outDir, { recursive: true });
const tmp = mkdtempSync(join(tmpdir(), 'imaging-fixtures-'));

const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

// ---------- sources ----------
interface Source {
  name: string;
  spec: ImageSpec;
  frames: Int32Array[];
  /** dcmj2pnm options for a reference rendering, if this source checks the LUT chain. */
  render?: string[];
}

function lutItem(entries: number, first: number, bits: number, data: number[], explanation: string): DicomElement[] {
  const bytes = new Uint8Array(entries * 2);
  data.forEach((v, i) => new DataView(bytes.buffer).setUint16(2 * i, v, true));
  return [
    { tag: 0x00283002, vr: 'US', value: [entries, first, bits] },
    { tag: 0x00283003, vr: 'LO', value: explanation },
    { tag: 0x00283006, vr: 'OW', value: bytes },
  ];
}

const b12 = (c: number, r: number, seed: number, boneBright = true) => syntheticImage(c, r, 0, 4095, seed, boneBright);
const gammaLut = Array.from({ length: 4096 }, (_, i) => Math.round(65535 * Math.pow(i / 4095, 0.6)));
const sqrtMod = Array.from({ length: 4096 }, (_, i) => Math.round(64 * Math.sqrt(i * 16)));

const sources: Source[] = [
  {
    name: 'u16b12_mono2',
    spec: { rows: 73, columns: 97, bitsAllocated: 16, bitsStored: 12, pixelRepresentation: 0, rescaleSlope: 1, rescaleIntercept: -1024, windows: [{ center: 900, width: 2400 }, { center: -300, width: 600 }] },
    frames: [b12(97, 73, 11)],
    render: ['+Wi', '1'],
  },
  {
    name: 'u16b12_mono1',
    spec: { rows: 73, columns: 97, bitsAllocated: 16, bitsStored: 12, pixelRepresentation: 0, photometric: 'MONOCHROME1', windows: [{ center: 2048, width: 3000 }] },
    frames: [b12(97, 73, 12, false)],
    render: ['+Wi', '1'],
  },
  {
    name: 's16_slope',
    spec: { rows: 51, columns: 64, bitsAllocated: 16, bitsStored: 16, pixelRepresentation: 1, rescaleSlope: 0.5, rescaleIntercept: -100, windows: [{ center: 0, width: 3000 }] },
    frames: [syntheticImage(64, 51, -3000, 3000, 13)],
    render: ['+Wi', '1'],
  },
  {
    name: 'u8_mono2',
    spec: { rows: 47, columns: 63, bitsAllocated: 8, bitsStored: 8, pixelRepresentation: 0, windows: [{ center: 128, width: 256 }] },
    frames: [syntheticImage(63, 47, 0, 255, 14)],
  },
  {
    name: 'u16b12_3frames',
    spec: { rows: 37, columns: 41, frames: 3, bitsAllocated: 16, bitsStored: 12, pixelRepresentation: 0 },
    frames: [b12(41, 37, 21), b12(41, 37, 22).map((v) => v >> 1), b12(41, 37, 23).map((v) => 4095 - v)],
  },
  {
    name: 'u16b16',
    spec: { rows: 39, columns: 45, bitsAllocated: 16, bitsStored: 16, pixelRepresentation: 0 },
    frames: [syntheticImage(45, 39, 0, 65535, 15)],
  },
  {
    name: 'u16b12_voilut',
    spec: { rows: 33, columns: 35, bitsAllocated: 16, bitsStored: 12, pixelRepresentation: 0, extra: [{ tag: 0x00283010, vr: 'SQ', value: [lutItem(4096, 0, 16, gammaLut, 'GAMMA 0.6')] }] },
    frames: [b12(35, 33, 31)],
    render: ['+Wl', '1'],
  },
  {
    name: 'u16b12_modlut',
    spec: {
      rows: 33, columns: 35, bitsAllocated: 16, bitsStored: 12, pixelRepresentation: 0, windows: [{ center: 4000, width: 6000 }],
      extra: [{ tag: 0x00283000, vr: 'SQ', value: [[...lutItem(4096, 0, 16, sqrtMod, 'SQRT'), { tag: 0x00281054, vr: 'LO', value: 'US' }]] }],
    },
    frames: [b12(35, 33, 32)],
    render: ['+Wi', '1'],
  },
  {
    // bits stored 12 under high bit 15 (data in the top bits): native and RLE only
    name: 'u16b12_hb15',
    spec: { rows: 29, columns: 31, bitsAllocated: 16, bitsStored: 12, highBit: 15, pixelRepresentation: 0, windows: [{ center: 2048, width: 4096 }] },
    frames: [b12(31, 29, 34)],
    render: ['+Wi', '1'],
  },
  {
    name: 'u8_mono1_signed',
    spec: { rows: 27, columns: 25, bitsAllocated: 8, bitsStored: 8, pixelRepresentation: 1, photometric: 'MONOCHROME1', windows: [{ center: 0, width: 200 }] },
    frames: [syntheticImage(25, 27, -100, 100, 35, false)],
    render: ['+Wi', '1'],
  },
  {
    // DX style: MONOCHROME1 with Presentation LUT Shape INVERSE means one inversion (dcmtk agrees)
    name: 'u16b12_mono1_inverse',
    spec: { rows: 29, columns: 31, bitsAllocated: 16, bitsStored: 12, pixelRepresentation: 0, photometric: 'MONOCHROME1', presentationLutShape: 'INVERSE', windows: [{ center: 2048, width: 4096 }] },
    frames: [b12(31, 29, 36, false)],
    render: ['+Wi', '1'],
  },
  {
    name: 'u16b12_inverse',
    spec: { rows: 33, columns: 35, bitsAllocated: 16, bitsStored: 12, pixelRepresentation: 0, presentationLutShape: 'INVERSE', windows: [{ center: 2048, width: 4096 }] },
    frames: [b12(35, 33, 33, false)],
    render: ['+Wi', '1'],
  },
];

// ---------- encodings ----------
interface Encoding {
  id: string;
  ts: string;
  lossless: boolean;
  encode: (src: string, dst: string) => void;
  decode: (src: string, dst: string) => void;
  applies: (s: Source) => boolean;
}
const all = () => true;
const lowBits = (s: Source) => s.spec.highBit === undefined || s.spec.highBit === s.spec.bitsStored - 1;
const conv = (flag: string) => (src: string, dst: string) => void run('dcmconv', [flag, src, dst]);
const toLE = conv('+te');
const encodings: Encoding[] = [
  { id: 'explicit-le', ts: '1.2.840.10008.1.2.1', lossless: true, encode: conv('+te'), decode: toLE, applies: all },
  { id: 'implicit-le', ts: '1.2.840.10008.1.2', lossless: true, encode: conv('+ti'), decode: toLE, applies: all },
  { id: 'explicit-be', ts: '1.2.840.10008.1.2.2', lossless: true, encode: conv('+tb'), decode: toLE, applies: all },
  { id: 'deflated', ts: '1.2.840.10008.1.2.1.99', lossless: true, encode: conv('+td'), decode: toLE, applies: all },
  { id: 'rle', ts: '1.2.840.10008.1.2.5', lossless: true, encode: (s, d) => void run('dcmcrle', [s, d]), decode: (s, d) => void run('dcmdrle', [s, d]), applies: all },
  // below: JPEG family, for data in the low bits only (dcmtk's JPEG encoders need high bit = bits stored - 1)
  { id: 'jpeg-baseline', ts: '1.2.840.10008.1.2.4.50', lossless: false, encode: (s, d) => void run('dcmcjpeg', ['+eb', '+q', '90', s, d]), decode: (s, d) => void run('dcmdjpeg', [s, d]), applies: (s) => lowBits(s) && s.spec.bitsAllocated === 8 && s.spec.pixelRepresentation === 0 },
  { id: 'jpeg-extended-12', ts: '1.2.840.10008.1.2.4.51', lossless: false, encode: (s, d) => void run('dcmcjpeg', ['+ee', '+q', '90', s, d]), decode: (s, d) => void run('dcmdjpeg', [s, d]), applies: (s) => lowBits(s) && s.spec.bitsStored > 8 && s.spec.bitsStored <= 12 },
  { id: 'jpeg-lossless-sv1', ts: '1.2.840.10008.1.2.4.70', lossless: true, encode: (s, d) => void run('dcmcjpeg', ['+e1', s, d]), decode: (s, d) => void run('dcmdjpeg', [s, d]), applies: lowBits },
  { id: 'jpeg-lossless-sv6', ts: '1.2.840.10008.1.2.4.57', lossless: true, encode: (s, d) => void run('dcmcjpeg', ['+el', '+sv', '6', s, d]), decode: (s, d) => void run('dcmdjpeg', [s, d]), applies: lowBits },
  { id: 'jpeg-ls-lossless', ts: '1.2.840.10008.1.2.4.80', lossless: true, encode: (s, d) => void run('dcmcjpls', ['+el', s, d]), decode: (s, d) => void run('dcmdjpls', [s, d]), applies: lowBits },
  { id: 'jpeg-ls-near', ts: '1.2.840.10008.1.2.4.81', lossless: false, encode: (s, d) => void run('dcmcjpls', ['+en', '+md', '2', s, d]), decode: (s, d) => void run('dcmdjpls', [s, d]), applies: (s) => lowBits(s) && s.spec.pixelRepresentation === 0 },
];

// ---------- reference extraction (dcmtk-decoded Explicit VR LE, independent of the service code) ----------
function storedFrames(file: string): { frames: Int32Array[]; tsInFile: string } {
  const bytes = new Uint8Array(readFileSync(file));
  const ds = dicomParser.parseDicom(bytes);
  const rows = ds.uint16('x00280010')!;
  const cols = ds.uint16('x00280011')!;
  const nFrames = parseInt(ds.string('x00280008') ?? '1', 10) || 1;
  const ba = ds.uint16('x00280100')!;
  const bs = ds.uint16('x00280101')!;
  const hb = ds.uint16('x00280102')!;
  const signed = ds.uint16('x00280103') === 1;
  const el = ds.elements.x7fe00010;
  const n = rows * cols;
  const frames: Int32Array[] = [];
  for (let f = 0; f < nFrames; f++) {
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const p = el.dataOffset + (f * n + i) * (ba / 8);
      let w = ba === 8 ? bytes[p] : bytes[p] | (bytes[p + 1] << 8);
      w = (w >> (hb + 1 - bs)) & ((1 << bs) - 1);
      out[i] = signed && w >= 1 << (bs - 1) ? w - (1 << bs) : w;
    }
    frames.push(out);
  }
  return { frames, tsInFile: ds.string('x00020010') ?? '' };
}

const sha = (a: Int32Array) => createHash('sha256').update(Buffer.from(a.buffer, a.byteOffset, a.byteLength)).digest('hex');

/** One entry of test/fixtures/imaging/expected.json (test/imaging/helpers.ts reads it with this type). */
export interface FixtureRecord {
  file: string;
  source: string;
  encoding: string;
  transferSyntax: string;
  lossless: boolean;
  frames: number;
  referenceDecoder: string;
  sha256: string[];
  /** For lossy fixtures: dcmtk's decoded stored values (Int32 LE, all frames). */
  refFile?: string;
  /** Largest difference between dcmtk's decode and the original synthetic values. */
  maxErrorVsOriginal: number;
}

const fixtures: FixtureRecord[] = [];
const renders: Record<string, { file: string; options: string[] }> = {};
const dcmtkVersion = run('dcmconv', ['--version']).split('\n')[0];

for (const s of sources) {
  const srcFile = join(tmp, `${s.name}.src.dcm`);
  const all = new Int32Array(s.frames.reduce((t, f) => t + f.length, 0));
  s.frames.forEach((f, i) => all.set(f, i * f.length));
  writeFileSync(
    srcFile,
    writeDicom({ elements: imageElements(s.spec), pixelData: packPixels(all, s.spec.bitsAllocated, s.spec.bitsStored, s.spec.highBit), bitsAllocated: s.spec.bitsAllocated }),
  );
  if (s.render) {
    const pgm = `${s.name}.dcmtk.pgm`;
    run('dcmj2pnm', [...s.render, '+op', srcFile, join(outDir, pgm)]);
    renders[s.name] = { file: pgm, options: s.render };
  }
  for (const e of encodings) {
    if (!e.applies(s)) continue;
    const file = `${s.name}.${e.id}.dcm`;
    const enc = join(outDir, file);
    e.encode(srcFile, enc);
    const dec = join(tmp, `${s.name}.${e.id}.decoded.dcm`);
    e.decode(enc, dec);
    const { frames } = storedFrames(dec);
    let maxErr = 0;
    frames.forEach((f, k) => f.forEach((v, i) => (maxErr = Math.max(maxErr, Math.abs(v - s.frames[k][i])))));
    if (e.lossless && maxErr !== 0) throw new Error(`${file}: dcmtk lossless round trip differs from the source by ${maxErr}`);
    const rec: FixtureRecord = {
      file,
      source: s.name,
      encoding: e.id,
      transferSyntax: e.ts,
      lossless: e.lossless,
      frames: frames.length,
      referenceDecoder: e.decode === toLE ? 'dcmconv +te' : e.id.startsWith('jpeg-ls') ? 'dcmdjpls' : e.id === 'rle' ? 'dcmdrle' : 'dcmdjpeg',
      sha256: frames.map(sha),
      maxErrorVsOriginal: maxErr,
    };
    if (!e.lossless) {
      const ref = new Int32Array(frames.reduce((t, f) => t + f.length, 0));
      frames.forEach((f, i) => ref.set(f, i * f.length));
      rec.refFile = `${s.name}.${e.id}.ref.bin`;
      writeFileSync(join(outDir, rec.refFile), Buffer.from(ref.buffer));
    }
    fixtures.push(rec);
  }
}

// ---------- restart markers in the built-in DCT decoder: cjpeg -restart / djpeg -dct int (libjpeg-turbo-progs) ----------
const restart: { file: string; reference: string; tool: string }[] = [];
if (hasTool('cjpeg') && hasTool('djpeg')) {
  const w = 61;
  const h = 45;
  const px = syntheticImage(w, h, 0, 255, 41);
  const pgm = join(tmp, 'rst.pgm');
  writeFileSync(pgm, Buffer.concat([Buffer.from(`P5\n${w} ${h}\n255\n`, 'latin1'), Buffer.from(Uint8Array.from(px))]));
  const jpg = join(outDir, 'restart.cjpeg.jpg');
  writeFileSync(jpg, execFileSync('cjpeg', ['-grayscale', '-quality', '85', '-restart', '3B', pgm]));
  writeFileSync(join(outDir, 'restart.djpeg.pgm'), execFileSync('djpeg', ['-pnm', '-dct', 'int', jpg]));
  restart.push({ file: 'restart.cjpeg.jpg', reference: 'restart.djpeg.pgm', tool: 'cjpeg -restart 3B, djpeg -dct int (libjpeg-turbo)' });
} else {
  console.warn('skip restart-marker fixture: cjpeg/djpeg (libjpeg-turbo-progs) not installed');
}

function hasTool(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

// ---------- JPEG 2000: the real CR files in ../shared/dicom, referenced by OpenJPEG's opj_decompress ----------
interface J2kRecord {
  file: string;
  transferSyntax: string;
  referenceDecoder: string;
  sha256: string;
  width: number;
  height: number;
  /** dcmtk's 8-bit rendering (dcmj2pnm +Wi 1 on the opj-decoded pixels re-wrapped with the file's header), 32x32 block means. */
  renderBlocks: { grid: number; means: number[] };
}
const j2k: J2kRecord[] = [];
for (const name of ['RG3_J2KR.dcm', 'RG1_J2KI.dcm']) {
  const path = join(sharedDir, name);
  if (!existsSync(path)) {
    console.warn(`skip ${name}: ${sharedDir} not present`);
    continue;
  }
  const bytes = new Uint8Array(readFileSync(path));
  const ds = dicomParser.parseDicom(bytes);
  const el = ds.elements.x7fe00010;
  const code = dicomParser.readEncapsulatedPixelDataFromFragments(ds, el, 0, el.fragments!.length);
  const j2kFile = join(tmp, `${name}.j2k`);
  writeFileSync(j2kFile, code);
  const pgm = join(tmp, `${name}.pgm`);
  run('opj_decompress', ['-i', j2kFile, '-o', pgm]);
  const { width, height, values } = readPgm(readFileSync(pgm));
  const bs = ds.uint16('x00280101')!;
  const stored = Int32Array.from(values, (v) => v & ((1 << bs) - 1));
  // dcmtk rendering of the same pixels with the file's own header: proves display polarity (MONOCHROME1).
  const spec: ImageSpec = {
    rows: height,
    columns: width,
    bitsAllocated: 16,
    bitsStored: bs,
    pixelRepresentation: 0,
    photometric: ds.string('x00280004') as 'MONOCHROME1',
    windows: [{ center: parseFloat(ds.string('x00281050')!), width: parseFloat(ds.string('x00281051')!) }],
  };
  const raw = join(tmp, `${name}.native.dcm`);
  writeFileSync(raw, writeDicom({ elements: imageElements(spec), pixelData: packPixels(stored, 16, bs), bitsAllocated: 16 }));
  const renderPgm = join(tmp, `${name}.render.pgm`);
  run('dcmj2pnm', ['+Wi', '1', '+op', raw, renderPgm]);
  const r = readPgm(readFileSync(renderPgm));
  j2k.push({
    file: name,
    transferSyntax: ds.string('x00020010')!,
    referenceDecoder: opjVersion(),
    sha256: sha(stored),
    width,
    height,
    renderBlocks: { grid: 32, means: blockMeans(r.values, r.width, r.height, 32) },
  });
}

function opjVersion(): string {
  let text = '';
  try {
    text = run('opj_decompress', ['-h']);
  } catch (e) {
    text = String((e as { stdout?: Buffer }).stdout ?? '');
  }
  return `opj_decompress (${text.match(/openjp2 library v[\d.]+/)?.[0] ?? 'openjp2'})`;
}

function readPgm(buf: Buffer): { width: number; height: number; values: Int32Array } {
  const header: string[] = [];
  let pos = 0;
  while (header.length < 4) {
    while (/\s/.test(String.fromCharCode(buf[pos]))) pos++;
    if (buf[pos] === 0x23) {
      while (buf[pos] !== 0x0a) pos++;
      continue;
    }
    let tok = '';
    while (!/\s/.test(String.fromCharCode(buf[pos]))) tok += String.fromCharCode(buf[pos++]);
    header.push(tok);
  }
  pos++;
  const [magic, w, h, max] = header;
  if (magic !== 'P5') throw new Error(`not a binary PGM: ${magic}`);
  const width = +w;
  const height = +h;
  const values = new Int32Array(width * height);
  for (let i = 0; i < values.length; i++) values[i] = +max > 255 ? (buf[pos + 2 * i] << 8) | buf[pos + 2 * i + 1] : buf[pos + i];
  return { width, height, values };
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
  return Array.from(sums, (s, k) => Math.round((s / counts[k]) * 100) / 100);
}

writeFileSync(
  join(outDir, 'expected.json'),
  JSON.stringify(
    {
      generatedBy: 'scripts/make-imaging-fixtures.ts',
      dcmtk: dcmtkVersion,
      checksum: 'sha256 of the stored pixel values (masked to bits stored, sign-extended) as Int32 little endian, per frame',
      fixtures,
      renders,
      restart,
      j2k,
    },
    null,
    1,
  ) + '\n',
);
rmSync(tmp, { recursive: true, force: true });
console.log(`${fixtures.length} fixtures, ${j2k.length} JPEG 2000 references written to ${outDir}`);
