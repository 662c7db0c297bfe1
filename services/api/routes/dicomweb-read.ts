import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Authenticate } from '../plugins/auth.js';
import { randomUUID } from 'node:crypto';
import { PassThrough } from 'node:stream';
import type { Core } from '../../core/core.js';
import type { Study } from '../../core/db/schema.js';
import { cs, da, is, pn, sh, tm, ui, ur, lo, type DicomJson } from '../lib/dicom-json.js';
import { datasetJson } from '../lib/dataset-json.js';
import { fileMetaHeader } from '../../dicom/index.js';
import { parseInstance as parsePixels } from '../../imaging/dataset.js';
import { isPixelDataError, transferSyntax } from '../../imaging/index.js';
import { acceptableFrameSyntax, acceptableInstanceSyntax, qidoQuery, warningHeader } from './dicomweb-negotiation.js';

type Params = { study: string; series?: string; instance?: string };

/**
 * QIDO-RS (search) and WADO-RS (retrieve) for the caller's own site. Another site's study is
 * indistinguishable from one that does not exist (404), so a key cannot probe for UIDs.
 */
export function dicomwebReadRoutes(app: FastifyInstance, core: Core, authenticate: Authenticate) {
  // Integrators with a site key, and signed-in users (the viewer loads images through these routes).
  const authenticated = authenticate({ apiKey: true, session: true });
  // Every answer here carries patient data (or says whether it exists): never kept by a cache.
  const auth = [async (_request: FastifyRequest, reply: FastifyReply) => { reply.header('Cache-Control', 'no-store'); }, authenticated];
  const { instances, audit, storage } = core.repos;
  const base = core.config.publicUrl;

  const studyJson = (s: Study, counts?: { series: number; instances: number; modalities: string[] }): DicomJson => ({
    '00080020': da(s.study_date),
    '00080030': tm(s.study_time),
    '00080050': sh(s.accession_number),
    '00080061': cs(counts?.modalities ?? []),
    '00081030': lo(s.description),
    '00081190': ur(`${base}/dicomweb/studies/${s.study_uid}`),
    '00100010': pn(s.patient_name),
    '00100020': lo(s.patient_id),
    '00100030': da(s.patient_birth_date),
    '00100040': cs(s.patient_sex),
    '0020000D': ui(s.study_uid),
    '00201206': is(counts?.series ?? null),
    '00201208': is(counts?.instances ?? null),
  });

  const tags = ['DICOMweb'];
  const security = [{ apiKey: [] }];

  app.get('/dicomweb/studies', {
    onRequest: auth,
    schema: {
      tags, security, summary: 'QIDO-RS: search for studies',
      description: 'Keys by keyword or tag (e.g. PatientID or 00100020): StudyInstanceUID (list), PatientID and PatientName (* and ? wildcards), AccessionNumber, StudyDate (range), ModalitiesInStudy; includefield, limit, offset. Other keys are ignored and named in a Warning: 299 header.',
      querystring: {
        type: 'object',
        properties: {
          StudyInstanceUID: { type: 'string' }, PatientID: { type: 'string' }, PatientName: { type: 'string' },
          AccessionNumber: { type: 'string' }, StudyDate: { type: 'string', description: 'YYYYMMDD or YYYYMMDD-YYYYMMDD' },
          limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 }, offset: { type: 'integer', minimum: 0, default: 0 },
        },
      },
    },
  }, async (request, reply) => {
    const query = qidoQuery(request.query as Record<string, unknown>, 'study');
    if (query.ignored.length) reply.header('Warning', warningHeader(query.ignored));
    const k = query.keys;
    const [from, to] = k.StudyDate ? (k.StudyDate.includes('-') ? k.StudyDate.split('-') : [k.StudyDate, k.StudyDate]) : [];
    const studies = await instances.findStudies(request.principal!.siteIds, {
      studyUids: k.StudyInstanceUID?.split(/[,\\]/).filter(Boolean),
      patientId: k.PatientID,
      patientName: k.PatientName,
      accessionNumber: k.AccessionNumber,
      studyDateFrom: from || undefined,
      studyDateTo: to || undefined,
      modalities: k.ModalitiesInStudy?.split(/[,\\]/).filter(Boolean),
    }, query.limit, query.offset);
    const counts = await instances.studyCounts(studies.map((s) => s.id));
    await audit.record({ actor_type: request.principal!.type, actor_id: request.principal!.id, site_id: request.principal!.siteIds.length === 1 ? request.principal!.siteIds[0] : null, action: 'study.search', details: { results: studies.length } });
    if (!studies.length) return reply.code(204).send();
    return reply.type('application/dicom+json').send(studies.map((s) => studyJson(s, counts.get(s.id))));
  });

  const findStudyOr404 = async (request: FastifyRequest, reply: FastifyReply) => {
    const study = await instances.getStudy(request.principal!.siteIds, (request.params as Params).study);
    if (!study) reply.code(404).send({ error: 'Not Found', message: 'no such study' });
    return study;
  };

  app.get('/dicomweb/studies/:study/series', { onRequest: auth, schema: { tags, security, summary: 'QIDO-RS: series of a study' } }, async (request, reply) => {
    const study = await findStudyOr404(request, reply);
    if (!study) return reply;
    const query = qidoQuery(request.query as Record<string, unknown>, 'series');
    if (query.ignored.length) reply.header('Warning', warningHeader(query.ignored));
    const series = (await instances.listSeries(study.id))
      .filter((s) => matches(s.modality, query.keys.Modality) && matches(s.series_uid, query.keys.SeriesInstanceUID))
      .slice(query.offset, query.offset + query.limit);
    return reply.type('application/dicom+json').send(series.map((s) => ({
      '0020000D': ui(study.study_uid),
      '0020000E': ui(s.series_uid),
      '00080060': cs(s.modality),
      '00180015': cs(s.body_part),
      '00200011': is(s.series_number),
      '0008103E': lo(s.description),
      '00081190': ur(`${base}/dicomweb/studies/${study.study_uid}/series/${s.series_uid}`),
    })));
  });

  const instancesRoute = async (request: FastifyRequest, reply: FastifyReply) => {
    const study = await findStudyOr404(request, reply);
    if (!study) return reply;
    const query = qidoQuery(request.query as Record<string, unknown>, 'instance');
    if (query.ignored.length) reply.header('Warning', warningHeader(query.ignored));
    const rows = (await instances.listInstances({ studyId: study.id, seriesUid: (request.params as Params).series ?? query.keys.SeriesInstanceUID }))
      .filter((i) => matches(i.sop_instance_uid, query.keys.SOPInstanceUID) && matches(i.sop_class_uid, query.keys.SOPClassUID) && matches(i.modality, query.keys.Modality))
      .slice(query.offset, query.offset + query.limit);
    return reply.type('application/dicom+json').send(rows.map((i) => ({
      '00080016': ui(i.sop_class_uid),
      '00080018': ui(i.sop_instance_uid),
      '00080060': cs(i.modality),
      '00020010': ui(i.transfer_syntax_uid),
      '0020000D': ui(study.study_uid),
      '0020000E': ui(i.series_uid),
      '00200013': is(i.instance_number),
      '00280010': { vr: 'US', Value: [i.rows] },
      '00280011': { vr: 'US', Value: [i.columns] },
      '00280008': is(i.number_of_frames),
      '00081190': ur(`${base}/dicomweb/studies/${study.study_uid}/series/${i.series_uid}/instances/${i.sop_instance_uid}`),
    })));
  };
  app.get('/dicomweb/studies/:study/instances', { onRequest: auth, schema: { tags, security, summary: 'QIDO-RS: instances of a study' } }, instancesRoute);
  app.get('/dicomweb/studies/:study/series/:series/instances', { onRequest: auth, schema: { tags, security, summary: 'QIDO-RS: instances of a series' } }, instancesRoute);

  /** WADO-RS retrieve: the stored originals, byte for byte, as multipart/related application/dicom. */
  const retrieve = async (request: FastifyRequest, reply: FastifyReply) => {
    const accept = request.headers.accept ?? '*/*';
    if (!/multipart\/related|\*\/\*|application\/dicom/i.test(accept) || /application\/dicom\+json/i.test(accept)) {
      return reply.code(406).send({ error: 'Not Acceptable', message: 'this endpoint returns multipart/related; type="application/dicom"' });
    }
    const study = await findStudyOr404(request, reply);
    if (!study) return reply;
    const params = request.params as Params;
    const rows = await instances.listInstances({ studyId: study.id, seriesUid: params.series, sopInstanceUid: params.instance });
    if (!rows.length) return reply.code(404).send({ error: 'Not Found', message: 'no such series or instance' });
    // We serve what was stored, byte for byte: a request for another transfer syntax is 406, never something else silently.
    const refused = rows.find((row) => !acceptableInstanceSyntax(accept, row.transfer_syntax_uid));
    if (refused) {
      return reply.code(406).send({ error: 'Not Acceptable', message: `stored in transfer syntax ${refused.transfer_syntax_uid}; ask for it, or transfer-syntax=*` });
    }
    await audit.record({
      actor_type: request.principal!.type, actor_id: request.principal!.id, site_id: study.site_id,
      action: 'study.retrieve', target_type: 'study', target_id: String(study.id), details: { instances: rows.length },
    });
    const boundary = randomUUID();
    const out = new PassThrough();
    (async () => {
      for (const row of rows) {
        out.write(`--${boundary}\r\nContent-Type: application/dicom\r\nContent-Length: ${row.size_bytes}\r\n\r\n`);
        for await (const chunk of storage.createReadStream(row.storage_key)) {
          if (!out.write(chunk)) await new Promise((resolve) => out.once('drain', resolve));
        }
        out.write('\r\n');
      }
      out.end(`--${boundary}--\r\n`);
    })().catch((err) => {
      request.log.error({ err }, 'retrieve stream failed');
      out.destroy(err);
    });
    return reply.type(`multipart/related; type="application/dicom"; boundary=${boundary}`).send(out);
  };
  app.get('/dicomweb/studies/:study', { onRequest: auth, schema: { tags, security, summary: 'WADO-RS: retrieve a study' } }, retrieve);
  app.get('/dicomweb/studies/:study/series/:series', { onRequest: auth, schema: { tags, security, summary: 'WADO-RS: retrieve a series' } }, retrieve);
  app.get('/dicomweb/studies/:study/series/:series/instances/:instance', { onRequest: auth, schema: { tags, security, summary: 'WADO-RS: retrieve an instance' } }, retrieve);

  /** A stored file as Part 10 (bare data sets stored as sent get their meta header back first). */
  const part10 = async (row: { storage_key: string; sop_class_uid: string; sop_instance_uid: string; transfer_syntax_uid: string }) => {
    const bytes = await storage.readFile(row.storage_key);
    if (bytes.length >= 132 && bytes.toString('latin1', 128, 132) === 'DICM') return bytes;
    return Buffer.concat([fileMetaHeader({ sopClassUid: row.sop_class_uid, sopInstanceUid: row.sop_instance_uid, transferSyntaxUid: row.transfer_syntax_uid }), bytes]);
  };
  const instanceUrl = (studyUid: string, seriesUid: string, sopUid: string) => `${base}/dicomweb/studies/${studyUid}/series/${seriesUid}/instances/${sopUid}`;

  /** WADO-RS metadata: the DICOM JSON of every instance in scope; Pixel Data by BulkDataURI (its frames). */
  const metadata = async (request: FastifyRequest, reply: FastifyReply) => {
    const accept = request.headers.accept ?? '*/*';
    if (!/application\/(dicom\+)?json|\*\/\*|application\/\*/i.test(accept)) {
      return reply.code(406).send({ error: 'Not Acceptable', message: 'metadata is application/dicom+json' });
    }
    const study = await findStudyOr404(request, reply);
    if (!study) return reply;
    const params = request.params as Params;
    const rows = await instances.listInstances({ studyId: study.id, seriesUid: params.series, sopInstanceUid: params.instance });
    if (!rows.length) return reply.code(404).send({ error: 'Not Found', message: 'no such series or instance' });
    await audit.record({
      actor_type: request.principal!.type, actor_id: request.principal!.id, site_id: study.site_id,
      action: 'study.retrieve', target_type: 'study', target_id: String(study.id), details: { instances: rows.length, what: 'metadata' },
    });
    const out: DicomJson[] = [];
    for (const row of rows) {
      const url = instanceUrl(study.study_uid, row.series_uid, row.sop_instance_uid);
      const frames = Array.from({ length: Math.max(1, row.number_of_frames) }, (_, i) => i + 1).join(',');
      try {
        out.push({ ...datasetJson(await part10(row), `${url}/frames/${frames}`), '00081190': ur(url) });
      } catch (err) {
        // Stored at upload, so it parsed then; say which instance without failing the whole answer.
        request.log.error({ err, instanceId: row.id }, 'metadata of a stored instance could not be read');
        out.push({ '00080016': ui(row.sop_class_uid), '00080018': ui(row.sop_instance_uid), '0020000D': ui(study.study_uid), '0020000E': ui(row.series_uid), '00081190': ur(url) });
      }
    }
    return reply.type('application/dicom+json').send(out);
  };
  app.get('/dicomweb/studies/:study/metadata', { onRequest: auth, schema: { tags, security, summary: 'WADO-RS: metadata of a study (DICOM JSON)' } }, metadata);
  app.get('/dicomweb/studies/:study/series/:series/metadata', { onRequest: auth, schema: { tags, security, summary: 'WADO-RS: metadata of a series (DICOM JSON)' } }, metadata);
  app.get('/dicomweb/studies/:study/series/:series/instances/:instance/metadata', { onRequest: auth, schema: { tags, security, summary: 'WADO-RS: metadata of an instance (DICOM JSON)' } }, metadata);

  /**
   * WADO-RS frames: uncompressed frames as application/octet-stream (Explicit VR Little Endian; a
   * big-endian original is byte-swapped), compressed ones in their stored syntax. What the Accept
   * header allows decides; anything else is 406.
   */
  app.get('/dicomweb/studies/:study/series/:series/instances/:instance/frames/:frames', {
    onRequest: auth,
    schema: { tags, security, summary: 'WADO-RS: frames of an instance (stored syntax, or uncompressed for uncompressed originals)' },
  }, async (request, reply) => {
    const params = request.params as Params & { frames: string };
    const numbers = params.frames.split(',').map((f) => Number(f));
    if (!numbers.length || numbers.some((n) => !Number.isInteger(n) || n < 1)) {
      return reply.code(400).send({ error: 'Bad Request', message: 'frames are a comma-separated list of frame numbers from 1' });
    }
    const study = await findStudyOr404(request, reply);
    if (!study) return reply;
    const [row] = await instances.listInstances({ studyId: study.id, seriesUid: params.series, sopInstanceUid: params.instance });
    if (!row) return reply.code(404).send({ error: 'Not Found', message: 'no such instance' });
    if (!row.rows) return reply.code(404).send({ error: 'Not Found', message: 'this instance has no pixel data (report, key objects or presentation state)' });
    const over = numbers.find((n) => n > Math.max(1, row.number_of_frames));
    if (over) return reply.code(404).send({ error: 'Not Found', message: `frame ${over} does not exist; the instance has ${Math.max(1, row.number_of_frames)}` });
    const syntax = transferSyntax(row.transfer_syntax_uid);
    const served = syntax ? acceptableFrameSyntax(request.headers.accept, syntax) : undefined;
    if (!served) {
      return reply.code(406).send({ error: 'Not Acceptable', message: `frames are stored in ${syntax?.name ?? row.transfer_syntax_uid}; ask for that media type or transfer-syntax=*` });
    }
    let frames: Uint8Array[];
    try {
      const parsed = await parsePixels(await part10(row));
      frames = numbers.map((n) => {
        const bytes = parsed.frameBytes(n - 1);
        return syntax!.bigEndian && parsed.info.bitsAllocated === 16 ? Buffer.from(bytes).swap16() : bytes;
      });
    } catch (err) {
      if (!isPixelDataError(err)) throw err;
      return reply.code(406).send({ error: 'Not Acceptable', message: `frames of this image cannot be served: ${err.message}` });
    }
    await audit.record({
      actor_type: request.principal!.type, actor_id: request.principal!.id, site_id: study.site_id,
      action: 'study.retrieve', target_type: 'instance', target_id: String(row.id), details: { frames: numbers.length },
    });
    const boundary = randomUUID();
    const partType = `${served.mediaType}; transfer-syntax=${served.transferSyntaxUid}`;
    const body = Buffer.concat(frames.flatMap((f) => [
      Buffer.from(`--${boundary}\r\nContent-Type: ${partType}\r\nContent-Length: ${f.length}\r\n\r\n`), Buffer.from(f.buffer, f.byteOffset, f.byteLength), Buffer.from('\r\n'),
    ]).concat(Buffer.from(`--${boundary}--\r\n`)));
    return reply.type(`multipart/related; type="${served.mediaType}"; transfer-syntax=${served.transferSyntaxUid}; boundary=${boundary}`).send(body);
  });
}

/** QIDO matching of one attribute: no key matches all; `*`/`?` wildcards; a list (`,` or `\\`) matches any. */
function matches(value: string | null, key: string | undefined): boolean {
  if (!key) return true;
  return key.split(/[,\\]/).some((k) => new RegExp(`^${k.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i').test(value ?? ''));
}
