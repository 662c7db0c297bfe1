import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDx, multipart } from '../helpers/dicom.js';
import { startSystem, stow, type TestSystem } from '../helpers/system.js';

describe('POST /api/instances (one application/dicom body) and limits', () => {
  let system: TestSystem;
  beforeAll(async () => {
    system = await startSystem({ env: { MAX_PART_MB: '1', MAX_CONCURRENT_UPLOADS: '1' } });
  });
  afterAll(() => system?.close());

  const post = (body: Buffer, type = 'application/dicom', key = system.keys.a) =>
    fetch(`${system.url}/api/instances`, { method: 'POST', headers: { 'content-type': type, authorization: `Bearer ${key}` }, body });

  it('answers 201 for a new instance, 200 for a resend, 200 + warning for other bytes', async () => {
    const dx = makeDx();
    const first = await post(dx.bytes);
    expect(first.status).toBe(201);
    expect(await first.json()).toMatchObject({ status: 'stored', sopInstanceUid: dx.sopInstanceUid, retrieveUrl: expect.stringContaining(dx.sopInstanceUid) });
    const again = await post(dx.bytes);
    expect(again.status).toBe(200);
    expect((await again.json()).status).toBe('duplicate');
    const other = makeDx({ studyUid: dx.studyUid, seriesUid: dx.seriesUid, sopInstanceUid: dx.sopInstanceUid, patientId: 'X' });
    const conflict = await post(other.bytes);
    expect(conflict.status).toBe(200);
    expect(await conflict.json()).toMatchObject({ status: 'conflict', warning: expect.stringMatching(/original was kept/) });
  });

  it('explains refusals: 422 with the failure reason, 415 for the wrong type, 413 when too large', async () => {
    const bad = await post(Buffer.from('not dicom'.repeat(30)));
    expect(bad.status).toBe(422);
    expect(await bad.json()).toMatchObject({ failureReason: '0xC000', message: expect.stringMatching(/not a DICOM file/) });
    expect((await post(makeDx().bytes, 'application/json')).status).toBe(415);
    const big = makeDx({ rows: 800, columns: 800 });
    const tooLarge = await post(big.bytes);
    expect(tooLarge.status).toBe(413);
  });

  it('sheds load with 503 + Retry-After when every upload slot is taken, and recovers', async () => {
    const dx = makeDx();
    const body = multipart([dx.bytes]);
    // Hold the only slot with a request that sends its headers and part of its body, then pauses.
    const url = new URL(`${system.url}/dicomweb/studies`);
    const slow = http.request(url, { method: 'POST', headers: { 'content-type': body.contentType, authorization: `Bearer ${system.keys.a}`, 'content-length': body.body.length } });
    slow.on('error', () => {});
    const slowResponse = new Promise<number>((resolve) => slow.on('response', (res) => { res.resume(); resolve(res.statusCode!); }));
    slow.write(body.body.subarray(0, 100));
    await new Promise((r) => setTimeout(r, 300));

    const other = multipart([makeDx().bytes]);
    const refused = await stow(system, other.body, other.contentType);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('5');

    slow.end(body.body.subarray(100));
    expect(await slowResponse).toBe(200);
    expect((await stow(system, other.body, other.contentType)).status).toBe(200);
  });
});
