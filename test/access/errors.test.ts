import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError, ERROR_CATALOGUE } from '../../services/core/errors.js';
import { errorHandler } from '../../services/api/plugins/errors.js';

/** The one place errors become HTTP (services/api/plugins/errors.ts), on a bare Fastify app. */
describe('error catalogue → HTTP', () => {
  const app = Fastify({ logger: false });
  beforeAll(async () => {
    app.setErrorHandler(errorHandler);
    app.get('/study', async () => { throw new AppError('study_not_found'); });
    app.get('/job', async () => { throw new AppError('job_state_conflict', 'job is active, only failed jobs can be retried'); });
    app.get('/busy', async () => { throw new AppError('unavailable', 'try later', { retryAfterSec: 5 }); });
    app.get('/crash', async () => { throw new Error('database file is locked: /secret/path'); });
    app.get('/typed', { schema: { querystring: { type: 'object', properties: { n: { type: 'integer' } } } } }, async () => ({ ok: true }));
    await app.ready();
  });
  afterAll(() => app.close());

  it('answers a catalogued error with its status, the status text, its message and code', async () => {
    const res = await app.inject('/study');
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ error: 'Not Found', message: 'no such study', code: 'study_not_found' });
    expect(res.headers['retry-after']).toBeUndefined();
    const conflict = await app.inject('/job');
    expect(conflict.statusCode).toBe(409);
    expect(conflict.json()).toEqual({ error: 'Conflict', message: 'job is active, only failed jobs can be retried', code: 'job_state_conflict' });
  });

  it('tells the client when to retry a retryable error', async () => {
    const res = await app.inject('/busy');
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('5');
    expect(ERROR_CATALOGUE.unavailable.retryable).toBe(true);
  });

  it('answers anything unexpected 503 + Retry-After, without its internals', async () => {
    const res = await app.inject('/crash');
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('10');
    expect(res.body).not.toContain('/secret/path');
    expect(res.json()).toMatchObject({ error: 'Service Unavailable' });
  });

  it("keeps Fastify's own 4xx (validation) as they were", async () => {
    const res = await app.inject('/typed?n=abc');
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'FST_ERR_VALIDATION' });
  });
});
