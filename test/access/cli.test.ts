import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { COMMANDS, runAdmin } from '../../services/cli/admin.js';
import { PASSWORD } from '../helpers/session.js';
import { startSystem, type TestSystem } from '../helpers/system.js';

/** Issue 16, item 7: account management in the CLI, and --help that works for every command. */
// Generous: every sign-in runs scrypt, slow on a loaded machine.
describe('admin CLI', { timeout: 90_000 }, () => {
  let system: TestSystem;
  let out = '';
  beforeAll(async () => {
    system = await startSystem();
    // The CLI reads its configuration from the environment, like the server.
    Object.assign(process.env, { DATA_DIR: system.dataDir, DATABASE_URL: system.config.databaseUrl, REDIS_URL: system.config.redisUrl, QUEUE_PREFIX: system.config.queuePrefix });
    const capture = (chunk: unknown) => { out += String(chunk); return true; };
    vi.spyOn(process.stdout, 'write').mockImplementation(capture as typeof process.stdout.write);
    vi.spyOn(process.stderr, 'write').mockImplementation(capture as typeof process.stderr.write);
    vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => { out += `${args.join(' ')}\n`; });
    vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => { out += `${args.join(' ')}\n`; });
  });
  afterAll(async () => {
    vi.restoreAllMocks();
    await system?.close();
  });
  const cli = async (...argv: string[]) => {
    out = '';
    const code = await runAdmin(argv);
    return { code, out };
  };
  const signIn = (username: string, password: string) => fetch(`${system.url}/auth/login`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }),
  }).then((r) => r.status);
  /** 200 or 204 (no studies yet) when the key works, 401 when it does not. */
  const keyStatus = (key: string) => fetch(`${system.url}/dicomweb/studies`, { headers: { authorization: `Bearer ${key}` } }).then((r) => (r.status === 204 ? 200 : r.status));

  it('prints help for --help and for every command, without touching the database', async () => {
    const all = await cli('--help');
    expect(all.code).toBe(0);
    for (const command of COMMANDS) {
      expect(all.out).toContain(command.name);
      const one = await cli(command.name, '--help');
      expect(one.code, command.name).toBe(0);
      expect(one.out).toContain(command.usage);
    }
    expect((await cli('no:such')).code).toBe(2);
    expect((await cli('user:create', '--bogus')).code).toBe(2);
  });

  it('resets a password (sessions end), disables and enables a user', async () => {
    await system.core.services.auth.createUser({ username: 'jdoe', password: PASSWORD, role: 'radiologist', siteIds: ['site-a'] });
    const reset = await cli('user:reset-password', 'jdoe');
    expect(reset.code).toBe(0);
    const password = /password \(shown once\): (\S+)/.exec(reset.out)![1];
    expect(await signIn('jdoe', PASSWORD)).toBe(401);
    expect(await signIn('jdoe', password)).toBe(200);
    expect((await cli('user:disable', 'jdoe')).code).toBe(0);
    expect(await signIn('jdoe', password)).toBe(401);
    expect((await cli('user:enable', 'jdoe')).code).toBe(0);
    expect(await signIn('jdoe', password)).toBe(200);
    expect((await cli('user:disable', 'nobody')).code).toBe(1);
  });

  it('creates a superadmin', async () => {
    expect((await cli('user:create', 'root', '--role', 'superadmin', '--sites', '')).code).toBe(0);
    expect((await system.core.repos.users.byUsername('root'))!.role).toBe('superadmin');
    expect((await cli('user:create', 'x-user', '--role', 'wizard')).code).toBe(1);
  });

  it('rotates a key (the old one works until its grace period ends) and expires keys', async () => {
    const [old] = await system.core.repos.sites.listKeys('site-a');
    const rotated = await cli('key:rotate', old.id, '--grace', '1h');
    expect(rotated.code).toBe(0);
    const fresh = /\n {2}(ft_\S+)/.exec(rotated.out)![1];
    expect(await keyStatus(fresh)).toBe(200);
    expect(await keyStatus(system.keys.a)).toBe(200); // still in its grace hour
    expect((await cli('key:expire', old.id, '--at', 'now')).code).toBe(0);
    expect(await keyStatus(system.keys.a)).toBe(401);
    expect((await cli('key:list', 'site-a')).out).toMatch(new RegExp(`${old.id}\\t.*\\texpired`));
    expect((await cli('key:expire', old.id, '--at', 'someday')).code).toBe(2);
  });
});
