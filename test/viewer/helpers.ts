import type { StudyAiFlag } from '../../services/core/db/schema.js';
import { makeDx, multipart } from '../helpers/dicom.js';
import { stow, type TestSystem } from '../helpers/system.js';

import { login as loginAt, type Session } from '../helpers/session.js';
export { PASSWORD, type Session } from '../helpers/session.js';

export const login = (system: TestSystem, username: string, password?: string) => loginAt(system.url, username, password);

export async function api(system: TestSystem, session: Session | undefined, path: string, init: { method?: string; body?: unknown; csrf?: boolean } = {}) {
  const headers: Record<string, string> = {};
  if (session) headers.cookie = session.cookie;
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  if (session && init.csrf !== false && init.method && init.method !== 'GET') headers['x-csrf-token'] = session.csrfToken;
  const res = await fetch(`${system.url}${path}`, { method: init.method ?? 'GET', headers, body: init.body === undefined ? undefined : JSON.stringify(init.body) });
  const text = await res.text();
  let json: any;
  try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
  return { status: res.status, headers: res.headers, text, json };
}

/** Uploads one DX study through STOW with the site's key; returns its database id. */
export async function addStudy(system: TestSystem, site: 'a' | 'b', opts: { patientName?: string; patientId?: string; accession?: string; bodyPart?: string; priority?: string } = {}) {
  const dx = makeDx(opts);
  const body = multipart([dx.bytes]);
  const res = await stow(system, body.body, body.contentType, { key: system.keys[site], path: `/dicomweb/studies${opts.priority ? `?priority=${opts.priority}` : ''}` });
  if (res.status !== 200) throw new Error(`stow: ${res.status}`);
  const study = await system.core.repos.instances.getStudy(`site-${site}`, dx.studyUid);
  return { id: study!.id, dx };
}

/** What the worker does when a study's results are in (until the worker runs in these tests). */
export async function setAi(system: TestSystem, studyId: number, flag: StudyAiFlag | null, score: number | null) {
  await system.core.database.db.updateTable('studies')
    .set({ ai_state: flag === null ? 'pending' : 'complete', ai_flag: flag, ai_score: score }).where('id', '=', studyId).execute();
}
