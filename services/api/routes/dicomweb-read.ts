import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Authenticate } from '../plugins/auth.js';
import { randomUUID } from 'node:crypto';
import { PassThrough } from 'node:stream';
import type { Core } from '../../core/core.js';
import { AppError } from '../../core/errors.js';
import type { StudyRecord } from '../../core/services/dicomweb.service.js';
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
  const dicomweb = core.services.dicomweb;
  const base = core.config.publicUrl;

  const studyJson = (s: StudyRecord, counts?: { series: number; instances: number; modalities: string[] }): DicomJson => ({
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
    const { studies, counts } = await dicomweb.searchStudies(request.principal!, {
      studyUids: k.StudyInstanceUID?.split(/[,\\]/).filter(Boolean),
      patientId: k.PatientID,
      patientName: k.PatientName,
      accessionNumber: k.AccessionNumber,
      studyDateFrom: from || undefined,
      studyDateTo: to || undefined,
      modalities: k.ModalitiesInStudy?.split(/[,\\]/).filter(Boolean),
    }, query.limit, query.offset);
    if (!studies.length) return reply.code(204).send();
    return reply.type('application/dicom+json').send(studies.map((s) => studyJson(s, counts.get(s.id))));
  });

  const findStudy = (request: FastifyRequest) => dicomweb.study(request.principal!, (request.params as Params).study);

  app.get('/dicomweb/studies/:study/series', { onRequest: auth, schema: { tags, security, summary: 'QIDO-RS: series of a study' } }, async (request, reply) => {
    const study = await findStudy(request);
    const query = qidoQuery(request.query as Record<string, unknown>, 'series');
    if (query.ignored.length) reply.header('Warning', warningHeader(query.ignored));
    const series = (await dicomweb.series(study))
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
    const study = await findStudy(request);
    const query = qidoQuery(request.query as Record<string, unknown>, 'instance');
    if (query.ignored.length) reply.header('Warning', warningHeader(query.ignored));
    const rows = (await dicomweb.instances(study, { seriesUid: (request.params as Params).series ?? query.keys.SeriesInstanceUID }))
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
      throw new AppError('not_acceptable', 'this endpoint returns multipart/related; type="application/dicom"');
    }
    const params = request.params as Params;
    // We serve what was stored, byte for byte: a request for another transfer syntax is 406, never something else silently.
    const { rows, open } = await dicomweb.retrieve(request.principal!, params.study, { seriesUid: params.series, sopInstanceUid: params.instance }, {
      accept: (row) => (acceptableInstanceSyntax(accept, row.transfer_syntax_uid) ? undefined : `stored in transfer syntax ${row.transfer_syntax_uid}; ask for it, or transfer-syntax=*`),
    });
    const boundary = randomUUID();
    const out = new PassThrough();
    (async () => {
      for (const row of rows) {
        out.write(`--${boundary}\r\nContent-Type: application/dicom\r\nContent-Length: ${row.size_bytes}\r\n\r\n`);
        for await (const chunk of open(row)) {
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
  const part10 = async (read: (row: { storage_key: string }) => Promise<Buffer>, row: { storage_key: string; sop_class_uid: string; sop_instance_uid: string; transfer_syntax_uid: string }) => {
    const bytes = await read(row);
    if (bytes.length >= 132 && bytes.toString('latin1', 128, 132) === 'DICM') return bytes;
    return Buffer.concat([fileMetaHeader({ sopClassUid: row.sop_class_uid, sopInstanceUid: row.sop_instance_uid, transferSyntaxUid: row.transfer_syntax_uid }), bytes]);
  };
  const instanceUrl = (studyUid: string, seriesUid: string, sopUid: string) => `${base}/dicomweb/studies/${studyUid}/series/${seriesUid}/instances/${sopUid}`;

  /** WADO-RS metadata: the DICOM JSON of every instance in scope; Pixel Data by BulkDataURI (its frames). */
  const metadata = async (request: FastifyRequest, reply: FastifyReply) => {
    const accept = request.headers.accept ?? '*/*';
    if (!/application\/(dicom\+)?json|\*\/\*|application\/\*/i.test(accept)) throw new AppError('not_acceptable', 'metadata is application/dicom+json');
    const params = request.params as Params;
    const { study, rows, read } = await dicomweb.retrieve(request.principal!, params.study, { seriesUid: params.series, sopInstanceUid: params.instance });
    const out: DicomJson[] = [];
    for (const row of rows) {
      const url = instanceUrl(study.study_uid, row.series_uid, row.sop_instance_uid);
      const frames = Array.from({ length: Math.max(1, row.number_of_frames) }, (_, i) => i + 1).join(',');
      try {
        out.push({ ...datasetJson(await part10(read, row), `${url}/frames/${frames}`), '00081190': ur(url) });
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
    const { rows: [row], read } = await dicomweb.retrieve(request.principal!, params.study, { seriesUid: params.series, sopInstanceUid: params.instance }, {
      accept: (r) => {
        if (!r.rows) return undefined; // answered 404 below
        const syntax = transferSyntax(r.transfer_syntax_uid);
        return syntax && acceptableFrameSyntax(request.headers.accept, syntax) ? undefined : `frames are stored in ${syntax?.name ?? r.transfer_syntax_uid}; ask for that media type or transfer-syntax=*`;
      },
    });
    if (!row.rows) throw new AppError('image_not_found', 'this instance has no pixel data (report, key objects or presentation state)');
    const over = numbers.find((n) => n > Math.max(1, row.number_of_frames));
    if (over) throw new AppError('image_not_found', `frame ${over} does not exist; the instance has ${Math.max(1, row.number_of_frames)}`);
    const syntax = transferSyntax(row.transfer_syntax_uid)!;
    const served = acceptableFrameSyntax(request.headers.accept, syntax)!;
    let frames: Uint8Array[];
    try {
      const parsed = await parsePixels(await part10(read, row));
      frames = numbers.map((n) => {
        const bytes = parsed.frameBytes(n - 1);
        return syntax.bigEndian && parsed.info.bitsAllocated === 16 ? Buffer.from(bytes).swap16() : bytes;
      });
    } catch (err) {
      if (!isPixelDataError(err)) throw err;
      throw new AppError('not_acceptable', `frames of this image cannot be served: ${err.message}`);
    }
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
