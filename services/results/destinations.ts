import { randomBytes } from 'node:crypto';
import type { ResultDestination } from '../core/db/schema.js';
import type { NewDestination } from './results.repository.js';

/** A destination as typed on the command line, checked before it is stored. */
export type DestinationSpec =
  | { kind: 'stow'; url: string; headers: string[] }
  | { kind: 'dimse'; target: string }
  | { kind: 'webhook'; url: string; secret?: string };

export class DestinationError extends Error {}

function httpUrl(value: string, what: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new DestinationError(`${what} must be an http(s) URL, got "${value}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new DestinationError(`${what} must be an http(s) URL, got "${value}"`);
  return value.replace(/\/+$/, '');
}

/** `Name: value` → [name, value]; header names are tokens (RFC 9110). */
function header(line: string): [string, string] {
  const match = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):\s*(.*)$/.exec(line);
  if (!match || !match[2]) throw new DestinationError(`--header must look like 'Name: value', got "${line}"`);
  return [match[1], match[2]];
}

/** `AE@host:port`; AE titles are at most 16 characters of printable ASCII without backslash. */
function dimseTarget(value: string): { ae_title: string; host: string; port: number } {
  const match = /^([^@\\]{1,16})@([^:@]+):(\d{1,5})$/.exec(value);
  const port = match ? Number(match[3]) : 0;
  if (!match || port < 1 || port > 65535 || !/^[\x20-\x7e]+$/.test(match[1])) {
    throw new DestinationError(`--dimse must look like AE@host:port (AE title at most 16 characters), got "${value}"`);
  }
  return { ae_title: match[1].trim(), host: match[2], port };
}

/** The row to store, and the webhook secret when we generated one (shown once). */
export function destinationRow(siteId: string, name: string, spec: DestinationSpec): { row: NewDestination; generatedSecret?: string } {
  if (!/^[a-z0-9][a-z0-9._-]{0,62}$/i.test(name)) throw new DestinationError(`destination name must be letters, digits, '.', '_' or '-', got "${name}"`);
  const base = { site_id: siteId, name, url: null, headers: null, ae_title: null, host: null, port: null, secret: null };
  switch (spec.kind) {
    case 'stow':
      return { row: { ...base, kind: 'stow', url: httpUrl(spec.url, '--stow'), headers: spec.headers.length ? JSON.stringify(Object.fromEntries(spec.headers.map(header))) : null } };
    case 'dimse':
      return { row: { ...base, kind: 'dimse', ...dimseTarget(spec.target) } };
    case 'webhook': {
      const generatedSecret = spec.secret ? undefined : randomBytes(24).toString('base64url');
      return { row: { ...base, kind: 'webhook', url: httpUrl(spec.url, 'the webhook URL'), secret: spec.secret ?? generatedSecret! }, generatedSecret };
    }
  }
}

/** One line for `destination:list`: never the secret or header values. */
export function describeDestination(d: ResultDestination): string {
  const target = d.kind === 'dimse' ? `${d.ae_title}@${d.host}:${d.port}` : d.url;
  const extra = d.kind === 'stow' && d.headers ? ` headers: ${Object.keys(JSON.parse(d.headers)).join(', ')}` : d.kind === 'webhook' ? ' signed (HMAC-SHA256)' : '';
  return `${d.site_id}\t${d.name}\t${d.kind}\t${target}${extra}`;
}
