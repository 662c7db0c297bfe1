import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FailureReason } from '../../services/dicom/index.js';
import { makeDx, multipart } from '../helpers/dicom.js';
import { streamOf, unrecordedFiles } from '../helpers/ingest.js';
import { databases, startSystem, stow, type TestSystem } from '../helpers/system.js';

/** The protocol-free ingest door (core.services.ingest), as a DIMSE listener or a folder watcher would use it. */
describe.each(await databases())('ingest door on %s', (db) => {
  let system: TestSystem;
  beforeAll(async () => {
    system = await startSystem({ db });
  });
  afterAll(() => system?.close());

  const leftovers = () => unrecordedFiles(system.core);
  const chunks = (bytes: Buffer, size: number) => Array.from({ length: Math.ceil(bytes.length / size) }, (_, i) => bytes.subarray(i * size, (i + 1) * size));

  it('stores pushed chunks with their origin and actor, on the row and in the audit log, and queues the image', async () => {
    const dx = makeDx();
    const part = system.core.services.ingest.openPart({ origin: 'dimse', siteId: 'site-a', actorId: 'MODALITY_AE' });
    for (const chunk of chunks(dx.bytes, 100)) await part.write(chunk);
    const outcome = await part.end();
    expect(outcome).toMatchObject({ status: 'stored', sopInstanceUid: dx.sopInstanceUid, studyInstanceUid: dx.studyUid });

    const row = (await system.core.repos.instances.findBySop('site-a', dx.sopInstanceUid))!;
    expect(row).toMatchObject({ origin: 'dimse', actor_id: 'MODALITY_AE', status: 'queued' });
    expect(Buffer.compare(await system.core.repos.storage.readFile(row.storage_key), dx.bytes)).toBe(0);
    expect(await system.core.jobs.classify.has({ siteId: 'site-a', sopInstanceUid: dx.sopInstanceUid })).toBe(true);
    const audit = (await system.core.repos.audit.list({ action: 'instance.store', limit: 1000 })).find((a) => a.target_id === String(row.id))!;
    expect(audit).toMatchObject({ actor_type: 'dicom_ae', actor_id: 'MODALITY_AE', site_id: 'site-a' });
    expect(JSON.parse(audit.details!)).toEqual({ origin: 'dimse' });
    expect(await leftovers()).toEqual([]);
  });

  it('stores a streamed object; an identical resend is a duplicate, not a second row', async () => {
    const dx = makeDx();
    const ctx = { origin: 'api', siteId: 'site-a', actorId: 'key-1' } as const;
    expect((await system.core.services.ingest.receive(streamOf(...chunks(dx.bytes, 7)), ctx)).status).toBe('stored');
    expect((await system.core.services.ingest.receive(streamOf(dx.bytes), ctx)).status).toBe('duplicate');
    expect(await leftovers()).toEqual([]);
  });

  it('stores nothing and leaves no file when the sender goes away mid-object', async () => {
    const dx = makeDx();
    const part = system.core.services.ingest.openPart({ origin: 'dimse', siteId: 'site-a', actorId: 'AE' });
    await part.write(dx.bytes.subarray(0, 200));
    await part.abort();
    expect(await leftovers()).toEqual([]);
    expect(await system.core.repos.instances.findBySop('site-a', dx.sopInstanceUid)).toBeUndefined();

    async function* broken() {
      yield dx.bytes.subarray(0, 300);
      throw new Error('association aborted');
    }
    await expect(system.core.services.ingest.receive(broken(), { origin: 'dimse', siteId: 'site-a', actorId: 'AE' })).rejects.toThrow('association aborted');
    expect(await leftovers()).toEqual([]);
    expect(await system.core.repos.instances.findBySop('site-a', dx.sopInstanceUid)).toBeUndefined();
  });

  it('refuses an empty object and one that is not DICOM with a reason', async () => {
    const ctx = { origin: 'dimse', siteId: 'site-a', actorId: 'AE' } as const;
    expect(await system.core.services.ingest.openPart(ctx).end()).toMatchObject({ status: 'failed', failureReason: FailureReason.CannotUnderstand, reason: 'empty part: no bytes' });
    const notDicom = await system.core.services.ingest.receive(streamOf(Buffer.from('hello, not a DICOM file')), ctx);
    expect(notDicom.status).toBe('failed');
    expect(notDicom.status === 'failed' && notDicom.reason).toBeTruthy();
    expect(await leftovers()).toEqual([]);
  });

  it('records STOW-RS uploads as "stow" and single-file uploads as "api", with the API key as actor', async () => {
    const viaStow = makeDx();
    const body = multipart([viaStow.bytes]);
    expect((await stow(system, body.body, body.contentType)).status).toBe(200);
    const viaApi = makeDx();
    const res = await fetch(`${system.url}/api/instances`, {
      method: 'POST', headers: { 'content-type': 'application/dicom', authorization: `Bearer ${system.keys.a}` }, body: viaApi.bytes,
    });
    expect(res.status).toBe(201);
    const keyId = system.keys.a.split('_')[1];
    expect(await system.core.repos.instances.findBySop('site-a', viaStow.sopInstanceUid)).toMatchObject({ origin: 'stow', actor_id: keyId });
    expect(await system.core.repos.instances.findBySop('site-a', viaApi.sopInstanceUid)).toMatchObject({ origin: 'api', actor_id: keyId });
  });
});
