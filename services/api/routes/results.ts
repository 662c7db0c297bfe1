import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Core } from '../../core/core.js';
import type { DeliveryStatus } from '../../core/db/schema.js';
import { resultsFor } from '../../results/index.js';
import type { Authenticate } from '../plugins/auth.js';

const UID = { type: 'string', pattern: '^[0-9]+(\\.[0-9]+)*$', maxLength: 64 } as const;

/**
 * AI results for integrators (site API key): a study's result by Study Instance UID or accession
 * number. And, for admins, the deliveries of results to the hospital's systems, with retry.
 */
export function resultsRoutes(app: FastifyInstance, core: Core, authenticate: Authenticate) {
  const results = resultsFor(core).service;
  const integrator = authenticate({ apiKey: true, session: true });
  const adminOnly = authenticate({ session: true, roles: ['admin'] });
  const tags = ['Results'];
  const audit = (request: FastifyRequest, siteId: string, targetId: string) => core.repos.audit.record({
    actor_type: request.principal!.type === 'user' ? 'user' : 'api_key', actor_id: request.principal!.id, site_id: siteId,
    action: 'results.read', target_type: 'study', target_id: targetId,
  });

  app.get('/api/results/studies/:studyUid', {
    onRequest: integrator,
    schema: { tags, summary: "A study's AI result (the webhook body), its state and deliveries; 404 when the study is not one of the key's site", params: { type: 'object', required: ['studyUid'], properties: { studyUid: UID } } },
  }, async (request, reply) => {
    const { studyUid } = request.params as { studyUid: string };
    for (const siteId of request.principal!.siteIds) {
      const [study] = await results.studyResults(siteId, { studyUid });
      if (study) {
        await audit(request, siteId, studyUid);
        return study;
      }
    }
    return reply.code(404).send({ error: 'Not Found', message: 'no such study for this site' });
  });

  app.get('/api/results', {
    onRequest: integrator,
    schema: { tags, summary: 'AI results of the studies with this accession number', querystring: { type: 'object', required: ['accession'], properties: { accession: { type: 'string', minLength: 1, maxLength: 64 } } } },
  }, async (request) => {
    const { accession } = request.query as { accession: string };
    const studies = [];
    for (const siteId of request.principal!.siteIds) {
      const found = await results.studyResults(siteId, { accession });
      for (const study of found) await audit(request, siteId, study.studyInstanceUid);
      studies.push(...found);
    }
    return { studies };
  });

  app.get('/api/admin/results/deliveries', {
    onRequest: adminOnly,
    schema: {
      tags: ['Admin'], summary: 'Result deliveries (SR/SC to PACS, webhooks): counts, mean latency, latest first; status = queued | retrying | sent | failed',
      querystring: { type: 'object', properties: { status: { type: 'string', enum: ['queued', 'retrying', 'sent', 'failed'] }, limit: { type: 'integer', minimum: 1, maximum: 500 } } },
    },
  }, async (request, reply) => {
    reply.header('Cache-Control', 'no-store');
    const { status, limit } = request.query as { status?: DeliveryStatus; limit?: number };
    return results.deliveries({ status, limit });
  });

  app.post('/api/admin/results/deliveries/:id/retry', {
    onRequest: adminOnly,
    schema: { tags: ['Admin'], summary: 'Send a failed or retrying delivery again now; audited', params: { type: 'object', required: ['id'], properties: { id: { type: 'integer', minimum: 1 } } } },
  }, async (request, reply) => {
    const { id } = request.params as { id: number };
    const delivery = await results.retryDelivery(id);
    if (!delivery) return reply.code(404).send({ error: 'Not Found', message: `no delivery ${id}` });
    await core.repos.audit.record({ actor_type: 'user', actor_id: request.principal!.id, site_id: delivery.site_id, action: 'results.delivery.retry', target_type: 'delivery', target_id: String(id) });
    return { id, status: delivery.status };
  });
}
