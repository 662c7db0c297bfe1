import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DemoService } from '../../services/core/services/demo.service.js';
import { startSystem, type TestSystem } from '../helpers/system.js';

/** Issue 16, M6: demo credentials shown once and never stored in plain text; FT_DEMO=0 turns the demo accounts off. */
// Generous: every sign-in runs scrypt, slow on a loaded machine.
describe('demo mode', { timeout: 90_000 }, () => {
  let system: TestSystem;
  let demo: DemoService;
  beforeAll(async () => {
    system = await startSystem({ env: { FT_DEMO: '1' } });
    const { core } = system;
    demo = new DemoService(core.services.apiKeys, core.services.auth, core.repos.sites, core.repos.users, core.repos.audit, system.dataDir);
  });
  afterAll(() => system?.close());

  const signIn = (username: string, password: string) => fetch(`${system.url}/auth/login`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }),
  }).then((r) => r.status);
  const keyWorks = (key: string) => fetch(`${system.url}/dicomweb/studies`, { headers: { authorization: `Bearer ${key}` } }).then((r) => r.status === 200 || r.status === 204);

  it('creates the demo site, key and users once; passwords are returned once and stored only as hashes', async () => {
    // An older version kept passwords in plain text beside the key: that file goes.
    fs.writeFileSync(path.join(system.dataDir, 'demo-users'), '{"radiologist":"old"}');
    const first = await demo.seed();
    expect(Object.keys(first.newPasswords).sort()).toEqual(['admin', 'radiologist']);
    expect(first.newKey).toMatch(/^ft_/);
    expect(fs.statSync(first.keyFile).mode & 0o777).toBe(0o600);
    expect(fs.existsSync(path.join(system.dataDir, 'demo-users'))).toBe(false);
    const everything = fs.readdirSync(system.dataDir, { recursive: true }).map(String)
      .filter((f) => fs.statSync(path.join(system.dataDir, f)).isFile() && !f.endsWith('.sqlite') && !f.includes('.sqlite-'));
    for (const file of everything) expect(fs.readFileSync(path.join(system.dataDir, file), 'utf8'), file).not.toContain(first.newPasswords.radiologist);
    expect(await signIn('radiologist', first.newPasswords.radiologist)).toBe(200);
    expect(await keyWorks(first.newKey!)).toBe(true);

    const again = await demo.seed();
    expect(again.newPasswords).toEqual({});
    expect(again.newKey).toBeUndefined();
  });

  it('says demo mode in /readyz (the web app shows a banner from it)', async () => {
    expect((await (await fetch(`${system.url}/readyz`)).json()).demo).toBe(true);
  });

  it('started without demo mode, disables the demo users and revokes the demo key, and says what it did', async () => {
    const key = fs.readFileSync(path.join(system.dataDir, 'demo-api-key'), 'utf8').trim();
    const retired = await demo.retire();
    expect(retired.users.sort()).toEqual(['admin', 'radiologist']);
    expect(retired.keys).toHaveLength(1);
    expect(await keyWorks(key)).toBe(false);
    expect(fs.existsSync(path.join(system.dataDir, 'demo-api-key'))).toBe(false);
    expect((await system.core.repos.users.byUsername('radiologist'))!.disabled_at).not.toBeNull();
    expect((await system.core.repos.audit.list({ action: 'demo.retire' })).length).toBe(1);
    // Nothing left to do the next time.
    expect(await demo.retire()).toEqual({ users: [], keys: [] });
  });

  it('back in demo mode, re-enables the demo users with new passwords shown once', async () => {
    const seed = await demo.seed();
    expect(Object.keys(seed.newPasswords).sort()).toEqual(['admin', 'radiologist']);
    expect(seed.newKey).toMatch(/^ft_/);
    expect(await signIn('admin', seed.newPasswords.admin)).toBe(200);
  });
});
