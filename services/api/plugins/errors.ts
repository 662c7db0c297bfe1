import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../core/errors.js';

/** Retry-After for a retryable error that does not say how long. */
const DEFAULT_RETRY_AFTER_SEC = 10;

/** The body every error answer has: the HTTP status text, a sentence for people, and our code where there is one. */
export interface ErrorBody {
  error: string;
  message: string;
  code?: string;
}

export function errorBody(status: number, message: string, code?: string): ErrorBody {
  return { error: STATUS_CODES[status] ?? 'Error', message, ...(code ? { code } : {}) };
}

/** Sends an AppError as HTTP (for the few hooks that answer without throwing). */
export function sendAppError(reply: FastifyReply, error: AppError) {
  if (error.retryable) reply.header('Retry-After', String(error.opts.retryAfterSec ?? DEFAULT_RETRY_AFTER_SEC));
  return reply.code(error.httpStatus).send(errorBody(error.httpStatus, error.message, error.code));
}

/**
 * The one place errors become HTTP: catalogued errors (services/core/errors.ts) by their status;
 * Fastify's own 4xx (validation, body too large…) as they are; anything else is logged and
 * answered 503 + Retry-After, never a bare 500 with internals.
 */
export function errorHandler(error: FastifyError | AppError | Error, request: FastifyRequest, reply: FastifyReply) {
  if (error instanceof AppError) return sendAppError(reply, error);
  const err = error as { statusCode?: number; message: string; code?: string };
  const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : undefined;
  if (status) return reply.code(status).send({ error: err.code ?? 'Bad Request', message: err.message });
  if (err.code === 'SQLITE_FULL' || err.code === 'ENOSPC') {
    request.log.error({ code: err.code }, 'storage full');
    reply.header('Retry-After', '60');
    return reply.code(507).send(errorBody(507, 'the server has no space left to store this; retry later'));
  }
  request.log.error({ err: error }, 'unhandled error');
  // Storage or database trouble: tell the client to come back.
  return sendAppError(reply, new AppError('unavailable'));
}
