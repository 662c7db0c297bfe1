import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifyJobId } from '../../services/core/queue/classify-queue.js';
import { dxImage, writeDicom } from '../helpers/dicom.js';
import { makeDx, multipart, uid } from '../helpers/dicom.js';
import { databases, failures, referenced, startSystem, stow, type TestSystem } from '../helpers/system.js';

describe.each(await databases())('STOW-RS on %s', (db) => {
  let system: TestSystem;
  beforeAll(async () => {
    system = await startSystem({ db, env: { MAX_PART_MB: '1' } });
  });
  afterAll(() => system?.close());

  const send = (bytes: Buffer) => {
    const body = multipart([bytes]);
    return stow(system, body.body, body.contentType);
  };
  const jobCount = async () => (await system.core.jobs.classify.queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active'));
  const totalJobs = async () => Object.values(await jobCount()).reduce((a, b) => a + b, 0);

  it('stores a single instance, records it, queues one job, and says where to retrieve it', async () => {
    const dx = makeDx();
    const body = multipart([dx.bytes]);
    const res = await stow(system, body.body, body.contentType);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/application\/dicom\+json/);
    const refs = referenced(res.json);
    expect(refs).toHaveLength(1);
    expect(refs[0].sop).toBe(dx.sopInstanceUid);
    expect(refs[0].url).toBe(`${system.url}/dicomweb/studies/${dx.studyUid}/series/${dx.seriesUid}/instances/${dx.sopInstanceUid}`);
    expect(res.json['00081190'].Value[0]).toBe(`${system.url}/dicomweb/studies/${dx.studyUid}`);

    const row = await system.core.repos.instances.findBySop('site-a', dx.sopInstanceUid);
    expect(row?.status).toBe('queued');
    expect(row?.rows).toBe(32);
    expect(row?.bits_stored).toBe(12);
    expect(row?.transfer_syntax_uid).toBe('1.2.840.10008.1.2.1');
    const job = await system.core.jobs.classify.queue.getJob(classifyJobId('site-a', dx.sopInstanceUid));
    expect(job?.data).toEqual({ instanceId: row!.id, siteId: 'site-a' });
    // Stored byte for byte.
    expect(Buffer.compare(await system.core.repos.storage.readFile(row!.storage_key), dx.bytes)).toBe(0);

    // WADO-RS gives the same bytes back.
    const wado = await fetch(refs[0].url, { headers: { authorization: `Bearer ${system.keys.a}` } });
    expect(wado.status).toBe(200);
    const boundary = /boundary=([^;]+)/.exec(wado.headers.get('content-type')!)![1];
    const payload = Buffer.from(await wado.arrayBuffer());
    const start = payload.indexOf('\r\n\r\n') + 4;
    expect(Buffer.compare(payload.subarray(start, start + dx.bytes.length), dx.bytes)).toBe(0);
    expect(payload.subarray(start + dx.bytes.length).toString()).toBe(`\r\n--${boundary}--\r\n`);
  });

  it('stores many parts in one request', async () => {
    const study = uid();
    const parts = Array.from({ length: 5 }, () => makeDx({ studyUid: study }));
    const body = multipart(parts.map((p) => p.bytes));
    const before = await totalJobs();
    const res = await stow(system, body.body, body.contentType, { path: `/dicomweb/studies/${study}` });
    expect(res.status).toBe(200);
    expect(referenced(res.json).map((r) => r.sop).sort()).toEqual(parts.map((p) => p.sopInstanceUid).sort());
    expect(await totalJobs()).toBe(before + 5);
  });

  it('takes a chunked body delivered in small pieces', async () => {
    const parts = [makeDx({ rows: 100, columns: 100 }), makeDx({ rows: 64, columns: 80 })];
    const body = multipart(parts.map((p) => p.bytes));
    const url = new URL(`${system.url}/dicomweb/studies`);
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = http.request(url, { method: 'POST', headers: { 'content-type': body.contentType, authorization: `Bearer ${system.keys.a}`, 'transfer-encoding': 'chunked' } }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode!, text }));
      });
      req.on('error', reject);
      // 7-byte chunks make the boundary straddle chunk edges.
      let offset = 0;
      const pump = () => {
        while (offset < body.body.length) {
          const ok = req.write(body.body.subarray(offset, offset + 7));
          offset += 7;
          if (!ok) return void req.once('drain', pump);
        }
        req.end();
      };
      pump();
    });
    expect(status).toBe(200);
    expect(referenced(JSON.parse(text))).toHaveLength(2);
  });

  it('acknowledges a resend without storing or queueing it again', async () => {
    const dx = makeDx();
    const body = multipart([dx.bytes]);
    expect((await stow(system, body.body, body.contentType)).status).toBe(200);
    const jobsBefore = await totalJobs();
    const again = await stow(system, body.body, body.contentType);
    expect(again.status).toBe(200);
    expect(again.headers.get('x-duplicate-count')).toBe('1');
    expect(referenced(again.json)[0].sop).toBe(dx.sopInstanceUid);
    expect(await totalJobs()).toBe(jobsBefore);
    const counts = await system.core.repos.instances.listInstances({ studyId: (await system.core.repos.instances.getStudy('site-a', dx.studyUid))!.id });
    expect(counts).toHaveLength(1);
  });

  it('keeps the original when the same UID arrives with different bytes, and warns', async () => {
    const first = makeDx();
    const second = makeDx({ studyUid: first.studyUid, seriesUid: first.seriesUid, sopInstanceUid: first.sopInstanceUid, patientName: 'OTHER^NAME' });
    await send(first.bytes);
    const body = multipart([second.bytes]);
    const res = await stow(system, body.body, body.contentType);
    expect(res.status).toBe(202);
    const refs = referenced(res.json);
    expect(refs[0].warning).toBe(0xb006);
    const row = await system.core.repos.instances.findBySop('site-a', first.sopInstanceUid);
    expect(Buffer.compare(await system.core.repos.storage.readFile(row!.storage_key), first.bytes)).toBe(0);
    const audit = await system.core.repos.audit.list({ action: 'instance.conflict' });
    expect(audit.some((a) => a.target_id === String(row!.id))).toBe(true);
  });

  it('refuses bad files, each with its reason, and reports 409 when nothing was stored', async () => {
    const good = makeDx();
    const truncated = good.bytes.subarray(0, good.bytes.length - 100);
    const notDicom = Buffer.from('%PDF-1.4 this is not a DICOM file at all'.repeat(10));
    // A waveform (12-lead ECG) is neither an image nor a non-image object of a radiograph study.
    const ecg = makeDx({ extra: { '00080016': { vr: 'UI', value: '1.2.840.10008.5.1.4.1.1.9.1.1' } } });
    const noStudyBytes = makeDxWithout('0020000d');
    const cases: [Buffer, number, RegExp][] = [
      [truncated, 0xc000, /truncated|shorter/],
      [notDicom, 0xc000, /not a DICOM file/],
      [ecg.bytes, 0x0122, /not an image storage class/],
      [noStudyBytes, 0xc000, /Study Instance UID/],
    ];
    for (const [bytes, code, reason] of cases) {
      const body = multipart([bytes]);
      const res = await stow(system, body.body, body.contentType);
      expect(res.status).toBe(409);
      const [failure] = failures(res.json);
      expect(failure.code).toBe(code);
      expect(failure.reason).toMatch(reason);
    }
  });

  it('refuses unsupported transfer syntaxes with 0xC122', async () => {
    const dx = makeDx();
    // Rewrite the meta header's transfer syntax to MPEG2 (same length UID keeps offsets valid).
    const bytes = Buffer.from(dx.bytes);
    const at = bytes.indexOf('1.2.840.10008.1.2.1\0');
    bytes.write('1.2.840.10008.1.2.4.100'.slice(0, 20), at, 'latin1');
    const body = multipart([bytes]);
    const res = await stow(system, body.body, body.contentType);
    expect(res.status).toBe(409);
    expect(failures(res.json)[0].code).toBe(0xc122);
  });

  it('accepts a file without the 128-byte preamble (bare data set), explicit and implicit VR', async () => {
    for (const ts of ['1.2.840.10008.1.2.1', '1.2.840.10008.1.2'] as const) {
      const dx = makeDx({ write: { bare: true, transferSyntaxUid: ts } });
      expect(dx.bytes.subarray(128, 132).toString('latin1')).not.toBe('DICM');
      const body = multipart([dx.bytes]);
      const res = await stow(system, body.body, body.contentType);
      expect(res.status).toBe(200);
      const row = await system.core.repos.instances.findBySop('site-a', dx.sopInstanceUid);
      expect(row?.transfer_syntax_uid).toBe(ts);
    }
  });

  it('answers 202 with both sequences when some parts fail', async () => {
    const good = makeDx();
    const body = multipart([good.bytes, Buffer.from('garbage'.repeat(40))]);
    const res = await stow(system, body.body, body.contentType);
    expect(res.status).toBe(202);
    expect(referenced(res.json)).toHaveLength(1);
    expect(failures(res.json)).toHaveLength(1);
  });

  it('refuses instances of another study than the one in the URL with 0xA900', async () => {
    const dx = makeDx();
    const body = multipart([dx.bytes]);
    const res = await stow(system, body.body, body.contentType, { path: `/dicomweb/studies/${uid()}` });
    expect(res.status).toBe(409);
    expect(failures(res.json)[0].code).toBe(0xa900);
  });

  it('refuses a part over the size limit with 0xA700 and keeps the others', async () => {
    const big = makeDx({ rows: 800, columns: 800 }); // 1.28 MB > 1 MB limit
    const small = makeDx();
    const body = multipart([big.bytes, small.bytes]);
    const res = await stow(system, body.body, body.contentType);
    expect(res.status).toBe(202);
    expect(failures(res.json)[0]).toMatchObject({ code: 0xa700, reason: expect.stringMatching(/limit/) });
    expect(referenced(res.json)[0].sop).toBe(small.sopInstanceUid);
    expect(await system.core.repos.instances.findBySop('site-a', big.sopInstanceUid)).toBeUndefined();
  });

  it('answers 415 for the wrong media type and 400 for a broken body', async () => {
    const dx = makeDx();
    expect((await stow(system, dx.bytes, 'application/octet-stream')).status).toBe(415);
    const wrongType = multipart([dx.bytes]);
    expect((await stow(system, wrongType.body, wrongType.contentType.replace('application/dicom', 'application/dicom+json'))).status).toBe(415);
    expect((await stow(system, wrongType.body, 'multipart/related; type="application/dicom"')).status).toBe(400);
    const noClose = wrongType.body.subarray(0, wrongType.body.length - 10);
    const res = await stow(system, noClose, wrongType.contentType);
    expect(res.status).toBe(400);
    expect(res.json.message).toMatch(/closing boundary/);
    const empty = Buffer.from(`--${wrongType.boundary}--\r\n`);
    expect((await stow(system, empty, wrongType.contentType)).status).toBe(400);
  });

  it('rejects missing, malformed and revoked keys with 401', async () => {
    const body = multipart([makeDx().bytes]);
    const anonymous = await fetch(`${system.url}/dicomweb/studies`, { method: 'POST', headers: { 'content-type': body.contentType }, body: body.body });
    expect(anonymous.status).toBe(401);
    expect((await stow(system, body.body, body.contentType, { key: 'ft_000000000000_' + 'x'.repeat(43) })).status).toBe(401);
    const { id, key } = await system.core.services.apiKeys.createKey('site-a', 'short-lived');
    expect((await stow(system, body.body, body.contentType, { key })).status).toBe(200);
    await system.core.services.apiKeys.revokeKey(id);
    expect((await stow(system, multipart([makeDx().bytes]).body, body.contentType, { key })).status).toBe(401);
  });

  it("never shows one site's data to another site's key", async () => {
    const dx = makeDx();
    const body = multipart([dx.bytes]);
    await stow(system, body.body, body.contentType);
    const get = (path: string, key: string) => fetch(`${system.url}${path}`, { headers: { authorization: `Bearer ${key}` } });
    const instancePath = `/dicomweb/studies/${dx.studyUid}/series/${dx.seriesUid}/instances/${dx.sopInstanceUid}`;
    expect((await get(instancePath, system.keys.a)).status).toBe(200);
    expect((await get(instancePath, system.keys.b)).status).toBe(404);
    expect((await get(`/dicomweb/studies/${dx.studyUid}/series`, system.keys.b)).status).toBe(404);
    const search = await get(`/dicomweb/studies?StudyInstanceUID=${dx.studyUid}`, system.keys.b);
    expect(search.status).toBe(204);
    const own = await get(`/dicomweb/studies?StudyInstanceUID=${dx.studyUid}`, system.keys.a);
    expect((await own.json())[0]['0020000D'].Value[0]).toBe(dx.studyUid);
    // Site B sending the same instance stores its own copy; site A's stays untouched.
    const res = await stow(system, body.body, body.contentType, { key: system.keys.b });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-duplicate-count')).toBe('0');
  });

  it('writes reads and stores to the audit log', async () => {
    const dx = makeDx();
    const body = multipart([dx.bytes]);
    await stow(system, body.body, body.contentType);
    await fetch(`${system.url}/dicomweb/studies/${dx.studyUid}`, { headers: { authorization: `Bearer ${system.keys.a}` } }).then((r) => r.arrayBuffer());
    const row = await system.core.repos.instances.findBySop('site-a', dx.sopInstanceUid);
    const stores = await system.core.repos.audit.list({ action: 'instance.store', limit: 1000 });
    expect(stores.some((a) => a.target_id === String(row!.id))).toBe(true);
    const reads = await system.core.repos.audit.list({ action: 'study.retrieve', limit: 1000 });
    expect(reads.some((a) => a.target_id === String(row!.study_id))).toBe(true);
  });

  it('takes a priority from the request and raises, never lowers, the study', async () => {
    const study = uid();
    const routine = makeDx({ studyUid: study });
    await send(routine.bytes);
    const stat = makeDx({ studyUid: study });
    const body = multipart([stat.bytes]);
    await stow(system, body.body, body.contentType, { path: '/dicomweb/studies?priority=stat' });
    const later = makeDx({ studyUid: study, priority: 'LOW' });
    await send(later.bytes);
    expect((await system.core.repos.instances.getStudy('site-a', study))!.priority).toBe(1);
    const job = await system.core.jobs.classify.queue.getJob(classifyJobId('site-a', stat.sopInstanceUid));
    expect(job?.opts.priority).toBe(1);
    expect((await system.core.jobs.classify.queue.getJob(classifyJobId('site-a', later.sopInstanceUid)))?.opts.priority).toBe(20);
  });
});

function makeDxWithout(tag: string): Buffer {
  const elements = dxImage({ studyUid: uid(), seriesUid: uid(), sopInstanceUid: uid(), rows: 8, columns: 8 });
  delete elements[tag];
  return writeDicom(elements);
}
