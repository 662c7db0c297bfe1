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
    /** The instance of study a (site A), of study b (site B) and of a second site-A study. */
    let shownA: number;
    let shownB: number;
    let shownA2: number;
    let secondA: number;

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
      shownA = instance!.id;
      const b = await addStudy(system, 'b');
      otherId = b.id;
      shownB = (await system.core.repos.instances.findBySop('site-b', b.dx.sopInstanceUid))!.id;
      const a2 = await addStudy(system, 'a');
      secondA = a2.id;
      shownA2 = (await system.core.repos.instances.findBySop('site-a', a2.dx.sopInstanceUid))!.id;
      rad = await login(system, 'rad-a');
      rad2 = await login(system, 'rad-a2');
      admin = await login(system, 'admin-a');
      radB = await login(system, 'rad-b');
    });
    afterAll(() => system?.close());

    /** A decision as the viewer sends it: with the images it rendered (the study's own unless given). */
    const decide = (session: Session, id: number, body: Record<string, unknown>, csrf = true) =>
      api(system, session, `/api/studies/${id}/review`, { method: 'POST', body: { shownInstanceIds: [id === otherId ? shownB : id === secondA ? shownA2 : shownA], ...body }, csrf });

    it('needs the CSRF header, a radiologist, and a valid decision', async () => {
      expect((await decide(rad, studyId, { decision: 'agree' }, false)).status).toBe(403);
      expect((await decide(admin, studyId, { decision: 'agree' })).status).toBe(403);
      expect((await decide(rad, studyId, { decision: 'maybe' })).status).toBe(400);
      expect((await decide(rad, studyId, { decision: 'agree', boxes: [{ x: 1, y: 1, width: 2, height: 2 }] })).status).toBe(400); // boxes only for "missed"
      expect((await decide(radB, studyId, { decision: 'agree' })).status).toBe(404);
      expect((await api(system, rad, `/api/studies/${studyId}/reviews`)).json.reviews).toEqual([]);
    });

    it('refuses a decision that names no image on screen, or images outside the study or site, with the reason', async () => {
      const refused = [
        [{ decision: 'agree', shownInstanceIds: [] }, /at least one/],
        [{ decision: 'agree', shownInstanceIds: undefined }, /at least one/],
        [{ decision: 'agree', shownInstanceIds: ['1'] }, /positive integers/],
        [{ decision: 'agree', shownInstanceIds: [shownB] }, new RegExp(`image ${shownB} is not an image of this study`)], // another site's image
        [{ decision: 'agree', shownInstanceIds: [shownA, shownA2] }, /not an image of this study/], // another study of the same site
        [{ decision: 'missed', boxes: [{ x: 1, y: 1, width: 2, height: 2, instanceId: shownB }] }, /boxes: instanceId .* not an image of this study/],
        [{ decision: 'missed', boxes: [{ x: 1, y: 1, width: 2, height: 2, instanceId: shownA2 }] }, /boxes: instanceId/],
        [{ decision: 'agree', measurements: [{ kind: 'length', points: [[0, 0], [3, 4]], value: 5, unit: 'mm', instanceId: shownB }] }, /measurements\[0\]\.instanceId/],
        [{ decision: 'agree', measurements: [{ kind: 'length', points: [[0, 0]], value: 5, unit: 'mm', instanceId: shownA }] }, /2 points/],
        [{ decision: 'agree', measurements: [{ kind: 'angle', points: [[0, 0], [1, 1], [2, 0]], value: 90, unit: 'mm', instanceId: shownA }] }, /unit must be deg/],
        [{ decision: 'agree', measurements: [{ kind: 'area', points: [[0, 0], [1, 1]], value: 1, unit: 'mm', instanceId: shownA }] }, /kind/],
      ] as const;
      for (const [body, reason] of refused) {
        const res = await api(system, rad, `/api/studies/${studyId}/review`, { method: 'POST', body: 'shownInstanceIds' in body ? body : { shownInstanceIds: [shownA], ...body } });
        expect(res.status, JSON.stringify(body)).toBe(400);
        expect(res.json.message).toMatch(reason);
      }
      expect((await api(system, rad, `/api/studies/${studyId}/reviews`)).json.reviews).toEqual([]);
      const study = await system.core.database.db.selectFrom('studies').select('review_state').where('id', '=', studyId).executeTakeFirstOrThrow();
      expect(study.review_state).toBe('unreviewed');
    });

    it('records a decision, keeps the history when it changes, marks the study reviewed, audits each', async () => {
      const first = await decide(rad, studyId, { decision: 'agree', comment: 'clear distal radius fracture' });
      expect(first.status).toBe(201);
      const worklist = await api(system, rad, '/api/worklist');
      expect(worklist.json.items.find((i: any) => i.id === studyId).reviewState).toBe('reviewed');

      const second = await decide(rad2, studyId, { decision: 'missed', comment: 'second one at the ulna', boxes: [{ x: 10.04, y: 20, width: 5, height: 6, instanceId: shownA }] });
      expect(second.status).toBe(201);
      const history = (await api(system, rad, `/api/studies/${studyId}/reviews`)).json.reviews;
      expect(history.map((r: any) => [r.decision, r.user.username, r.supersededAt === null])).toEqual([['missed', 'rad-a2', true], ['agree', 'rad-a', false]]);
      expect(history[0].boxes).toEqual([{ x: 10, y: 20, width: 5, height: 6, instanceId: shownA }]);
      expect(history[0].shownInstanceIds).toEqual([shownA]);
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

    it('undoes a decision and changes it, keeping every step in the history and the audit; measurements come back with the study', async () => {
      const id = secondA;
      const measurements = [
        { kind: 'length', points: [{ x: 1, y: 2 }, { x: 4, y: 6 }], value: 5.0004, unit: 'mm', instanceId: shownA2 },
        { kind: 'angle', points: [[0, 0], [10, 0], [10, 10]], value: 90, unit: 'deg', instanceId: shownA2 },
      ];
      expect((await decide(rad, id, { decision: 'disagree', measurements })).status).toBe(201);
      const undo = (session: Session, csrf = true) => api(system, session, `/api/studies/${id}/review`, { method: 'DELETE', csrf });
      expect((await undo(rad, false)).status).toBe(403);
      expect((await undo(radB)).status).toBe(404); // another site's study
      const undone = await undo(rad2);
      expect(undone.status).toBe(200);
      expect(undone.json).toMatchObject({ undone: { decision: 'disagree' }, reviewState: 'unreviewed' });
      expect((await undo(rad)).status).toBe(404); // nothing left to undo
      let study = (await api(system, rad, `/api/studies/${id}`)).json;
      expect(study.study.reviewState).toBe('unreviewed');
      expect(study.reviews).toHaveLength(1);
      expect(study.reviews[0]).toMatchObject({ decision: 'disagree', undoneAt: expect.any(Number), supersededAt: expect.any(Number) });
      expect(study.reviews[0].measurements).toEqual([
        { kind: 'length', points: [{ x: 1, y: 2 }, { x: 4, y: 6 }], value: 5, unit: 'mm', instanceId: shownA2, imageId: shownA2 },
        { kind: 'angle', points: [{ x: 0, y: 0 }, { x: 10, y: 0 }, { x: 10, y: 10 }], value: 90, unit: 'deg', instanceId: shownA2, imageId: shownA2 },
      ]);

      expect((await decide(rad, id, { decision: 'agree' })).status).toBe(201);
      expect((await decide(rad, id, { decision: 'uncertain' })).status).toBe(201); // a change supersedes
      study = (await api(system, rad, `/api/studies/${id}`)).json;
      expect(study.study.reviewState).toBe('reviewed');
      expect(study.reviews.map((r: any) => [r.decision, r.supersededAt === null, r.undoneAt === null])).toEqual([
        ['uncertain', true, true], ['agree', false, true], ['disagree', false, false],
      ]);
      const audited = (await system.core.repos.audit.list({ limit: 500 }))
        .filter((e) => e.target_id === String(id) && e.action.startsWith('review.')).map((e) => [e.action, JSON.parse(e.details!).decision]).reverse();
      expect(audited).toEqual([['review.decide', 'disagree'], ['review.undo', 'disagree'], ['review.decide', 'agree'], ['review.decide', 'uncertain']]);
    });

    it("does not export another site's decisions", async () => {
      expect((await decide(radB, otherId, { decision: 'disagree' })).status).toBe(201);
      const json = await api(system, admin, '/api/reviews/export?format=json&history=true');
      expect(json.json.rows.every((r: any) => r.site_id === 'site-a')).toBe(true);
    });
  });
}
