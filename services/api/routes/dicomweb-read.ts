import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Authenticate } from '../plugins/auth.js';
import { randomUUID } from 'node:crypto';
import { PassThrough } from 'node:stream';
import type { Core } from '../../core/core.js';
import { AppError } from '../../core/errors.js';
import type { StudyRecord } from '../../core/services/dicomweb.service.js';
import { cs, da, is, pn, sh, tm, ui, ur, lo, type DicomJson } from '../lib/dicom-json.js';

type Params = { study: string; series?: string; instance?: string };

/**
 * QIDO-RS (search) and WADO-RS (retrieve) for the caller's own site. Another site's study is
 * indistinguishable from one that does not exist (404), so a key cannot probe for UIDs.
 */
export function dicomwebReadRoutes(app: FastifyInstance, core: Core, authenticate: Authenticate) {
  // Integrators with a site key, and signed-in users (the viewer loads images through these routes).
  const auth = authenticate({ apiKey: true, session: true });
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
    const q = request.query as Record<string, string | number | undefined>;
    const [from, to] = typeof q.StudyDate === 'string' ? (q.StudyDate.includes('-') ? q.StudyDate.split('-') : [q.StudyDate, q.StudyDate]) : [];
    const { studies, counts } = await dicomweb.searchStudies(request.principal!, {
      studyUid: q.StudyInstanceUID as string | undefined,
      patientId: q.PatientID as string | undefined,
      patientName: q.PatientName as string | undefined,
      accessionNumber: q.AccessionNumber as string | undefined,
      studyDateFrom: from || undefined,
      studyDateTo: to || undefined,
    }, Number(q.limit ?? 100), Number(q.offset ?? 0));
    if (!studies.length) return reply.code(204).send();
    return reply.type('application/dicom+json').send(studies.map((s) => studyJson(s, counts.get(s.id))));
  });

  const findStudy = (request: FastifyRequest) => dicomweb.study(request.principal!, (request.params as Params).study);

  app.get('/dicomweb/studies/:study/series', { onRequest: auth, schema: { tags, security, summary: 'QIDO-RS: series of a study' } }, async (request, reply) => {
    const study = await findStudy(request);
    const series = await dicomweb.series(study);
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
    const rows = await dicomweb.instances(study, { seriesUid: (request.params as Params).series });
    return reply.type('application/dicom+json').send(rows.map((i) => ({
      '00080016': ui(i.sop_class_uid),
      '00080018': ui(i.sop_instance_uid),
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
    const { rows, open } = await dicomweb.retrieve(request.principal!, params.study, { seriesUid: params.series, sopInstanceUid: params.instance });
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
}
