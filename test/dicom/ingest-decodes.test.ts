/**
 * What ingest accepts, the worker can read: every variant the upload accepts (each transfer
 * syntax, bare data sets without the 128-byte preamble in implicit and explicit VR LE, big endian,
 * deflated) is read by ingest's parseInstance and then decoded by the worker's decode pool.
 * Variants come from the committed samples and from dcmtk (dcmconv, dcmcjpeg, dcmcjpls, dcmcrle).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SUPPORTED_TRANSFER_SYNTAXES, hasPart10Preamble, parseInstance } from '../../services/dicom/index.js';
import { createDecodePool } from '../../services/imaging/decode-pool.js';
import { makeDx } from '../helpers/dicom.js';

const samples = path.resolve(import.meta.dirname, '../../samples');
const hasDcmtk = (() => {
  try {
    execFileSync('dcmconv', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
if (!hasDcmtk) console.warn('dcmtk is not installed: the dcmtk-made variants are skipped (apt-get install dcmtk)');

/** Strips the preamble and meta header: the bare data set old archives hold. */
function bare(part10: Uint8Array): Buffer {
  const buf = Buffer.from(part10);
  const metaEnd = 132 + 12 + buf.readUInt32LE(140);
  return buf.subarray(metaEnd);
}

function variants(): { name: string; bytes: Buffer }[] {
  const out: { name: string; bytes: Buffer }[] = [];
  for (const dir of ['fracatlas', 'real-cr']) {
    for (const file of fs.readdirSync(path.join(samples, dir)).sort()) out.push({ name: file, bytes: fs.readFileSync(path.join(samples, dir, file)) });
  }
  out.push({ name: 'bare explicit VR LE (makeDx)', bytes: makeDx({ rows: 40, columns: 48, write: { bare: true } }).bytes });
  out.push({ name: 'bare implicit VR LE (makeDx)', bytes: makeDx({ rows: 40, columns: 48, write: { bare: true, transferSyntaxUid: '1.2.840.10008.1.2' } }).bytes });
  out.push({ name: 'bare implicit VR LE (sample)', bytes: bare(fs.readFileSync(path.join(samples, 'fracatlas/05-mixed-fractured-implicit-le.dcm'))) });
  if (!hasDcmtk) return out;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ft-variants-'));
  const source = path.join(tmp, 'source.dcm');
  fs.writeFileSync(source, makeDx({ rows: 64, columns: 80 }).bytes);
  const eight = path.join(tmp, 'eight.dcm');
  fs.writeFileSync(eight, makeDx({
    rows: 64, columns: 80,
    extra: {
      '00280100': { vr: 'US', value: 8 }, '00280101': { vr: 'US', value: 8 }, '00280102': { vr: 'US', value: 7 },
      '7fe00010': { vr: 'OB', value: Uint8Array.from({ length: 64 * 80 }, (_, i) => (i * 13) & 0xff) },
    },
  }).bytes);
  const made: [string, string, string[]][] = [
    ['big endian', 'dcmconv', ['+tb', source]],
    ['deflated', 'dcmconv', ['+td', source]],
    ['JPEG baseline', 'dcmcjpeg', ['+eb', eight]],
    ['JPEG extended', 'dcmcjpeg', ['+ee', source]],
    ['JPEG lossless process 14', 'dcmcjpeg', ['+el', source]],
    ['JPEG lossless SV1', 'dcmcjpeg', ['+e1', source]],
    ['JPEG-LS lossless', 'dcmcjpls', ['+el', source]],
    ['JPEG-LS near-lossless', 'dcmcjpls', ['+en', source]],
    ['RLE', 'dcmcrle', [source]],
  ];
  for (const [name, tool, args] of made) {
    const target = path.join(tmp, `${name.replace(/\W+/g, '-')}.dcm`);
    execFileSync(tool, [...args, target], { stdio: 'pipe' });
    out.push({ name, bytes: fs.readFileSync(target) });
  }
  const bareBigEndian = path.join(tmp, 'be.dcm');
  execFileSync('dcmconv', ['+tb', '-F', source, bareBigEndian], { stdio: 'pipe' });
  out.push({ name: 'bare explicit VR big endian', bytes: fs.readFileSync(bareBigEndian) });
  fs.rmSync(tmp, { recursive: true, force: true });
  return out;
}

describe('every variant the upload accepts decodes in the worker', () => {
  const all = variants();
  const pool = createDecodePool(1, { transfer: false });
  afterAll(() => pool.close());
  const seen = new Set<string>();

  it.each(all.map((v) => [v.name, v.bytes] as const))('%s', async (_name, bytes) => {
    const meta = await parseInstance(bytes);
    seen.add(meta.transferSyntaxUid);
    const image = await pool.decode(bytes);
    expect([image.width, image.height]).toEqual([meta.columns, meta.rows]);
    expect(image.transferSyntaxUid).toBe(meta.transferSyntaxUid);
    expect(image.display.data.some((v) => v > 0)).toBe(true);
  });

  it.skipIf(!hasDcmtk)('covered every transfer syntax in the table, and bare data sets', () => {
    expect([...seen].sort()).toEqual(SUPPORTED_TRANSFER_SYNTAXES.map((t) => t.uid).sort());
    expect(all.filter((v) => !hasPart10Preamble(v.bytes)).length).toBeGreaterThanOrEqual(3);
  });
});
