import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { login, PASSWORD } from '../helpers/session.js';
import { openEventStream, within } from '../helpers/streams.js';
import { startSystem, type TestSystem } from '../helpers/system.js';

/** /api/events streams end with the session (issue 16, M4) and are capped per user and per site. */
// Generous: every sign-in runs scrypt, slow on a loaded machine.
describe('event streams', { timeout: 90_000 }, () => {
  let system: TestSystem;
  beforeAll(async () => {
    system = await startSystem({ env: { SSE_MAX_PER_USER: '2', SSE_MAX_PER_SITE: '3' } });
    for (const username of ['rad-1', 'rad-2', 'rad-3', 'rad-4', 'rad-5']) {
      await system.core.services.auth.createUser({ username, password: PASSWORD, role: 'radiologist', siteIds: ['site-a'] });
    }
  });
  afterAll(() => system?.close());

  it('closes an open stream when its user signs out', async () => {
    const session = await login(system.url, 'rad-1');
    const stream = await openEventStream(system.url, session.cookie);
    expect(stream.status).toBe(200);
    const out = await fetch(`${system.url}/auth/logout`, { method: 'POST', headers: { cookie: session.cookie, 'x-csrf-token': session.csrfToken } });
    expect(out.status).toBe(200);
    expect(await within(stream.ended, 10_000), 'stream ended after sign-out').toBe(true);
  });

  it('closes every stream of a user who is disabled (from any process: the CLI publishes through Redis)', async () => {
    const session = await login(system.url, 'rad-2');
    const stream = await openEventStream(system.url, session.cookie);
    expect(stream.status).toBe(200);
    await system.core.services.auth.setDisabled('rad-2', true);
    expect(await within(stream.ended, 10_000), 'stream ended after disable').toBe(true);
  });

  it('closes a stream whose session expired (checked at each heartbeat)', async () => {
    const session = await login(system.url, 'rad-3');
    const stream = await openEventStream(system.url, session.cookie);
    expect(stream.status).toBe(200);
    await system.core.database.db.updateTable('sessions').set({ expires_at: Date.now() - 1 }).execute();
    expect(await within(stream.ended, 40_000), 'stream ended within a heartbeat of expiry').toBe(true);
  }, 60_000);

  it('caps streams per user and per site with 429', async () => {
    const four = await login(system.url, 'rad-4');
    const five = await login(system.url, 'rad-5');
    const mine = [await openEventStream(system.url, four.cookie), await openEventStream(system.url, four.cookie)];
    expect(mine.map((s) => s.status)).toEqual([200, 200]);
    const third = await openEventStream(system.url, four.cookie);
    expect(third.status).toBe(429);
    // Site A now has 2 open streams (the earlier tests' ended); a third is allowed, a fourth is not.
    expect((await openEventStream(system.url, five.cookie)).status).toBe(200);
    expect((await openEventStream(system.url, five.cookie)).status).toBe(429);
  });
});
