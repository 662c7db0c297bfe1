import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseInstance } from '../../services/dicom/index.js';
import { makeDx, makeSr } from '../helpers/dicom.js';
import { orthancAvailable, startOrthanc, type OrthancInstance } from '../helpers/orthanc.js';
import { startProcessSystem, type ProcessSystem } from '../helpers/processes.js';
import { freePort } from '../helpers/redis-server.js';

if (!orthancAvailable()) console.warn('Orthanc push test skipped: Orthanc or orthanc-dicomweb is not installed (apt install orthanc orthanc-dicomweb)');

const JPEG_LS = path.resolve(import.meta.dirname, '../../samples/fracatlas/03-leg-fractured-jpeg-ls.dcm');

/**
 * The most common open-source router pushes to us as a hospital would configure it: by STOW-RS
 * (DicomWeb.Servers, 73-character boundaries, chunked) into site A's API key, and by C-STORE
 * (DicomModalities) into site B's AE mapping. A study with a report (SR) must succeed whole.
 */
describe.skipIf(!orthancAvailable())('Orthanc pushes studies to us (STOW-RS and C-STORE)', () => {
  let system: ProcessSystem;
  let orthanc: OrthancInstance;
  const image1 = makeDx({ patientId: 'ORTH-1', patientName: 'ORTHANC^PUSH' });
  const image2 = makeDx({ studyUid: image1.studyUid, seriesUid: image1.seriesUid, patientId: 'ORTH-1', patientName: 'ORTHANC^PUSH' });
  const report = makeSr({ studyUid: image1.studyUid, patientId: 'ORTH-1', patientName: 'ORTHANC^PUSH' });
  const compressed = fs.readFileSync(JPEG_LS);
  const files = [image1.bytes, image2.bytes, report.bytes, compressed];
  const studies: string[] = [];

  beforeAll(async () => {
    const dimsePort = await freePort();
    system = await startProcessSystem({ DIMSE_PORT: String(dimsePort), DIMSE_AE_TITLE: 'FRACTURE_TRIAGE', DIMSE_HOST: '127.0.0.1' });
    await system.core.services.apiKeys.createSite('site-b', 'B');
    orthanc = await startOrthanc({
      aet: 'ORTHANC_PACS',
      dicomWebServers: { triage: { url: `${system.url}/dicomweb/`, headers: { Authorization: `Bearer ${system.key}` } } },
      modalities: { triage: { aet: 'FRACTURE_TRIAGE', host: '127.0.0.1', port: dimsePort } },
    });
    await system.core.repos.aeTitles.upsert({ aeTitle: 'ORTHANC_PACS', siteId: 'site-b', host: '127.0.0.1' });
    await Promise.all([system.startApi(), system.startDimse()]);
    for (const file of files) {
      const { ParentStudy } = await orthanc.rest<{ ParentStudy: string }>('POST', '/instances', file);
      if (!studies.includes(ParentStudy)) studies.push(ParentStudy);
    }
  }, 180_000);
  afterAll(async () => {
    await orthanc?.stop();
    await system?.stop();
  });

  const storedIn = async (siteId: string) => {
    const rows = await system.core.database.db.selectFrom('instances').select(['sop_instance_uid', 'transfer_syntax_uid', 'sop_class_uid']).where('site_id', '=', siteId).execute();
    return new Map(rows.map((r) => [r.sop_instance_uid, r]));
  };
  const expectAllStored = async (rows: Map<string, { transfer_syntax_uid: string }>) => {
    expect(rows.size).toBe(files.length);
    for (const file of files) {
      const meta = await parseInstance(file);
      expect(rows.get(meta.sopInstanceUid)?.transfer_syntax_uid, meta.sopClassUid).toBe(meta.transferSyntaxUid);
    }
  };

  it('STOW-RS (DicomWeb.Servers): Orthanc reports success, every instance (the SR too) is stored once', async () => {
    const job = await orthanc.runJob('/dicom-web/servers/triage/stow', { Resources: studies });
    expect(job, orthanc.output().slice(-3000)).toMatchObject({ State: 'Success' });
    await expectAllStored(await storedIn('site-a'));
    // Again: acknowledged, nothing added.
    expect((await orthanc.runJob('/dicom-web/servers/triage/stow', { Resources: studies })).State).toBe('Success');
    expect((await storedIn('site-a')).size).toBe(files.length);
  });

  it('C-STORE (DicomModalities): Orthanc reports success, every instance is stored once into the site its AE title maps to', async () => {
    const echo = await orthanc.rest('POST', '/modalities/triage/echo', {});
    expect(echo).toEqual({});
    const job = await orthanc.runJob('/modalities/triage/store', { Resources: studies });
    expect(job, orthanc.output().slice(-3000)).toMatchObject({ State: 'Success' });
    await expectAllStored(await storedIn('site-b'));
    expect((await orthanc.runJob('/modalities/triage/store', { Resources: studies })).State).toBe('Success');
    expect((await storedIn('site-b')).size).toBe(files.length);
  });
});
