import { describe, expect, it } from 'vitest';
import { MultipartError, readMultipartRelated } from '../../services/api/lib/multipart-related.js';

async function collect(body: Buffer, boundary: string, chunkSize: number) {
  const parts: { headers: Record<string, string>; body: Buffer }[] = [];
  async function* source() {
    for (let i = 0; i < body.length; i += chunkSize) yield body.subarray(i, i + chunkSize);
  }
  await readMultipartRelated(source(), boundary, async (headers) => {
    const chunks: Buffer[] = [];
    return {
      write: async (c) => void chunks.push(Buffer.from(c)),
      end: async () => void parts.push({ headers, body: Buffer.concat(chunks) }),
      abort: async () => {},
    };
  });
  return parts;
}

describe('streaming multipart/related reader', () => {
  const boundary = 'XyZ';
  // Part bodies that contain near-boundaries and CRLFs must come through untouched.
  const bodies = [Buffer.from('abc\r\n--XyYnot-a-boundary\r\n--Xy'), Buffer.alloc(0), Buffer.from([0, 13, 10, 45, 45, 88, 121])];
  const raw = Buffer.concat([
    Buffer.from('preamble to ignore\r\n'),
    ...bodies.flatMap((b, i) => [Buffer.from(`--${boundary}\r\n${i === 1 ? '' : 'Content-Type: application/dicom\r\n'}\r\n`), b, Buffer.from('\r\n')]),
    Buffer.from(`--${boundary}--\r\nepilogue`),
  ]);

  it.each([1, 2, 3, 7, 8, 9, 11, 13, 64, 100_000])('gives identical parts whatever the chunking (%i-byte chunks)', async (size) => {
    const parts = await collect(raw, boundary, size);
    expect(parts.map((p) => p.body.toString('hex'))).toEqual(bodies.map((b) => b.toString('hex')));
    expect(parts[0].headers['content-type']).toBe('application/dicom');
    expect(parts[1].headers).toEqual({});
  });

  it('fails clearly on a body without the closing boundary or without any boundary', async () => {
    await expect(collect(raw.subarray(0, raw.length - 20), boundary, 10)).rejects.toThrow(MultipartError);
    await expect(collect(Buffer.from('no boundary here'), boundary, 10)).rejects.toThrow(/no multipart boundary/);
  });
});
