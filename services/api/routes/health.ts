import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import type { Core } from '../../core/core.js';

/** Liveness and readiness; the only routes without credentials. */
export function healthRoutes(app: FastifyInstance, core: Core) {
  app.get('/healthz', { schema: { tags: ['Operations'], summary: 'Process is up' } }, async () => ({ status: 'ok' }));

  app.get('/readyz', { schema: { tags: ['Operations'], summary: 'Redis and the database answer' } }, async (_request, reply) => {
    const withTimeout = <T>(p: Promise<T>) => Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), 1_000))]);
    const [redis, database] = await Promise.all([
      withTimeout(core.redis.ping()).then(() => 'ok', () => 'unreachable'),
      withTimeout(sql`select 1`.execute(core.database.db)).then(() => 'ok', () => 'unreachable'),
    ]);
    const ready = redis === 'ok' && database === 'ok';
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', redis, database });
  });
}
