import fs from 'node:fs';
import path from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StudyAiSchema, StudyDetailSchema, WorklistPageSchema, ReviewListSchema, DecisionResultSchema } from '../../services/contract/index.js';
import { startSystem, type TestSystem } from '../helpers/system.js';
import { addStudy, api, login, PASSWORD, setAi, type Session } from '../viewer/helpers.js';

const contractDir = path.resolve(import.meta.dirname, '../../services/contract');

describe('API contract (services/contract)', () => {
  it('imports nothing of the server: only TypeBox and its own files (web/ bundles it)', () => {
    for (const file of fs.readdirSync(contractDir).filter((f) => f.endsWith('.ts'))) {
      const text = fs.readFileSync(path.join(contractDir, file), 'utf8');
      const specifiers = [...text.matchAll(/from\s+'([^']+)'/g)].map((m) => m[1]);
      for (const s of specifiers) expect(s === '@sinclair/typebox' || /^\.\/[\w-]+\.js$/.test(s), `${file}: ${s}`).toBe(true);
    }
  });

  describe('the routes answer what the contract declares, and publish it in /openapi.json', () => {
    let system: TestSystem;
    let rad: Session;
    let studyId: number;

    beforeAll(async () => {
      system = await startSystem({ db: 'sqlite' });
      await system.core.services.auth.createUser({ username: 'rad-a', password: PASSWORD, role: 'radiologist', siteIds: ['site-a'] });
      studyId = (await addStudy(system, 'a', { patientName: 'CONTRACT^ONE', accession: 'ACC-C1', priority: 'stat' })).id;
      await setAi(system, studyId, 'definite', 0.9);
      rad = await login(system, 'rad-a');
    });
    afterAll(() => system?.close());

    it('worklist, study, AI refresh and decisions validate against their schemas', async () => {
      const check = (schema: Parameters<typeof Value.Check>[0], body: unknown) => expect([...Value.Errors(schema, body)].map((e) => `${e.path}: ${e.message}`)).toEqual([]);
      check(WorklistPageSchema, (await api(system, rad, '/api/worklist')).json);
      const detail = (await api(system, rad, `/api/studies/${studyId}`)).json;
      check(StudyDetailSchema, detail);
      check(StudyAiSchema, (await api(system, rad, `/api/studies/${studyId}/ai`)).json);
      const decided = await api(system, rad, `/api/studies/${studyId}/review`, { method: 'POST', body: { decision: 'agree', comment: null, shownInstanceIds: [detail.images[0].id] } });
      expect(decided.status).toBe(201);
      check(DecisionResultSchema, decided.json);
      check(ReviewListSchema, (await api(system, rad, `/api/studies/${studyId}/reviews`)).json);
      // The priority scale is the contract's (STAT = 1), the same number the viewer names.
      expect((await api(system, rad, '/api/worklist')).json.items[0].priority).toBe(1);
    });

    it('/openapi.json carries the response schemas', async () => {
      const doc = (await api(system, undefined, '/openapi.json')).json as { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: { properties?: Record<string, unknown> } }> }> }>> };
      const schemaOf = (p: string, method: string, code: string) => doc.paths[p][method].responses[code]?.content?.['application/json']?.schema;
      expect(Object.keys(schemaOf('/api/worklist', 'get', '200')?.properties ?? {})).toEqual(['total', 'offset', 'limit', 'items']);
      expect(Object.keys(schemaOf('/api/studies/{id}', 'get', '200')?.properties ?? {})).toEqual(['study', 'model', 'images', 'reviews']);
      expect(schemaOf('/api/studies/{id}/review', 'post', '201')).toBeDefined();
    });
  });
});
