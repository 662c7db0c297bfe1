import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api } from 'dicomweb-client';
import { parseInstance } from '../../services/dicom/index.js';
import { parseInstance as parsePixels } from '../../services/imaging/dataset.js';
import { makeDx, makeSr, multipart } from '../helpers/dicom.js';
import { startSystem, stow, type TestSystem } from '../helpers/system.js';
import { FetchXMLHttpRequest, responses } from '../helpers/xhr.js';

const JPEG_LS = path.resolve(import.meta.dirname, '../../samples/fracatlas/03-leg-fractured-jpeg-ls.dcm');

/** OHIF's DICOMweb data source talks through dicomweb-client; this is what it needs from us. */
describe('DICOMweb for viewers (dicomweb-client)', () => {
  let system: TestSystem;
  let client: InstanceType<typeof api.DICOMwebClient>;
  const dx = makeDx({ patientId: 'VIEW-1', patientName: 'VIEWER^ONE' });
  const report = makeSr({ studyUid: dx.studyUid, patientId: 'VIEW-1', patientName: 'VIEWER^ONE' });
  const jls = fs.readFileSync(JPEG_LS);

  beforeAll(async () => {
    (globalThis as { XMLHttpRequest?: unknown }).XMLHttpRequest = FetchXMLHttpRequest;
    system = await startSystem();
    const body = multipart([dx.bytes, report.bytes, jls]);
    expect((await stow(system, body.body, body.contentType)).status).toBe(200);
    client = new api.DICOMwebClient({ url: `${system.url}/dicomweb`, headers: { Authorization: `Bearer ${system.keys.a}` } });
  });
  afterAll(() => system?.close());

  const lastResponse = () => responses[responses.length - 1];

  it('retrieves study, series and instance metadata as DICOM JSON, pixel data by BulkDataURI, never cached', async () => {
    const study = await client.retrieveStudyMetadata({ studyInstanceUID: dx.studyUid });
    expect(study).toHaveLength(2);
    const image = study.find((i: any) => i['00080018'].Value[0] === dx.sopInstanceUid);
    expect(image['00100020']).toEqual({ vr: 'LO', Value: ['VIEW-1'] });
    expect(image['00280010']).toEqual({ vr: 'US', Value: [32] });
    expect(image['7FE00010'].BulkDataURI).toMatch(new RegExp(`/instances/${dx.sopInstanceUid}/frames/1$`));
    expect(lastResponse().headers.get('cache-control')).toBe('no-store');
    const sr = study.find((i: any) => i['00080018'].Value[0] === report.sopInstanceUid);
    expect(sr['0040A730'].vr).toBe('SQ');
    expect(sr['0040A730'].Value[0]['0040A160'].Value[0]).toBe('No acute bony injury.');

    const series = await client.retrieveSeriesMetadata({ studyInstanceUID: dx.studyUid, seriesInstanceUID: dx.seriesUid });
    expect(series.map((i: any) => i['00080018'].Value[0])).toEqual([dx.sopInstanceUid]);
    const instance = await client.retrieveInstanceMetadata({ studyInstanceUID: dx.studyUid, seriesInstanceUID: dx.seriesUid, sopInstanceUID: dx.sopInstanceUid });
    expect(instance[0]['0020000D'].Value[0]).toBe(dx.studyUid);
  });

  it('retrieves frames: uncompressed as octet-stream, compressed in the stored syntax; another syntax is 406', async () => {
    const [frame] = await client.retrieveInstanceFrames({ studyInstanceUID: dx.studyUid, seriesInstanceUID: dx.seriesUid, sopInstanceUID: dx.sopInstanceUid, frameNumbers: [1] });
    expect(Buffer.from(frame)).toEqual(Buffer.from((await parsePixels(dx.bytes)).frameBytes(0)));

    const uids = await parseInstance(jls);
    const ids = { studyInstanceUID: uids.studyInstanceUid, seriesInstanceUID: uids.seriesInstanceUid, sopInstanceUID: uids.sopInstanceUid, frameNumbers: [1] };
    const [compressed] = await client.retrieveInstanceFrames({ ...ids, mediaTypes: [{ mediaType: 'image/jls', transferSyntaxUID: '1.2.840.10008.1.2.4.80' }] });
    expect(Buffer.from(compressed)).toEqual(Buffer.from((await parsePixels(jls)).frameBytes(0)));
    expect(lastResponse().headers.get('content-type')).toMatch(/transfer-syntax=1\.2\.840\.10008\.1\.2\.4\.80/);

    await expect(client.retrieveInstanceFrames({ ...ids, mediaTypes: [{ mediaType: 'application/octet-stream', transferSyntaxUID: '1.2.840.10008.1.2.1' }] }))
      .rejects.toMatchObject({ status: 406 });
    // WADO-RS of the whole instance in another syntax: 406, not the original with 200.
    const wado = await fetch(`${system.url}/dicomweb/studies/${ids.studyInstanceUID}/series/${ids.seriesInstanceUID}/instances/${ids.sopInstanceUID}`, {
      headers: { authorization: `Bearer ${system.keys.a}`, accept: 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1' },
    });
    expect(wado.status).toBe(406);
    const same = await fetch(`${system.url}/dicomweb/studies/${ids.studyInstanceUID}/series/${ids.seriesInstanceUID}/instances/${ids.sopInstanceUID}`, {
      headers: { authorization: `Bearer ${system.keys.a}`, accept: 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.80' },
    });
    expect(same.status).toBe(200);
  });

  it('searches by keyword and by tag, with PatientID wildcards and ModalitiesInStudy, and warns about keys it ignores', async () => {
    const byKeyword = await client.searchForStudies({ queryParams: { PatientID: 'VIEW-*' } });
    expect(byKeyword.map((s: any) => s['0020000D'].Value[0])).toEqual([dx.studyUid]);
    const byTag = await client.searchForStudies({ queryParams: { '00100020': 'VIEW-1' } });
    expect(byTag.map((s: any) => s['0020000D'].Value[0])).toEqual([dx.studyUid]);
    expect(lastResponse().headers.get('warning')).toBeNull();
    const withReport = await client.searchForStudies({ queryParams: { ModalitiesInStudy: 'SR' } });
    expect(withReport.map((s: any) => s['0020000D'].Value[0])).toEqual([dx.studyUid]);
    expect(await client.searchForStudies({ queryParams: { ModalitiesInStudy: 'CT' } })).toEqual([]);

    await client.searchForStudies({ queryParams: { PatientID: 'VIEW-1', ReferringPhysicianName: 'WHO^EVER', includefield: '00081030' } });
    expect(lastResponse().headers.get('warning')).toMatch(/^299 fracture-triage ".*ReferringPhysicianName/);

    const series = await client.searchForSeries({ studyInstanceUID: dx.studyUid, queryParams: { Modality: 'SR' } });
    expect(series.map((s: any) => s['0020000E'].Value[0])).toEqual([report.seriesUid]);
    const instances = await client.searchForInstances({ studyInstanceUID: dx.studyUid, queryParams: { '00080018': dx.sopInstanceUid } });
    expect(instances.map((s: any) => s['00080018'].Value[0])).toEqual([dx.sopInstanceUid]);
  });
});
