/**
 * Makes samples/: DX files from FracAtlas `val` images (fractured and not, several body parts,
 * several transfer syntaxes) plus the two real CR files from ../shared/dicom.
 *
 *   npm run samples:make            (needs ../shared and dcmtk: apt-get install dcmtk)
 *
 * Deterministic: the same inputs give the same files (UIDs derive from the image id).
 * FracAtlas is CC BY 4.0: every file carries the attribution in Image Comments (0020,4000),
 * and samples/README.md lists the source of each file. Patient names are synthetic.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import jpeg from 'jpeg-js';
import { dxImage, writeDicom } from '../test/helpers/dicom.js';

const root = path.resolve(import.meta.dirname, '..');
const shared = path.resolve(root, '../shared');
const atlas = path.join(shared, 'datasets/fracatlas');
const out = path.join(root, 'samples');

const ATTRIBUTION = 'Derived from FracAtlas (Abedeen et al., Sci Data 10:521, 2023, doi:10.1038/s41597-023-02432-4), CC BY 4.0; 8-bit JPEG rescaled to 12 bits';

/** [image id, transfer syntax to store it in] — fractured and not, across body parts. */
const PICKS: { fractured: 0 | 1; bodyPart: string; count: number }[] = [
  { fractured: 1, bodyPart: 'hand', count: 2 },
  { fractured: 1, bodyPart: 'leg', count: 2 },
  { fractured: 1, bodyPart: 'mixed', count: 1 },
  { fractured: 1, bodyPart: 'hip', count: 1 },
  { fractured: 0, bodyPart: 'hand', count: 2 },
  { fractured: 0, bodyPart: 'leg', count: 2 },
  { fractured: 0, bodyPart: 'shoulder', count: 1 },
  { fractured: 0, bodyPart: 'hip', count: 1 },
];

/** Rotated through the picks; each needs a dcmtk encoder except the native ones. */
const SYNTAXES: { name: string; uid: string; encode?: string[] }[] = [
  { name: 'explicit-le', uid: '1.2.840.10008.1.2.1' },
  { name: 'jpeg-lossless', uid: '1.2.840.10008.1.2.4.70', encode: ['dcmcjpeg', '+e1'] },
  { name: 'jpeg-ls', uid: '1.2.840.10008.1.2.4.80', encode: ['dcmcjpls', '+el'] },
  { name: 'rle', uid: '1.2.840.10008.1.2.5', encode: ['dcmcrle'] },
  { name: 'implicit-le', uid: '1.2.840.10008.1.2', encode: ['dcmconv', '+ti'] },
  { name: 'deflated', uid: '1.2.840.10008.1.2.1.99', encode: ['dcmconv', '+td'] },
];

const BODY_PART_TAG: Record<string, string> = { hand: 'HAND', leg: 'LEG', hip: 'HIP', shoulder: 'SHOULDER', mixed: 'EXTREMITY' };

/** A UID from a stable hash, under a root reserved for this project's samples. */
function stableUid(...parts: string[]): string {
  const digits = BigInt('0x' + createHash('sha256').update(parts.join('/')).digest('hex').slice(0, 24)).toString();
  return `2.25.${digits}`.slice(0, 64);
}

function main() {
  if (!fs.existsSync(atlas)) throw new Error(`FracAtlas not found at ${atlas}`);
  const [header, ...lines] = fs.readFileSync(path.join(atlas, 'labels.csv'), 'utf8').trim().split(/\r?\n/);
  const cols = header.split(',');
  const rows = lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [cols[i], v])));
  const val = rows.filter((r) => r.split === 'val' && r.source_truncated === '0' && r.multiscan === '0');

  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(path.join(out, 'fracatlas'), { recursive: true });
  fs.mkdirSync(path.join(out, 'real-cr'), { recursive: true });
  const manifest: string[] = ['file,source_image,fractured,body_part,transfer_syntax,boxes_yolo'];
  let n = 0;
  for (const pick of PICKS) {
    const chosen = val.filter((r) => Number(r.fractured) === pick.fractured && r.body_part === pick.bodyPart).slice(0, pick.count);
    for (const r of chosen) {
      const syntax = SYNTAXES[n % SYNTAXES.length];
      const decoded = jpeg.decode(fs.readFileSync(path.join(atlas, 'images', r.image_id)), { useTArray: true, formatAsRGBA: true });
      const pixels = new Uint16Array(decoded.width * decoded.height);
      for (let i = 0; i < pixels.length; i++) pixels[i] = decoded.data[i * 4] * 16; // 8 → 12 bits stored
      const id = r.image_id.replace(/\.jpg$/, '');
      n++;
      const file = `fracatlas/${String(n).padStart(2, '0')}-${pick.bodyPart}-${pick.fractured ? 'fractured' : 'no-fracture'}-${syntax.name}.dcm`;
      const elements = dxImage({
        studyUid: stableUid('study', id), seriesUid: stableUid('series', id), sopInstanceUid: stableUid('instance', id),
        rows: decoded.height, columns: decoded.width, bitsStored: 12, pixels,
        patientName: `SAMPLE^PATIENT${String(n).padStart(2, '0')}`, patientId: `SAMPLE-${String(n).padStart(4, '0')}`,
        accession: `SAMPLEACC${String(n).padStart(3, '0')}`, bodyPart: BODY_PART_TAG[pick.bodyPart],
        extra: {
          '00204000': { vr: 'LT', value: ATTRIBUTION },
          '00081030': { vr: 'LO', value: `XR ${pick.bodyPart.toUpperCase()} (sample)` },
          '00281050': { vr: 'DS', value: '2048' },
          '00281051': { vr: 'DS', value: '4096' },
        },
      });
      const target = path.join(out, file);
      fs.writeFileSync(target, writeDicom(elements));
      if (syntax.encode) {
        const [tool, ...args] = syntax.encode;
        const tmp = `${target}.tmp`;
        execFileSync(tool, [...args, target, tmp]);
        fs.renameSync(tmp, target);
      }
      manifest.push([file, r.image_id, r.fractured, r.body_part, syntax.uid, r.boxes_yolo ?? ''].join(','));
    }
  }
  for (const f of fs.readdirSync(path.join(shared, 'dicom')).filter((f) => f.endsWith('.dcm'))) {
    fs.copyFileSync(path.join(shared, 'dicom', f), path.join(out, 'real-cr', f));
    fs.chmodSync(path.join(out, 'real-cr', f), 0o644);
    manifest.push([`real-cr/${f}`, f, '', '', '', ''].join(','));
  }
  fs.writeFileSync(path.join(out, 'manifest.csv'), manifest.join('\n') + '\n');
  console.log(`wrote ${n} FracAtlas DX files and the real CR files to ${out}`);
}

main();
