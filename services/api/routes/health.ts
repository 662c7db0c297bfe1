import type { FastifyInstance } from 'fastify';
import type { Core } from '../../core/core.js';

/**
 * Liveness and readiness; the only routes without credentials.
 *
 * /readyz is the API's readiness: Redis and the database answer (uploads can be stored and
 * queued). Whether a model is loaded is known only from worker heartbeats; it is reported
 * (`model`, `workers`) but does not make the API unready by default, since uploads are still
 * accepted and queued while no worker runs. `?model=required` makes it count (503 until at least
 * one live worker has a model loaded), for deploy scripts and tests that wait for the pipeline.
 */
export function healthRoutes(app: FastifyInstance, core: Core) {
  app.get('/healthz', { schema: { tags: ['Operations'], summary: 'Process is up' } }, async () => ({ status: 'ok' }));

  app.get('/readyz', {
    schema: {
      tags: ['Operations'],
      summary: 'Redis and the database answer and the data disk has room; reports live workers, their model and demo mode',
      querystring: { type: 'object', properties: { model: { type: 'string', enum: ['required', 'optional'] } } },
    },
  }, async (request, reply) => {
    const admin = core.services.queueAdmin;
    const [{ redis, database }, space] = await Promise.all([admin.health(), admin.disk()]);
    // A full data disk cannot store uploads: not ready, so a load balancer sends them elsewhere.
    const disk = space === null ? 'unknown' : space.freeBytes < core.config.limits.minFreeDiskBytes ? 'full' : 'ok';
    const workers = redis === 'ok' ? await admin.workers().catch(() => null) : null;
    const alive = (workers ?? []).filter((w) => w.alive && w.modelVersion);
    const models = [...new Map(alive.map((w) => [`${w.modelName}@${w.modelVersion}/${w.backend}`, { name: w.modelName, version: w.modelVersion, backend: w.backend }])).values()];
    const model = workers === null ? 'unknown' : alive.length ? 'loaded' : 'no live worker';
    const requireModel = (request.query as { model?: string }).model === 'required';
    const ready = redis === 'ok' && database === 'ok' && disk !== 'full' && (!requireModel || model === 'loaded');
    return reply.code(ready ? 200 : 503).send({
      status: ready ? 'ready' : 'not ready',
      redis,
      database,
      disk,
      /** Demo mode (demo site, key and users): the web app shows a banner. */
      demo: core.config.demo,
      model,
      models,
      workers: workers === null ? null : { alive: alive.length, total: workers.length },
    });
  });
}
