import Fastify, { type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { randomUUID } from 'node:crypto';
import type { Core } from '../core/core.js';
import { loggerOptions } from '../core/logger.js';
import { UploadGate } from './lib/upload-gate.js';
import cookie from '@fastify/cookie';
import { createAuthenticate } from './plugins/auth.js';
import { connectionCap, eventLoopGuard, guardConnections } from './plugins/connection-guard.js';
import { errorHandler } from './plugins/errors.js';
import { authRoutes } from './routes/auth.js';
import { dicomwebReadRoutes } from './routes/dicomweb-read.js';
import { adminRoutes } from './routes/admin.js';
import { healthRoutes } from './routes/health.js';
import { metricsRoutes } from './routes/metrics.js';
import { stowRoutes } from './routes/stow.js';
import { eventRoutes } from './routes/events.js';
import { reviewRoutes } from './routes/reviews.js';
import { resultsRoutes } from './routes/results.js';
import { webRoutes } from './routes/web.js';
import { worklistRoutes } from './routes/worklist.js';

/** Builds the HTTP API over a Core. The server entry (server.ts) and the tests both use this. */
export async function buildApp(core: Core): Promise<FastifyInstance> {
  const { limits } = core.config;
  const app = Fastify({
    logger: loggerOptions(core.config.logLevel, 'api'),
    genReqId: (req) => (typeof req.headers['x-request-id'] === 'string' && req.headers['x-request-id'].length <= 64 ? req.headers['x-request-id'] : randomUUID()),
    // A client that goes quiet is cut off; a whole request has an upper bound too.
    connectionTimeout: limits.idleTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    bodyLimit: 1024 * 1024,
    // Only the listed proxies may say who the client is (X-Forwarded-For); nobody when none are listed.
    trustProxy: core.config.trustProxy.length ? core.config.trustProxy : false,
  });
  // Clients that connect and never finish their headers are cut off early; the connection count is capped.
  app.server.headersTimeout = limits.headersTimeoutMs;
  guardConnections(app.server, connectionCap(limits.maxConnections));
  eventLoopGuard(app, { maxDelayMs: 1_000, retryAfterSec: 10 });
  // Answers with patient data (or about sessions and jobs) are never kept by a browser or proxy cache.
  app.addHook('onSend', async (request, reply) => {
    if (/^\/(api|dicomweb|auth|admin)(\/|$)/.test(request.url) && !reply.hasHeader('Cache-Control')) reply.header('Cache-Control', 'no-store');
  });

  await app.register(swagger, {
    openapi: {
      info: {
        title: 'fracture-triage API',
        version: '0.1.0',
        description: 'Decision support for fracture triage on X-rays. Not a medical device: every finding is for a radiologist to confirm.',
      },
      components: {
        securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'Site API key: ft_<id>_<secret>. X-API-Key works too.' } },
      },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  app.setErrorHandler(errorHandler);

  await app.register(cookie);
  const authenticate = createAuthenticate(core.services.apiKeys, core.services.auth);
  const gate = new UploadGate(limits.maxConcurrentUploads, limits.maxConcurrentUploadsPerKey,
    (key) => core.repos.rateLimits.countUpload(key, limits.uploadsPerKeyPerMinute));
  metricsRoutes(app, core);
  healthRoutes(app, core);
  await app.register(async (uploads) => {
    // Upload bodies are streamed by the handlers themselves, whatever their type (a wrong type
    // gets a 415 from the handler, not a parse error): Fastify must not buffer or parse them.
    uploads.removeAllContentTypeParsers();
    uploads.addContentTypeParser('*', (_request, _payload, done) => done(null));
    stowRoutes(uploads, core, gate, authenticate);
  });
  dicomwebReadRoutes(app, core, authenticate);
  authRoutes(app, core, authenticate);
  await adminRoutes(app, core, authenticate);
  worklistRoutes(app, core, authenticate);
  reviewRoutes(app, core, authenticate);
  resultsRoutes(app, core, authenticate);
  eventRoutes(app, core, authenticate);
  await webRoutes(app, core);
  return app;
}
