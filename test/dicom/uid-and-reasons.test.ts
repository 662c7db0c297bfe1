/** UID syntax (PS3.5 §9.1), the Error Comment rule for every reason, and the YBR_FULL_422 size rule. */
import { describe, expect, it } from 'vitest';
import {
  DicomRejection, MAX_ERROR_COMMENT, Reason, isImageStorage, isNonImageStorage, isValidUid, nativePixelDataBytes, parseInstance, quotable,
  type RequiredAttribute,
} from '../../services/dicom/index.js';
import { makeDx } from '../helpers/dicom.js';

describe('UID validation (PS3.5 §9.1)', () => {
  it.each([
    '1.2.840.10008.1.2.1', '0', '2.25.329800735698586629295641978511506172918', '1.0.3', `1.${'2'.repeat(62)}`, '1.2.3\0',
  ])('accepts %j', (uid) => expect(isValidUid(uid)).toBe(true));

  it.each([
    ['empty', ''], ['a dot', '.'], ['two dots', '..'], ['an empty component', '1..2'], ['a leading dot', '.1.2'], ['a trailing dot', '1.2.'],
    ['a leading zero', '1.02.3'], ['letters', '1.2.a'], ['a space', '1.2 .3'], ['a NUL inside (a cut value)', '1.2\0.3'],
    ['65 characters', `1.${'2'.repeat(63)}`], ['a sign', '1.-2'],
  ])('refuses %s', (_what, uid) => expect(isValidUid(uid)).toBe(false));

  it('ingest refuses a dot, two dots and a NUL-cut UID with 0xC000 and names the attribute', async () => {
    for (const bad of ['.', '..', '1..2', '1.2\0.3']) {
      const dx = makeDx({ extra: { '0020000d': { vr: 'UI', value: bad } } });
      const error = await parseInstance(dx.bytes).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DicomRejection);
      expect((error as DicomRejection).failureReason).toBe(0xc000);
      expect((error as DicomRejection).reason).toMatch(/invalid Study Instance UID/);
    }
  });
});

describe('Error Comments', () => {
  const attributes: RequiredAttribute[] = ['SOP Class UID', 'SOP Instance UID', 'Study Instance UID', 'Series Instance UID'];
  const every = Object.values(Reason).flatMap((r) => (typeof r === 'function' ? attributes.map((a) => r(a)) : [r]));
  it.each(every)('%j fits LO (64 characters) and is plain words', (text) => {
    expect(text.length).toBeLessThanOrEqual(MAX_ERROR_COMMENT);
    expect(text).toMatch(/^[A-Za-z][A-Za-z0-9 ,:.'()-]*$/);
    expect(text).not.toMatch(/dicomParser|exception|undefined|x[0-9a-f]{8}|Error|stack/);
  });

  it('every refusal of a broken file carries one of them', async () => {
    const good = makeDx().bytes;
    const inputs = [good.subarray(0, good.length - 100), Buffer.from('%PDF-1.4'.repeat(40)), good.subarray(0, 300), Buffer.alloc(2000, 0x08)];
    for (const bytes of inputs) {
      const error = await parseInstance(bytes).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DicomRejection);
      expect(every).toContain((error as DicomRejection).reason);
    }
  });

  it('DICOM strings are quoted only when they look like a defined term', () => {
    expect(quotable('MONOCHROME2')).toBe('MONOCHROME2');
    expect(quotable('YBR_FULL_422')).toBe('YBR_FULL_422');
    expect(quotable('DOE^JOHN')).toBe('(unrecognised value)');
    expect(quotable('RGB\nlevel=fatal')).toBe('(unrecognised value)');
    expect(quotable('A'.repeat(200))).toBe('(unrecognised value)');
  });
});

describe('sizes and classes', () => {
  it('YBR_FULL_422 needs two samples per pixel, RGB three', () => {
    const image = { rows: 10, columns: 20, samplesPerPixel: 3, bitsAllocated: 8, frames: 1 };
    expect(nativePixelDataBytes({ ...image, photometricInterpretation: 'YBR_FULL_422' })).toBe(400);
    expect(nativePixelDataBytes({ ...image, photometricInterpretation: 'RGB' })).toBe(600);
  });

  it('ingest accepts a YBR_FULL_422 image whose Pixel Data is 4:2:2 sized', async () => {
    const rows = 16;
    const columns = 16;
    const dx = makeDx({
      rows, columns,
      extra: {
        '00080016': { vr: 'UI', value: '1.2.840.10008.5.1.4.1.1.7' },
        '00280002': { vr: 'US', value: 3 },
        '00280004': { vr: 'CS', value: 'YBR_FULL_422' },
        '00280006': { vr: 'US', value: 0 },
        '00280100': { vr: 'US', value: 8 },
        '00280101': { vr: 'US', value: 8 },
        '00280102': { vr: 'US', value: 7 },
        '7fe00010': { vr: 'OB', value: new Uint8Array(rows * columns * 2) },
      },
    });
    const meta = await parseInstance(dx.bytes);
    expect(meta.photometricInterpretation).toBe('YBR_FULL_422');
  });

  it('tells image storage from the non-image objects a study may hold', () => {
    for (const uid of ['1.2.840.10008.5.1.4.1.1.1', '1.2.840.10008.5.1.4.1.1.1.1', '1.2.840.10008.5.1.4.1.1.1.1.1', '1.2.840.10008.5.1.4.1.1.7']) {
      expect([isImageStorage(uid), isNonImageStorage(uid)]).toEqual([true, false]);
    }
    for (const uid of ['1.2.840.10008.5.1.4.1.1.88.11', '1.2.840.10008.5.1.4.1.1.88.22', '1.2.840.10008.5.1.4.1.1.88.33', '1.2.840.10008.5.1.4.1.1.88.59', '1.2.840.10008.5.1.4.1.1.11.1', '1.2.840.10008.5.1.4.1.1.88.67']) {
      expect([isImageStorage(uid), isNonImageStorage(uid)]).toEqual([false, true]);
    }
    expect(isImageStorage('toString')).toBe(false);
  });
});
