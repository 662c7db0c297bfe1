import { pino, type LoggerOptions } from 'pino';

/**
 * JSON logs. Patient data never goes in: code logs internal ids only, and these paths are
 * redacted as a second line of defence should a DICOM attribute ever reach a log call.
 */
export const REDACT_PATHS = [
  'patientName', 'patientId', 'patientBirthDate', 'accessionNumber',
  '*.patientName', '*.patientId', '*.patientBirthDate', '*.accessionNumber',
  'req.headers.authorization', 'req.headers["x-api-key"]', 'req.headers.cookie', 'password', '*.password',
];

/** Request lines keep the path but not the query: QIDO queries carry patient names and IDs. */
function serializeRequest(req: { method?: string; url?: string; id?: string; ip?: string }) {
  const url = req.url ?? '';
  const query = url.indexOf('?');
  return { method: req.method, url: query < 0 ? url : `${url.slice(0, query)}?[query omitted]`, remoteAddress: req.ip };
}

export function loggerOptions(level: string, name: string): LoggerOptions {
  return { level, name, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, serializers: { req: serializeRequest } };
}

export function createLogger(level: string, name: string) {
  return pino(loggerOptions(level, name));
}

export type Logger = ReturnType<typeof createLogger>;
