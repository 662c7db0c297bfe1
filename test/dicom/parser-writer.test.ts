/** The one writer and the one parser against each other, and the fragment-count bound. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { DEFLATED, DicomRejection, MAX_FRAGMENTS_PER_FRAME, Tag, inflatedPart10, encapsulate, readDicom, writePart10 } from '../../services/dicom/index.js';
import { dxImage, uid } from '../helpers/dicom.js';

const JPEG_LS = '1.2.840.10008.1.2.4.80';

function encapsulatedDx(pixels: { fragments: Uint8Array[]; basicOffsetTable: number[] }, frames: number) {
  const elements = dxImage({ studyUid: uid(), seriesUid: uid(), sopInstanceUid: uid(), rows: 8, columns: 8 });
  elements['00280008'] = { vr: 'IS', value: String(frames) };
  elements['7fe00010'] = { vr: 'OB', value: pixels };
  return writePart10(elements, { transferSyntaxUid: JPEG_LS });
}

describe('Part 10 writer and parser', () => {
  it('encapsulated frames come back with their basic offset table', async () => {
    const frames = [new Uint8Array([0xff, 0xd8, 1]), new Uint8Array([0xff, 0xd8, 2, 3])];
    const file = await readDicom(encapsulatedDx(encapsulate(frames), 2));
    const pixel = file.dataSet.elements[Tag.PixelData];
    expect(file.transferSyntaxUid).toBe(JPEG_LS);
    expect(pixel.basicOffsetTable).toEqual([0, 12]);
    expect(pixel.fragments!.map((f) => f.length)).toEqual([4, 4]);
  });

  it('sequences, implicit VR and the meta header are what dcmdump reads', (ctx) => {
    let hasDcmtk = true;
    try { execFileSync('dcmdump', ['--version'], { stdio: 'ignore' }); } catch { hasDcmtk = false; }
    if (!hasDcmtk) return ctx.skip();
    const elements = dxImage({ studyUid: '1.2.3', seriesUid: '1.2.4', sopInstanceUid: '1.2.5', rows: 2, columns: 2, extra: {
      '00400275': { vr: 'SQ', value: [{ '00401003': { vr: 'SH', value: 'STAT' } }] },
    } });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ft-writer-'));
    const file = path.join(dir, 'x.dcm');
    fs.writeFileSync(file, writePart10(elements, { transferSyntaxUid: '1.2.840.10008.1.2' }));
    const dump = execFileSync('dcmdump', ['+E', file]).toString();
    fs.rmSync(dir, { recursive: true, force: true });
    expect(dump).toMatch(/\(0002,0010\) UI =LittleEndianImplicit/);
    expect(dump).toMatch(/\(0040,1003\) SH \[STAT\]/);
    expect(dump).toMatch(/\(0002,0013\) SH \[FRACTURE_TRIAGE\]/);
  });

  it(`refuses more than ${MAX_FRAGMENTS_PER_FRAME} fragments per frame with 0xC000`, async () => {
    const fragments = Array.from({ length: MAX_FRAGMENTS_PER_FRAME + 1 }, () => new Uint8Array(2));
    const error = await readDicom(encapsulatedDx({ fragments, basicOffsetTable: [] }, 1)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DicomRejection);
    expect((error as DicomRejection).failureReason).toBe(0xc000);
    expect((error as DicomRejection).reason).toMatch(/too many fragments/);
    const fine = Array.from({ length: MAX_FRAGMENTS_PER_FRAME }, () => new Uint8Array(2));
    await expect(readDicom(encapsulatedDx({ fragments: fine, basicOffsetTable: [] }, 1))).resolves.toBeDefined();
  });

  it('reads Deflated files whatever their compressed bytes look like (200 different ones)', async () => {
    // dicom-parser's meta reader looked one element past group 0002, into the compressed bytes: about
    // 1 in 30 Deflated files looked like a sequence there and was refused as unreadable.
    for (let i = 0; i < 200; i++) {
      const sopInstanceUid = uid();
      const part10 = writePart10(dxImage({ studyUid: uid(), seriesUid: uid(), sopInstanceUid, rows: 256, columns: 256, pixels: new Uint16Array(256 * 256) }), { transferSyntaxUid: DEFLATED });
      const metaEnd = 144 + part10.readUInt32LE(140);
      const file = Buffer.concat([part10.subarray(0, metaEnd), deflateRawSync(part10.subarray(metaEnd))]);
      const { dataSet } = await readDicom(file);
      expect(dataSet.string(Tag.SOPInstanceUID)).toBe(sopInstanceUid);
      if (i === 0) {
        // What the viewer gets for it: the same data set, Explicit VR Little Endian, nothing lost.
        const plain = await readDicom(await inflatedPart10(file));
        expect(plain.transferSyntaxUid).toBe('1.2.840.10008.1.2.1');
        expect(plain.dataSet.string(Tag.SOPInstanceUID)).toBe(sopInstanceUid);
        expect(plain.dataSet.elements[Tag.PixelData].length).toBe(dataSet.elements[Tag.PixelData].length);
      }
    }
  });
});
