import Fastify, { type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import underPressure from '@fastify/under-pressure';
import { randomUUID } from 'node:crypto';
import type { Core } from '../core/core.js';
import { loggerOptions } from '../core/logger.js';
import { UploadGate } from './lib/upload-gate.js';
import cookie from '@fastify/cookie';
import { createAuthenticate } from './plugins/auth.js';
import { errorHandler } from './plugins/errors.js';
import { authRoutes } from './routes/auth.js';
import { dicomwebReadRoutes } from './routes/dicomweb-read.js';
import { adminRoutes } from './routes/admin.js';
import { healthRoutes } from './routes/health.js';
import { metricsRoutes } from './routes/metrics.js';
import { stowRoutes } from './routes/stow.js';
import { eventRoutes } from './routes/events.js';
import { reviewRoutes } from './routes/reviews.js';
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
    trustProxy: core.config.trustProxy,
  });

  await app.register(underPressure, {
    maxEventLoopDelay: 1_000,
    retryAfter: 10,
    message: 'server under load; retry later',
    exposeStatusRoute: false,
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
  const gate = new UploadGate(limits.maxConcurrentUploads);
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
  eventRoutes(app, core, authenticate);
  await webRoutes(app, core);
  return app;
}
