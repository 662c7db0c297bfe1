/**
 * Account management through the admin API (issue 16): reset a password, disable and enable a
 * user, rotate and expire a site's API key — for an admin on their own sites' users and keys, for
 * a superadmin on all; CSRF on every change; audited as the signed-in user; a new password or key
 * shown in one answer only. (test/access/routes.test.ts checks site B's admin against site A's.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDx, multipart } from '../helpers/dicom.js';
import { PASSWORD, login, type Session } from '../helpers/session.js';
import { keySecret, startSystem, stow, type TestSystem } from '../helpers/system.js';

describe('account management from the admin API', { timeout: 90_000 }, () => {
  let system: TestSystem;
  let adminA: Session;
  let ops: Session;
  const ids: Record<string, number> = {};

  beforeAll(async () => {
    system = await startSystem();
    const { auth } = system.core.services;
    for (const [username, role, siteIds] of [
      ['rad-a', 'radiologist', ['site-a']], ['rad-b', 'radiologist', ['site-b']], ['rad-ab', 'radiologist', ['site-a', 'site-b']],
      ['admin-a', 'admin', ['site-a']], ['ops', 'superadmin', ['site-a']],
    ] as const) {
      ids[username] = (await auth.createUser({ username, password: PASSWORD, role, siteIds: [...siteIds] })).id;
    }
    adminA = await login(system.url, 'admin-a');
    ops = await login(system.url, 'ops');
  });
  afterAll(() => system?.close());

  const api = async (session: Session | undefined, method: string, path: string, body?: unknown, opts: { csrf?: boolean } = {}) => {
    const headers: Record<string, string> = {};
    if (session) headers.cookie = session.cookie;
    if (session && method !== 'GET' && opts.csrf !== false) headers['x-csrf-token'] = session.csrfToken;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${system.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : undefined, text, headers: res.headers };
  };
  const upload = async (key: string) => {
    const body = multipart([makeDx().bytes]);
    return (await stow(system, body.body, body.contentType, { key })).status;
  };
  const canSignIn = (username: string, password = PASSWORD) => login(system.url, username, password).then(() => true, () => false);

  it("lists the users an admin manages: only those all of whose sites are the admin's, never a superadmin", async () => {
    const mine = await api(adminA, 'GET', '/api/admin/users');
    expect(mine.status).toBe(200);
    expect(mine.headers.get('cache-control')).toBe('no-store');
    expect(mine.json.map((u: { username: string }) => u.username).sort()).toEqual(['admin-a', 'rad-a']);
    expect(mine.text).not.toMatch(/password|scrypt/);
    const all = await api(ops, 'GET', '/api/admin/users');
    expect(all.json.map((u: { username: string }) => u.username).sort()).toEqual(['admin-a', 'ops', 'rad-a', 'rad-ab', 'rad-b']);
  });

  it('resets a password: the new one is in the answer only, the old one and the sessions stop working; audited as the admin', async () => {
    const radSession = await login(system.url, 'rad-a');
    expect((await api(adminA, 'POST', '/api/admin/users/rad-a/reset-password', {}, { csrf: false })).status).toBe(403);
    const reset = await api(adminA, 'POST', '/api/admin/users/rad-a/reset-password', {});
    expect(reset.status).toBe(200);
    const { password } = reset.json as { password: string };
    expect(password.length).toBeGreaterThanOrEqual(16);
    expect((await api(radSession, 'GET', '/api/worklist')).status).toBe(401);
    expect(await canSignIn('rad-a')).toBe(false);
    expect(await canSignIn('rad-a', password)).toBe(true);
    expect(JSON.stringify(await system.core.database.db.selectFrom('users').selectAll().execute())).not.toContain(password);
    const [entry] = await system.core.repos.audit.list({ action: 'user.reset_password' });
    expect(entry).toMatchObject({ actor_type: 'user', actor_id: String(ids['admin-a']), target_id: String(ids['rad-a']) });
    expect(entry.details).not.toContain(password);
  });

  it("refuses users outside the admin's sites (404, nothing changes) but lets a superadmin manage them", async () => {
    for (const user of ['rad-b', 'rad-ab', 'ops', 'nobody']) {
      for (const action of ['reset-password', 'disable', 'enable']) {
        expect((await api(adminA, 'POST', `/api/admin/users/${user}/${action}`, {})).status, `${user} ${action}`).toBe(404);
      }
    }
    expect(await canSignIn('rad-b')).toBe(true);
    expect((await api(ops, 'POST', '/api/admin/users/rad-b/disable', {})).status).toBe(200);
    expect(await canSignIn('rad-b')).toBe(false);
    expect((await api(ops, 'POST', '/api/admin/users/rad-b/enable', {})).status).toBe(200);
    expect(await canSignIn('rad-b')).toBe(true);
  });

  it('disables and enables a user of the own site; an admin cannot disable themselves', async () => {
    expect((await api(adminA, 'POST', '/api/admin/users/admin-a/disable', {})).status).toBe(400);
    const disabled = await api(adminA, 'POST', '/api/admin/users/rad-a/disable', {});
    expect(disabled.json).toMatchObject({ ok: true, disabled: true });
    expect((await api(adminA, 'GET', '/api/admin/users')).json.find((u: { username: string }) => u.username === 'rad-a').disabled).toBe(true);
    expect((await api(adminA, 'POST', '/api/admin/users/rad-a/enable', {})).status).toBe(200);
    const actions = (await system.core.repos.audit.list({ limit: 10 })).filter((a) => a.action.startsWith('user.')).map((a) => `${a.actor_id}:${a.action}`);
    expect(actions.slice(0, 2)).toEqual([`${ids['admin-a']}:user.enable`, `${ids['admin-a']}:user.disable`]);
  });

  it("rotates a site key (the new key shown once; the old one works until its grace ends) and expires keys; not another site's", async () => {
    const keyA = system.keys.a.split('_')[1];
    const keyB = system.keys.b.split('_')[1];
    const listed = await api(adminA, 'GET', '/api/admin/keys');
    expect(listed.json.map((k: { id: string }) => k.id)).toEqual([keyA]);
    expect(listed.text).not.toContain(keySecret(system.keys.a));
    expect((await api(adminA, 'POST', `/api/admin/keys/${keyB}/rotate`, {})).status).toBe(404);
    expect((await api(adminA, 'POST', `/api/admin/keys/${keyB}/expire`, { at: 'now' })).status).toBe(404);
    expect(await upload(system.keys.b)).toBe(200);

    const rotated = await api(adminA, 'POST', `/api/admin/keys/${keyA}/rotate`, { graceHours: 1 });
    expect(rotated.status).toBe(200);
    const fresh = rotated.json as { id: string; key: string; replaces: string; oldExpiresAt: string };
    expect(fresh.replaces).toBe(keyA);
    expect(Date.parse(fresh.oldExpiresAt) - Date.now()).toBeGreaterThan(55 * 60_000);
    expect(await upload(fresh.key)).toBe(200);
    expect(await upload(system.keys.a)).toBe(200); // still inside its grace period
    // Shown once: neither the list nor the database holds it.
    expect((await api(adminA, 'GET', '/api/admin/keys')).text).not.toContain(keySecret(fresh.key));
    expect(JSON.stringify(await system.core.database.db.selectFrom('api_keys').selectAll().execute())).not.toContain(keySecret(fresh.key));

    const expired = await api(adminA, 'POST', `/api/admin/keys/${keyA}/expire`, { at: 'now' });
    expect(expired.status).toBe(200);
    expect(await upload(system.keys.a)).toBe(401);
    expect(await upload(fresh.key)).toBe(200);
    expect((await api(adminA, 'POST', `/api/admin/keys/${keyA}/rotate`, {})).status).toBe(400); // it no longer works
    expect((await api(adminA, 'POST', `/api/admin/keys/${fresh.id}/expire`, { at: 'not a date' })).status).toBe(400);
    const audit = (await system.core.repos.audit.list({ limit: 20 })).filter((a) => a.action.startsWith('api_key.') && a.actor_type === 'user');
    expect(audit.map((a) => a.action)).toEqual(['api_key.expire', 'api_key.expire', 'api_key.create']);
    expect(audit.every((a) => a.actor_id === String(ids['admin-a']) && a.site_id === 'site-a')).toBe(true);
  });

  it('refuses radiologists and API keys', async () => {
    const rad = await login(system.url, 'rad-ab');
    for (const [method, path] of [['GET', '/api/admin/users'], ['GET', '/api/admin/keys'], ['POST', '/api/admin/users/rad-a/disable']]) {
      expect((await api(rad, method, path, method === 'POST' ? {} : undefined)).status).toBe(403);
      const viaKey = await fetch(`${system.url}${path}`, { method, headers: { authorization: `Bearer ${system.keys.b}` } });
      expect([401, 403]).toContain(viaKey.status);
    }
  });
});
