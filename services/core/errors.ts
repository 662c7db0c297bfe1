/**
 * Every error a service raises on purpose, in one catalogue: a stable code, the HTTP status it
 * becomes (mapped in one place, services/api/plugins/errors.ts), and whether the same request may
 * succeed later (the API then adds Retry-After). Services throw `new AppError('study_not_found')`
 * or with a message that says more; they never build HTTP bodies.
 */
export const ERROR_CATALOGUE = {
  bad_request: { httpStatus: 400, retryable: false, message: 'the request is not valid' },
  unauthorized: { httpStatus: 401, retryable: false, message: 'sign in first' },
  forbidden: { httpStatus: 403, retryable: false, message: 'not allowed' },
  study_not_found: { httpStatus: 404, retryable: false, message: 'no such study' },
  image_not_found: { httpStatus: 404, retryable: false, message: 'no such image' },
  review_not_found: { httpStatus: 404, retryable: false, message: 'the study has no decision to undo' },
  heatmap_not_found: { httpStatus: 404, retryable: false, message: 'no heat map for this image' },
  job_not_found: { httpStatus: 404, retryable: false, message: 'no such job' },
  user_not_found: { httpStatus: 404, retryable: false, message: 'no such user' },
  key_not_found: { httpStatus: 404, retryable: false, message: 'no such API key' },
  not_acceptable: { httpStatus: 406, retryable: false, message: 'cannot answer in a media type the client accepts' },
  request_timeout: { httpStatus: 408, retryable: true, message: 'the request body did not arrive in time' },
  job_state_conflict: { httpStatus: 409, retryable: false, message: 'the job is not in a state that allows this' },
  payload_too_large: { httpStatus: 413, retryable: false, message: 'the request is larger than allowed' },
  unsupported_media_type: { httpStatus: 415, retryable: false, message: 'unsupported media type' },
  too_many_requests: { httpStatus: 429, retryable: true, message: 'too many requests; try again later' },
  unavailable: { httpStatus: 503, retryable: true, message: 'the server could not complete the request; retry later' },
} as const satisfies Record<string, { httpStatus: number; retryable: boolean; message: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export class AppError extends Error {
  readonly httpStatus: number;
  readonly retryable: boolean;

  constructor(readonly code: ErrorCode, message?: string, readonly opts: { retryAfterSec?: number } = {}) {
    super(message ?? ERROR_CATALOGUE[code].message);
    this.httpStatus = ERROR_CATALOGUE[code].httpStatus;
    this.retryable = ERROR_CATALOGUE[code].retryable;
  }
}

export function isAppError(error: unknown): error is AppError {
  return error instanceof AppError;
}
