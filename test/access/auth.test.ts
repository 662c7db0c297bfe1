import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDx, multipart } from '../helpers/dicom.js';
import { startSystem, stow, type TestSystem } from '../helpers/system.js';

describe('sign-in, sessions and roles', () => {
  let system: TestSystem;
  beforeAll(async () => {
    system = await startSystem();
    await system.core.services.auth.createUser({ username: 'rad-a', password: 'correct horse battery', role: 'radiologist', siteIds: ['site-a'] });
    await system.core.services.auth.createUser({ username: 'rad-b', password: 'correct horse battery', role: 'radiologist', siteIds: ['site-b'] });
  });
  afterAll(() => system?.close());

  const login = (username: string, password: string, cookie?: string) => fetch(`${system.url}/auth/login`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...(cookie ? { cookie } : {}) }, body: JSON.stringify({ username, password }),
  });
  const sessionOf = (res: Response) => /ft_session=([^;]+)/.exec(res.headers.get('set-cookie') ?? '')?.[1];

  it('signs in with an HttpOnly, SameSite=Strict cookie and a CSRF token; the password is stored as scrypt', async () => {
    const res = await login('rad-a', 'correct horse battery');
    expect(res.status).toBe(200);
    const cookie = res.headers.get('set-cookie')!;
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Strict/i);
    const body = await res.json();
    expect(body.user).toMatchObject({ username: 'rad-a', role: 'radiologist', siteIds: ['site-a'] });
    expect(body.csrfToken).toMatch(/^[\w-]{20,}$/);
    const user = await system.core.repos.users.byUsername('rad-a');
    expect(user!.password_hash).toMatch(/^scrypt\$32768\$8\$1\$/);
    expect(user!.password_hash).not.toContain('correct horse');
  });

  it('refuses wrong passwords and unknown users alike, and audits them', async () => {
    const wrong = await login('rad-a', 'not the password');
    const unknown = await login('nobody', 'not the password');
    expect([wrong.status, unknown.status]).toEqual([401, 401]);
    expect((await wrong.json()).message).toBe((await unknown.json()).message);
    expect((await system.core.repos.audit.list({ action: 'auth.login_failed' })).length).toBeGreaterThanOrEqual(2);
  });

  it('issues a new session token at every sign-in (no fixation) and ends it at sign-out', async () => {
    const first = sessionOf(await login('rad-a', 'correct horse battery'))!;
    const second = sessionOf(await login('rad-a', 'correct horse battery', `ft_session=${first}`))!;
    expect(second).not.toBe(first);
    const me = await fetch(`${system.url}/auth/me`, { headers: { cookie: `ft_session=${second}` } });
    expect(me.status).toBe(200);
    const { csrfToken } = await me.json();
    const noCsrf = await fetch(`${system.url}/auth/logout`, { method: 'POST', headers: { cookie: `ft_session=${second}` } });
    expect(noCsrf.status).toBe(403);
    const out = await fetch(`${system.url}/auth/logout`, { method: 'POST', headers: { cookie: `ft_session=${second}`, 'x-csrf-token': csrfToken } });
    expect(out.status).toBe(200);
    expect((await fetch(`${system.url}/auth/me`, { headers: { cookie: `ft_session=${second}` } })).status).toBe(401);
  });

  it("shows a radiologist only their own site's studies through DICOMweb", async () => {
    const dx = makeDx();
    const body = multipart([dx.bytes]);
    expect((await stow(system, body.body, body.contentType)).status).toBe(200); // site A's key
    const a = sessionOf(await login('rad-a', 'correct horse battery'))!;
    const b = sessionOf(await login('rad-b', 'correct horse battery'))!;
    const get = (cookie: string) => fetch(`${system.url}/dicomweb/studies/${dx.studyUid}/series/${dx.seriesUid}/instances/${dx.sopInstanceUid}`, { headers: { cookie: `ft_session=${cookie}` } });
    expect((await get(a)).status).toBe(200);
    expect((await get(b)).status).toBe(404);
  });

  it('an API key cannot upload with a session, nor a session upload without a key', async () => {
    const a = sessionOf(await login('rad-a', 'correct horse battery'))!;
    const body = multipart([makeDx().bytes]);
    const res = await fetch(`${system.url}/dicomweb/studies`, { method: 'POST', headers: { 'content-type': body.contentType, cookie: `ft_session=${a}` }, body: body.body });
    expect(res.status).toBe(401);
  });

  it('backs off repeated failed sign-ins with 429 and a growing Retry-After (test/access/sign-in-limits.test.ts has the bursts)', async () => {
    await system.core.services.auth.createUser({ username: 'target', password: 'correct horse battery', role: 'radiologist', siteIds: [] });
    const statuses: number[] = [];
    const waits: number[] = [];
    for (let i = 0; i < 12; i++) {
      const res = await login('target', `guess-${i}`);
      statuses.push(res.status);
      if (res.status === 429) waits.push(Number(res.headers.get('retry-after')));
    }
    expect(statuses.slice(0, 5).every((s) => s === 401)).toBe(true);
    expect(statuses).toContain(429);
    expect(waits.every((w) => w >= 1)).toBe(true);
  });
});
