import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databases, startSystem, type TestSystem } from '../helpers/system.js';
import { addStudy, api, login, PASSWORD, setAi, type Session } from './helpers.js';

for (const db of await databases()) {
  describe(`decisions and export (${db})`, () => {
    let system: TestSystem;
    let rad: Session;
    let rad2: Session;
    let admin: Session;
    let radB: Session;
    let studyId: number;
    let otherId: number;

    beforeAll(async () => {
      system = await startSystem({ db });
      const auth = system.core.services.auth;
      await auth.createUser({ username: 'rad-a', displayName: 'Dr A', password: PASSWORD, role: 'radiologist', siteIds: ['site-a'] });
      await auth.createUser({ username: 'rad-a2', displayName: 'Dr A2', password: PASSWORD, role: 'radiologist', siteIds: ['site-a'] });
      await auth.createUser({ username: 'admin-a', password: PASSWORD, role: 'admin', siteIds: ['site-a'] });
      await auth.createUser({ username: 'rad-b', password: PASSWORD, role: 'radiologist', siteIds: ['site-b'] });
      const a = await addStudy(system, 'a', { patientName: 'SECRET^NAME', patientId: 'SECRET-PID' });
      studyId = a.id;
      const instance = await system.core.repos.instances.findBySop('site-a', a.dx.sopInstanceUid);
      await system.core.database.db.insertInto('ai_results').values({
        instance_id: instance!.id, site_id: 'site-a', study_id: studyId, status: 'done', model_name: 'heatnet', model_version: '9.9', backend: 'cpu',
        probability: 0.72, raw_score: 1, flag: 'doubt', boxes: JSON.stringify([{ x: 1, y: 2, width: 3, height: 4, score: 0.7, level: 'doubt' }]),
        heatmap_key: null, reason: null, queued_at: null, started_at: null, decoded_at: null, inferred_at: null, stored_at: Date.now(),
      }).execute();
      await setAi(system, studyId, 'doubt', 0.72);
      otherId = (await addStudy(system, 'b')).id;
      rad = await login(system, 'rad-a');
      rad2 = await login(system, 'rad-a2');
      admin = await login(system, 'admin-a');
      radB = await login(system, 'rad-b');
    });
    afterAll(() => system?.close());

    const decide = (session: Session, id: number, body: unknown, csrf = true) => api(system, session, `/api/studies/${id}/review`, { method: 'POST', body, csrf });

    it('needs the CSRF header, a radiologist, and a valid decision', async () => {
      expect((await decide(rad, studyId, { decision: 'agree' }, false)).status).toBe(403);
      expect((await decide(admin, studyId, { decision: 'agree' })).status).toBe(403);
      expect((await decide(rad, studyId, { decision: 'maybe' })).status).toBe(400);
      expect((await decide(rad, studyId, { decision: 'agree', boxes: [{ x: 1, y: 1, width: 2, height: 2 }] })).status).toBe(400); // boxes only for "missed"
      expect((await decide(radB, studyId, { decision: 'agree' })).status).toBe(404);
      expect((await api(system, rad, `/api/studies/${studyId}/reviews`)).json.reviews).toEqual([]);
    });

    it('records a decision, keeps the history when it changes, marks the study reviewed, audits each', async () => {
      const first = await decide(rad, studyId, { decision: 'agree', comment: 'clear distal radius fracture' });
      expect(first.status).toBe(201);
      const worklist = await api(system, rad, '/api/worklist');
      expect(worklist.json.items.find((i: any) => i.id === studyId).reviewState).toBe('reviewed');

      const second = await decide(rad2, studyId, { decision: 'missed', comment: 'second one at the ulna', boxes: [{ x: 10.04, y: 20, width: 5, height: 6, instanceId: 7 }] });
      expect(second.status).toBe(201);
      const history = (await api(system, rad, `/api/studies/${studyId}/reviews`)).json.reviews;
      expect(history.map((r: any) => [r.decision, r.user.username, r.supersededAt === null])).toEqual([['missed', 'rad-a2', true], ['agree', 'rad-a', false]]);
      expect(history[0].boxes).toEqual([{ x: 10, y: 20, width: 5, height: 6, instanceId: 7 }]);
      expect(history[1].comment).toBe('clear distal radius fracture');

      const audit = await system.core.repos.audit.list({ action: 'review.decide' });
      const mine = audit.filter((e) => e.target_id === String(studyId)).map((e) => JSON.parse(e.details!));
      expect(mine.map((d) => [d.decision, d.previous])).toEqual([['missed', 'agree'], ['agree', null]]);
      expect(JSON.stringify(audit)).not.toContain('ulna'); // comments never go to the audit log
    });

    it('exports current decisions with the AI results as CSV and JSON, for admins of the site only, without patient identity', async () => {
      expect((await api(system, rad, '/api/reviews/export?format=csv')).status).toBe(403);
      const csv = await api(system, admin, '/api/reviews/export?format=csv');
      expect(csv.status).toBe(200);
      expect(csv.headers.get('content-type')).toMatch(/text\/csv/);
      const lines = csv.text.trim().split('\r\n');
      const header = lines[0].split(',');
      expect(header).toEqual(expect.arrayContaining(['study_uid', 'sop_instance_uid', 'decision', 'reviewer', 'ai_probability', 'ai_flag', 'ai_boxes', 'model_version']));
      expect(lines).toHaveLength(2); // the current decision only
      const row = lines[1];
      expect(row).toContain('missed');
      expect(row).toContain('0.72');
      expect(row).toContain('rad-a2');
      expect(csv.text).not.toContain('SECRET');

      const json = await api(system, admin, '/api/reviews/export?format=json&history=true');
      expect(json.json.rows.map((r: any) => r.decision)).toEqual(['agree', 'missed']);
      expect(json.json.rows[0]).toMatchObject({ ai_probability: 0.72, ai_flag: 'doubt', model_version: '9.9', ai_boxes: [{ x: 1, y: 2, width: 3, height: 4, score: 0.7, level: 'doubt' }] });
      expect(json.text).not.toContain('SECRET');
      expect((await system.core.repos.audit.list({ action: 'review.export' })).length).toBe(2);
    });

    it('neutralises spreadsheet formulas in CSV cells', async () => {
      await decide(rad, studyId, { decision: 'uncertain', comment: '=HYPERLINK("http://x")' });
      const csv = await api(system, admin, '/api/reviews/export?format=csv');
      expect(csv.text).toContain(`"'=HYPERLINK(""http://x"")"`);
    });

    it("does not export another site's decisions", async () => {
      expect((await decide(radB, otherId, { decision: 'disagree' })).status).toBe(201);
      const json = await api(system, admin, '/api/reviews/export?format=json&history=true');
      expect(json.json.rows.every((r: any) => r.site_id === 'site-a')).toBe(true);
    });
  });
}
