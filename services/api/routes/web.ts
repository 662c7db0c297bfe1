import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Core } from '../../core/core.js';

/**
 * The Content-Security-Policy of the web app: no inline script or style, nothing from other
 * origins. 'wasm-unsafe-eval' lets the image loader compile its WebAssembly codecs (JPEG 2000,
 * JPEG-LS, JPEG) and connect-src data: lets it read them from the data: URLs they are bundled as;
 * its decode worker is served from /assets (worker-src 'self').
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "worker-src 'self'",
  "connect-src 'self' data:",
  "img-src 'self' data: blob:",
  "style-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * The image loader's decode worker (/assets/index.worker.bundle.min.worker.js) gets its own,
 * narrower policy: its Emscripten codecs (OpenJPEG for JPEG 2000, CharLS) build their bindings
 * with `new Function`, so the worker, and only the worker, may evaluate strings. It has no DOM,
 * can fetch nothing but its own origin and data: URLs, and only ever sees pixel data.
 */
export const LOADER_WORKER_PATH = '/assets/index.worker.bundle.min.worker.js';
export const WORKER_CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self' 'unsafe-eval' 'wasm-unsafe-eval'",
  "connect-src 'self' data:",
].join('; ');

/** The built web app: web/dist under the repository root, found from this file (source or dist/). */
export function webDistDir(): string {
  if (process.env.WEB_DIST) return path.resolve(process.env.WEB_DIST);
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'web'))) return path.join(dir, 'web', 'dist');
    dir = path.dirname(dir);
  }
  return path.resolve('web/dist');
}

const isDocs = (request: FastifyRequest) => request.url === '/docs' || request.url.startsWith('/docs/');

/**
 * Serves the radiologist viewer (/) and the admin page (/admin.html) from web/dist, and sets the
 * security headers on every response except the Swagger UI at /docs (which needs inline script).
 */
export async function webRoutes(app: FastifyInstance, core: Core) {
  app.addHook('onSend', async (request, reply, payload) => {
    reply.header('X-Content-Type-Options', 'nosniff');
    reply.header('Referrer-Policy', 'no-referrer');
    reply.header('Cross-Origin-Resource-Policy', 'same-origin');
    if (!isDocs(request)) {
      reply.header('Content-Security-Policy', request.url.split('?')[0] === LOADER_WORKER_PATH ? WORKER_CONTENT_SECURITY_POLICY : CONTENT_SECURITY_POLICY);
      reply.header('X-Frame-Options', 'DENY');
      reply.header('Cross-Origin-Opener-Policy', 'same-origin');
      reply.header('Permissions-Policy', 'camera=(), microphone=(), geolocation=(), payment=()');
    }
    if (request.protocol === 'https') reply.header('Strict-Transport-Security', 'max-age=31536000');
    return payload;
  });

  const root = webDistDir();
  if (!fs.existsSync(path.join(root, 'index.html'))) {
    core.log.warn({ root }, 'web app not built (npm run build:web); / answers 503');
    app.get('/', { schema: { hide: true } }, async (_request, reply) => reply.code(503).type('text/plain')
      .send('The web app is not built. Run "npm run build:web" (or "npm run build") and restart.'));
    return;
  }
  app.get('/admin', { schema: { hide: true } }, async (_request, reply) => reply.redirect('/admin.html'));
  await app.register(async (web) => {
    await web.register(fastifyStatic, {
      root,
      prefix: '/',
      decorateReply: false,
      cacheControl: false,
      index: ['index.html'],
      // Hashed bundles never change; the HTML pages are always re-checked.
      setHeaders: (res, file) => {
        res.setHeader('Cache-Control', /[\\/]assets[\\/]/.test(file) && !file.endsWith('.worker.js') ? 'public, max-age=31536000, immutable' : 'no-cache');
      },
    });
  });
}
