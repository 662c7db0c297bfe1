import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDx, makeSr, multipart } from '../helpers/dicom.js';
import { failures, referenced, startSystem, stow, type TestSystem } from '../helpers/system.js';

/** What real senders send (issue 12): long boundaries, whole studies with reports, and the patient-identity guard. */
describe('STOW-RS from real senders', () => {
  let system: TestSystem;
  beforeAll(async () => { system = await startSystem(); });
  afterAll(() => system?.close());

  const metric = async (name: string, labels: string) => {
    const text = await (await fetch(`${system.url}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
    return line ? Number(line.split(' ').pop()) : 0;
  };

  it("takes Orthanc's 73-character boundary (two UUIDs) and any boundary up to 256 characters", async () => {
    for (const boundary of ['1f0c6c1e-0e5c-4a8e-9c51-8f6f1f2a9d3e-5b4f2a7c-31d9-4f0e-8b0a-2c6e9f1d7a40', 'x'.repeat(256)]) {
      const dx = makeDx();
      const body = multipart([dx.bytes], boundary);
      const res = await stow(system, body.body, body.contentType);
      expect(res.status).toBe(200);
      expect(referenced(res.json).map((r) => r.sop)).toEqual([dx.sopInstanceUid]);
    }
  });

  it('answers every 4xx with its reason, logs it and counts it by reason', async () => {
    const before = await metric('ft_http_rejections_total', 'reason="boundary_too_long"');
    const body = multipart([makeDx().bytes], 'y'.repeat(257));
    const res = await stow(system, body.body, body.contentType);
    expect(res.status).toBe(400);
    expect(res.json.message).toMatch(/257 characters; at most 256/);
    expect(await metric('ft_http_rejections_total', 'reason="boundary_too_long"')).toBe(before + 1);

    const broken = Buffer.from('--abc\r\nContent-Type: application/dicom\r\nno blank line and no end');
    const bad = await stow(system, broken, 'multipart/related; type="application/dicom"; boundary=abc');
    expect(bad.status).toBe(400);
    expect(await metric('ft_http_rejections_total', 'reason="malformed_multipart"')).toBeGreaterThanOrEqual(1);

    const anonymous = await fetch(`${system.url}/dicomweb/studies`, { method: 'POST', headers: { 'content-type': body.contentType }, body: body.body });
    expect(anonymous.status).toBe(401);
    expect(await metric('ft_http_rejections_total', 'reason="unauthenticated"')).toBeGreaterThanOrEqual(1);
  });

  it('stores a study with a report (SR) whole: 200, the SR in Referenced SOP Sequence, retrievable, and its AI result not applicable', async () => {
    const image = makeDx();
    const report = makeSr({ studyUid: image.studyUid });
    const body = multipart([image.bytes, report.bytes]);
    const res = await stow(system, body.body, body.contentType);
    expect(res.status).toBe(200);
    expect(failures(res.json)).toEqual([]);
    expect(referenced(res.json).map((r) => r.sop).sort()).toEqual([image.sopInstanceUid, report.sopInstanceUid].sort());
    const url = referenced(res.json).find((r) => r.sop === report.sopInstanceUid)!.url;
    const wado = await fetch(url, { headers: { authorization: `Bearer ${system.keys.a}` } });
    expect(wado.status).toBe(200);
    expect(Buffer.from(await wado.arrayBuffer()).includes(report.bytes)).toBe(true);
  });

  it('refuses an instance whose study is stored under another Patient ID (0xA900), never merging, and counts it', async () => {
    const first = makeDx({ patientId: 'PAT-A' });
    const firstBody = multipart([first.bytes]);
    expect((await stow(system, firstBody.body, firstBody.contentType)).status).toBe(200);
    const before = await metric('ft_patient_identity_refusals_total', 'origin="stow"');
    const other = makeDx({ studyUid: first.studyUid, patientId: 'PAT-B' });
    const body = multipart([other.bytes]);
    const res = await stow(system, body.body, body.contentType);
    expect(res.status).toBe(409);
    expect(failures(res.json)).toEqual([{ code: 0xa900, reason: expect.stringMatching(/another Patient ID/), sop: other.sopInstanceUid }]);
    expect(await system.core.repos.instances.findBySop('site-a', other.sopInstanceUid)).toBeUndefined();
    const study = await system.core.repos.instances.getStudy('site-a', first.studyUid);
    expect(study?.patient_id).toBe('PAT-A');
    // Nothing of the refused image was recorded, not even its series under the other patient's study.
    expect((await system.core.repos.instances.listSeries(study!.id)).map((s) => s.series_uid)).toEqual([first.seriesUid]);
    expect(await metric('ft_patient_identity_refusals_total', 'origin="stow"')).toBe(before + 1);
  });

  it('refuses UIDs that are not UIDs (".", "..", empty components, leading zeros)', async () => {
    for (const bad of ['.', '..', '1..2', '1.02.3', '1.2.']) {
      const dx = makeDx({ seriesUid: bad });
      const body = multipart([dx.bytes]);
      const res = await stow(system, body.body, body.contentType);
      expect(res.status, bad).toBe(409);
      expect(failures(res.json)[0].reason).toMatch(/invalid Series Instance UID/);
    }
  });
});
