// @ts-expect-error no type declarations ship with this package
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import type { TestSystem } from '../helpers/system.js';

export { PASSWORD, login, type Session } from '../helpers/session.js';
export { corruptJpegLossless } from '../helpers/dicom.js';
export { waitFor } from '../helpers/processes.js';
import { PASSWORD, type Session } from '../helpers/session.js';

export async function call(url: string, session: Session | undefined, path: string, init: { method?: string; csrf?: boolean } = {}) {
  const headers: Record<string, string> = {};
  if (session) headers.cookie = session.cookie;
  const method = init.method ?? 'GET';
  if (session && init.csrf !== false && method !== 'GET') headers['x-csrf-token'] = session.csrfToken;
  const res = await fetch(`${url}${path}`, { method, headers });
  const text = await res.text();
  let json: any;
  try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
  return { status: res.status, headers: res.headers, text, json };
}

export async function addUsers(system: TestSystem) {
  // ops runs the deployment (pause, drain, bull-board: superadmin); test/admin/scoping.test.ts covers site admins.
  await system.core.services.auth.createUser({ username: 'ops', password: PASSWORD, role: 'superadmin', siteIds: ['site-a'] });
  await system.core.services.auth.createUser({ username: 'rad', password: PASSWORD, role: 'radiologist', siteIds: ['site-a', 'site-b'] });
}

export interface Sample { name: string; labels: Record<string, string>; value: number }

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$/;
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\[\\"n])*)"\s*(,|$)/y;

function parseValue(raw: string): number {
  // Prometheus reads values with Go's strconv.ParseFloat: Inf and NaN in any case (prom-client writes "Nan").
  if (/^\+?inf$/i.test(raw)) return Infinity;
  if (/^-inf$/i.test(raw)) return -Infinity;
  if (/^nan$/i.test(raw)) return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(raw)) throw new Error(`bad sample value "${raw}"`);
  return Number(raw);
}

/**
 * Parses Prometheus text exposition format 0.0.4 strictly: HELP/TYPE comments, sample lines with
 * escaped label values, every sample inside a declared family with the suffixes its type allows
 * (_bucket/_sum/_count for histograms). Also runs a third-party parser over the same text, which
 * throws on malformed input. Throws on anything it does not accept.
 */
export function parseMetrics(text: string): { families: Map<string, string>; samples: Sample[] } {
  parsePrometheusTextFormat(text);
  const families = new Map<string, string>();
  const samples: Sample[] = [];
  if (!text.endsWith('\n')) throw new Error('exposition must end with a newline');
  for (const [i, line] of text.split('\n').entries()) {
    if (line === '') continue;
    const where = `line ${i + 1}: ${line.slice(0, 120)}`;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m) continue; // other comments are allowed
      if (!NAME.test(m[2])) throw new Error(`bad metric name, ${where}`);
      if (m[1] === 'TYPE') {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(m[3])) throw new Error(`bad type, ${where}`);
        if (families.has(m[2])) throw new Error(`family declared twice, ${where}`);
        families.set(m[2], m[3]);
      }
      continue;
    }
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`bad sample, ${where}`);
    const [, name, , labelText, rawValue] = m;
    const labels: Record<string, string> = {};
    if (labelText) {
      LABEL.lastIndex = 0;
      while (LABEL.lastIndex < labelText.length) {
        const start = LABEL.lastIndex;
        const l = LABEL.exec(labelText);
        if (!l || l.index !== start) throw new Error(`bad labels, ${where}`);
        if (l[1] in labels) throw new Error(`label twice, ${where}`);
        labels[l[1]] = l[2].replace(/\\(["\\n])/g, (_, c) => (c === 'n' ? '\n' : c));
      }
    }
    const family = families.get(name) ?? [...families.entries()].find(([f, type]) =>
      (type === 'histogram' && [`${f}_bucket`, `${f}_sum`, `${f}_count`].includes(name)) || (type === 'summary' && [`${f}_sum`, `${f}_count`].includes(name)))?.[1];
    if (!family) throw new Error(`sample outside a declared family, ${where}`);
    if (name.endsWith('_bucket') && !('le' in labels)) throw new Error(`bucket without le, ${where}`);
    samples.push({ name, labels, value: parseValue(rawValue) });
  }
  return { families, samples };
}

/** Sum of the samples named `name` whose labels include `labels`. */
export function metric(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);
}

export async function scrape(url: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${url}/metrics`, { headers });
  const text = await res.text();
  return { status: res.status, contentType: res.headers.get('content-type'), text, ...(res.status === 200 ? parseMetrics(text) : { families: new Map<string, string>(), samples: [] as Sample[] }) };
}

