import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Core } from '../../core/core.js';
import { FailureReason } from '../../dicom/index.js';
import { PRIORITY, type PriorityName } from '../../core/queue/classify-queue.js';
import type { IngestContext, IngestOutcome } from '../../core/services/ingest.service.js';
import { stage } from '../../core/stage-timing.js';
import { parseMediaType } from '../lib/media-type.js';
import { ClientTimeoutError, readBody, receiveMultipart, RequestTooLargeError } from '../lib/receive.js';
import { stowResponse, type RequestFailure } from '../lib/stow-response.js';
import type { GateRefusal, UploadGate } from '../lib/upload-gate.js';
import type { Authenticate } from '../plugins/auth.js';

const RETRY_AFTER_SEC = 5;

/** `?priority=stat` or `X-Priority: stat` overrides what the DICOM says. */
function requestedPriority(request: FastifyRequest): number | undefined | Error {
  const query = (request.query as Record<string, string | undefined>).priority;
  const header = request.headers['x-priority'];
  const value = (query ?? (typeof header === 'string' ? header : undefined))?.toLowerCase();
  if (value === undefined) return undefined;
  if (value in PRIORITY) return PRIORITY[value as PriorityName];
  return new Error(`priority must be one of ${Object.keys(PRIORITY).join(', ')}`);
}

function refuseBusy(reply: FastifyReply, refusal: GateRefusal) {
  reply.header('Retry-After', String(refusal.retryAfterSec));
  return reply.code(refusal.status).send({ error: refusal.status === 429 ? 'Too Many Requests' : 'Service Unavailable', message: refusal.message });
}

/** Real senders' boundaries: Orthanc's is 73 characters (two UUIDs). RFC 2046 says 70; we take up to 256. */
export const MAX_BOUNDARY_LENGTH = 256;

const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 408: 'Request Timeout', 413: 'Payload Too Large', 415: 'Unsupported Media Type' };

