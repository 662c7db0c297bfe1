import { afterAll, describe, expect, it } from 'vitest';
import { makeDx, multipart } from '../helpers/dicom.js';
import { startProcessSystem, type ProcessSystem } from '../helpers/processes.js';
import { keySecret } from '../helpers/system.js';

/** Passwords, API keys, session tokens and CSRF tokens never reach a log line, even at trace level. */
describe('logs carry no credentials', () => {
  let system: ProcessSystem | undefined;
  afterAll(() => system?.stop());

  it('API process at trace level: sign-ins (right and wrong), sessions, key-authenticated uploads', async () => {
    system = await startProcessSystem({ LOG_LEVEL: 'trace' });
    const s = system;
    await s.core.services.auth.createUser({ username: 'logcheck', password: 'Pelican-Umbrella-42', role: 'radiologist', siteIds: ['site-a'] });
    await s.startApi();
    const login = (password: string) => fetch(`${s.url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'logcheck', password }) });
    expect((await login('Wrong-Guess-Xylophone')).status).toBe(401);
    const ok = await login('Pelican-Umbrella-42');
    expect(ok.status).toBe(200);
    const session = /ft_session=([^;]+)/.exec(ok.headers.get('set-cookie')!)![1];
    const { csrfToken } = await ok.json();
    expect((await fetch(`${s.url}/auth/me`, { headers: { cookie: `ft_session=${session}` } })).status).toBe(200);
    await fetch(`${s.url}/auth/logout`, { method: 'POST', headers: { cookie: `ft_session=${session}`, 'x-csrf-token': csrfToken } });
    const body = multipart([makeDx().bytes]);
    expect((await fetch(`${s.url}/dicomweb/studies`, { method: 'POST', headers: { 'content-type': body.contentType, authorization: `Bearer ${s.key}` }, body: body.body })).status).toBe(200);
    await fetch(`${s.url}/dicomweb/studies`, { headers: { 'x-api-key': s.key } });
    await fetch(`${s.url}/dicomweb/studies`, { headers: { authorization: 'Bearer ft_bogus_Not-A-Real-Secret-123' } });
    await new Promise((r) => setTimeout(r, 500));
    const logs = s.output();
    expect(logs.length).toBeGreaterThan(500); // trace logging really happened
    for (const secret of ['Pelican-Umbrella-42', 'Wrong-Guess-Xylophone', s.key, keySecret(s.key), session, csrfToken, 'Not-A-Real-Secret-123']) {
      expect(logs, secret.slice(0, 6)).not.toContain(secret);
    }
  }, 60_000);
});