export function stowRoutes(app: FastifyInstance, core: Core, gate: UploadGate, authenticate: Authenticate) {
  // Uploads come from hospitals' systems with their site key; every upload belongs to that one site.
  const auth = authenticate({ apiKey: true });
  const { ingest } = core.services;
  const limits = core.config.limits;

  /**
   * Every 4xx of an upload says why, in the answer, in the log (no patient data: reasons are ours)
   * and in ft_http_rejections_total{reason}: a sender that only reports "Bad request" can be diagnosed.
   */
  const refuse = (request: FastifyRequest, reply: FastifyReply, status: number, reason: string, message: string) => {
    app.metrics.httpRejections.inc({ reason });
    request.log.warn({ status, reason, message }, 'upload refused');
    (reply as FastifyReply & { rejectionCounted?: boolean }).rejectionCounted = true;
    return reply.code(status).send({ error: STATUS_TEXT[status] ?? 'Bad Request', message });
  };
  /** A 4xx whose body lists per-instance reasons (409 STOW, 422 single upload): counted and logged once. */
  const markRefused = (request: FastifyRequest, reply: FastifyReply, reason: string, reasons: string[]) => {
    app.metrics.httpRejections.inc({ reason });
    request.log.warn({ reason, reasons: [...new Set(reasons)].slice(0, 10) }, 'upload refused');
    (reply as FastifyReply & { rejectionCounted?: boolean }).rejectionCounted = true;
  };
  /** 4xx answered before our handler ran (sign-in, schema): counted by status. */
  const countOtherRejections = async (request: FastifyRequest, reply: FastifyReply) => {
    if (reply.statusCode < 400 || reply.statusCode >= 500 || (reply as FastifyReply & { rejectionCounted?: boolean }).rejectionCounted) return;
    const reason = reply.statusCode === 401 ? 'unauthenticated' : reply.statusCode === 403 ? 'forbidden' : `status_${reply.statusCode}`;
    app.metrics.httpRejections.inc({ reason });
    request.log.warn({ status: reply.statusCode, reason }, 'upload refused');
  };

  /** The request body, cut off when the client is too slow or sends too much (see readBody); the socket's own idle timer is off meanwhile. */
  const clientBody = (request: FastifyRequest, startedAt: number, maxBytes: number, endpoint: 'stow' | 'instances') => {
    request.raw.socket.setTimeout(0);
    return readBody(request.raw, { idleMs: limits.idleTimeoutMs, totalMs: limits.requestTimeoutMs, startedAt, maxBytes, counted: app.metrics.bytesCounter(endpoint) });
  };

  const stow = async (request: FastifyRequest, reply: FastifyReply) => {
    const startedAt = Date.now();
    const mediaType = parseMediaType(request.headers['content-type']);
    if (mediaType?.essence !== 'multipart/related') {
      return refuse(request, reply, 415, 'not_multipart_related', 'STOW-RS takes multipart/related; type="application/dicom"');
    }
    const partType = mediaType.params.type?.toLowerCase();
    if (partType !== 'application/dicom') {
      return refuse(request, reply, 415, 'part_type_not_dicom', `the type parameter must be "application/dicom"${partType ? `, got "${partType}" (metadata + bulk data is not supported)` : ''}`);
    }
    if (mediaType.repeated.length) {
      return refuse(request, reply, 400, 'repeated_parameter', `Content-Type gives ${mediaType.repeated.join(', ')} more than once`);
    }
    const boundary = mediaType.params.boundary;
    if (!boundary) return refuse(request, reply, 400, 'no_boundary', 'multipart/related needs a boundary parameter');
    if (boundary.length > MAX_BOUNDARY_LENGTH) {
      return refuse(request, reply, 400, 'boundary_too_long', `the multipart boundary is ${boundary.length} characters; at most ${MAX_BOUNDARY_LENGTH} are accepted`);
    }
    const priority = requestedPriority(request);
    if (priority instanceof Error) return refuse(request, reply, 400, 'bad_priority', priority.message);
    const refused = await gate.enter(request.principal!.id);
    if (refused) return refuseBusy(reply, refused);

    const ctx: IngestContext = { origin: 'stow', siteId: request.principal!.siteIds[0], actorId: request.principal!.id, expectedStudyUid: (request.params as { study?: string }).study, priority };
    let received: Awaited<ReturnType<typeof receiveMultipart>>;
    try {
      received = await stage('receive-all', receiveMultipart(clientBody(request, startedAt, limits.maxRequestBytes, 'stow'), boundary, ingest, ctx));
    } finally {
      gate.leave(request.principal!.id);
    }
    const { outcomes, error } = received;
    app.metrics.countOutcomes(outcomes);
    const extra: RequestFailure[] = [];
    if (error) {
      // Stop reading a body we refuse; the client must not keep sending into the void.
      reply.header('Connection', 'close');
      const tooLarge = error instanceof RequestTooLargeError;
      if (!outcomes.some((o) => o.status !== 'failed')) {
        if (error instanceof ClientTimeoutError) return refuse(request, reply, 408, 'client_timeout', error.message);
        return tooLarge
          ? refuse(request, reply, 413, 'request_too_large', error.message)
          : refuse(request, reply, 400, 'malformed_multipart', error.message);
      }
      extra.push({ failureReason: tooLarge ? FailureReason.OutOfResources : FailureReason.CannotUnderstand, reason: `${error.message}; parts after that point were not read` });
    }
    if (outcomes.length === 0) return refuse(request, reply, 400, 'no_parts', 'the multipart body holds no parts');
    const { status, body } = stowResponse(core.config.publicUrl, outcomes, extra);
    if (status === 503 || status === 507) reply.header('Retry-After', String(RETRY_AFTER_SEC));
    if (status === 409) markRefused(request, reply, 'instances_refused', [...outcomes.flatMap((o) => (o.status === 'failed' ? [o.reason] : [])), ...extra.map((f) => f.reason)]);
    request.log.info({ stored: outcomes.filter((o) => o.status === 'stored').length, duplicates: outcomes.filter((o) => o.status === 'duplicate').length, failed: outcomes.filter((o) => o.status === 'failed').length }, 'stow');
    // Not part of PS3.18: tells a sender how many parts were identical resends (stored before, not queued again).
    reply.header('X-Duplicate-Count', String(outcomes.filter((o) => o.status === 'duplicate').length));
    return reply.code(status).type('application/dicom+json').send(body);
  };

  const schema = {
    tags: ['DICOMweb'],
    summary: 'STOW-RS: store instances',
    description: 'Body: multipart/related; type="application/dicom"; one DICOM Part 10 file per part. Response: application/dicom+json (PS3.18 §10.5.3). 200 all stored; 202 some failed or stored with a warning; 409 none stored.',
    querystring: { type: 'object', properties: { priority: { type: 'string', enum: Object.keys(PRIORITY) } } },
    security: [{ apiKey: [] }],
  };
  app.post('/dicomweb/studies', { schema, onRequest: auth, onResponse: countOtherRejections }, stow);
  app.post('/dicomweb/studies/:study', { schema: { ...schema, summary: 'STOW-RS: store instances of one study', params: { type: 'object', properties: { study: { type: 'string' } } } }, onRequest: auth, onResponse: countOtherRejections }, stow);

  app.post('/api/instances', {
    onRequest: auth,
    onResponse: countOtherRejections,
    schema: {
      tags: ['Upload'],
      summary: 'Store one DICOM file (body: application/dicom)',
      description: '201 stored; 200 already stored (identical resend) or stored earlier with other bytes (see "warning"); 422 refused with reason; 413 too large; 415 wrong type.',
      querystring: { type: 'object', properties: { priority: { type: 'string', enum: Object.keys(PRIORITY) } } },
      security: [{ apiKey: [] }],
    },
  }, async (request, reply) => {
    const essence = parseMediaType(request.headers['content-type'])?.essence;
    if (essence !== 'application/dicom') {
      return refuse(request, reply, 415, 'not_application_dicom', 'send one DICOM file with Content-Type: application/dicom');
    }
    const priority = requestedPriority(request);
    if (priority instanceof Error) return refuse(request, reply, 400, 'bad_priority', priority.message);
    const declared = Number(request.headers['content-length'] ?? 0);
    if (declared > limits.maxPartBytes) {
      reply.header('Connection', 'close');
      return refuse(request, reply, 413, 'request_too_large', `file larger than the ${Math.round(limits.maxPartBytes / 1024 / 1024)} MB limit`);
    }
    const refused = await gate.enter(request.principal!.id);
    if (refused) return refuseBusy(reply, refused);
    let outcome: IngestOutcome;
    try {
      outcome = await ingest.receive(clientBody(request, Date.now(), limits.maxPartBytes, 'instances'), {
        origin: 'api', siteId: request.principal!.siteIds[0], actorId: request.principal!.id, priority,
      });
    } catch (error) {
      if (error instanceof ClientTimeoutError) {
        reply.header('Connection', 'close');
        return refuse(request, reply, 408, 'client_timeout', error.message);
      }
      if (!(error instanceof RequestTooLargeError)) throw error;
      app.metrics.countOutcomes([{ status: 'failed' }]);
      reply.header('Connection', 'close');
      return refuse(request, reply, 413, 'request_too_large', `file larger than the ${Math.round(limits.maxPartBytes / 1024 / 1024)} MB limit`);
    } finally {
      gate.leave(request.principal!.id);
    }
    app.metrics.countOutcomes([outcome]);
    if (outcome.status === 'failed') {
      const code = outcome.failureReason === FailureReason.OutOfResources ? 507 : outcome.failureReason === FailureReason.ProcessingFailure ? 503 : 422;
      if (outcome.retryable) reply.header('Retry-After', String(RETRY_AFTER_SEC));
      if (code === 422) markRefused(request, reply, 'instance_refused', [outcome.reason]);
      return reply.code(code).send({ status: 'failed', failureReason: `0x${outcome.failureReason.toString(16).toUpperCase().padStart(4, '0')}`, message: outcome.reason });
    }
    const { status: outcomeStatus, ...ids } = outcome;
    return reply.code(outcomeStatus === 'stored' ? 201 : 200).send({
      status: outcomeStatus,
      ...ids,
      retrieveUrl: `${core.config.publicUrl}/dicomweb/studies/${ids.studyInstanceUid}/series/${ids.seriesInstanceUid}/instances/${ids.sopInstanceUid}`,
      ...(outcome.status === 'conflict' ? { warning: outcome.reason } : {}),
    });
  });
}
