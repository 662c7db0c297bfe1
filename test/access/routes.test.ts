import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDx, multipart } from '../helpers/dicom.js';
import { keySecret, startSystem, stow, type TestSystem } from '../helpers/system.js';

// /metrics is open unless METRICS_TOKEN is set; here it is set, and then it must be refused without it.
process.env.METRICS_TOKEN = 'metrics-token-for-the-access-test';

/**
 * Routes anyone may call, and why. Everything else the live app serves must refuse an anonymous
 * caller: a new route without authentication fails this test.
 */
const PUBLIC: { method: string; path: RegExp; why: string }[] = [
  { method: 'GET', path: /^\/healthz$|^\/readyz$/, why: 'health: liveness and readiness for orchestrators' },
  { method: 'POST', path: /^\/auth\/login$/, why: 'sign-in itself (rate-limited)' },
  { method: 'GET', path: /^\/docs(\/.*)?$|^\/openapi\.json$/, why: 'API description; no data' },
  { method: 'GET', path: /^\/$|^\/\*$|^\/admin$|^\/admin\.html$/, why: 'web app pages and static assets; their data comes from authenticated API calls' },
];
const isPublic = (method: string, p: string) => PUBLIC.some((x) => x.method === method && x.path.test(p));

/** Every (method, path) the app serves, read from Fastify's route tree. */
function routesOf(tree: string): { method: string; path: string }[] {
  const out: { method: string; path: string }[] = [];
  const stack: string[] = [];
  for (const line of tree.split('\n')) {
    const m = /^([│ ]*)[├└]── (.*) \(([A-Z, ]+)\)$/.exec(line.replace(/\u00a0/g, ' '));
    if (!m) continue;
    const depth = m[1].length / 4;
    stack.length = depth;
    const joined = (stack[depth - 1] ?? '') + m[2];
    const full = joined.startsWith('/') ? joined : `/${joined}`;
    stack[depth] = full;
    for (const method of m[3].split(',').map((x) => x.trim())) if (method !== 'HEAD') out.push({ method, path: full });
  }
  return out;
}

const SECRET_NAME = 'QUILLFEATHER^OSVALDA';

describe('access: every route, every kind of caller', () => {
  let system: TestSystem;
  let routes: { method: string; path: string }[];
  const dx = makeDx({ patientName: SECRET_NAME, patientId: 'PID-ACCESS-A1', accession: 'ACC-ACCESS-A1' });
  const ids = { studyId: 0, instanceId: 0 };
  const sessions: Record<string, { cookie: string; csrf: string }> = {};

  beforeAll(async () => {
    system = await startSystem();
    const { auth } = system.core.services;
    await auth.createUser({ username: 'rad-a', password: 'correct horse battery', role: 'radiologist', siteIds: ['site-a'] });
    await auth.createUser({ username: 'rad-b', password: 'correct horse battery', role: 'radiologist', siteIds: ['site-b'] });
    await auth.createUser({ username: 'admin-a', password: 'correct horse battery', role: 'admin', siteIds: ['site-a'] });
    await auth.createUser({ username: 'admin-b', password: 'correct horse battery', role: 'admin', siteIds: ['site-b'] });
    for (const user of ['rad-a', 'rad-b', 'admin-a', 'admin-b']) {
      const res = await fetch(`${system.url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: user, password: 'correct horse battery' }) });
      expect(res.status).toBe(200);
      sessions[user] = { cookie: /ft_session=[^;]+/.exec(res.headers.get('set-cookie')!)![0], csrf: (await res.json()).csrfToken };
    }
    const body = multipart([dx.bytes]);
    expect((await stow(system, body.body, body.contentType)).status).toBe(200); // site A's data
    const row = await system.core.repos.instances.findBySop('site-a', dx.sopInstanceUid);
    ids.studyId = row!.study_id;
    ids.instanceId = row!.id;
    routes = routesOf(system.app.printRoutes({ commonPrefix: false }));
  });
  afterAll(() => system?.close());

  /** The route's path with site A's resources filled in. */
  const keyIdA = () => system.keys.a.split('_')[1];
  const concrete = (p: string) => p
    // Account management: site A's radiologist and site A's key.
    .replace(/^\/api\/admin\/users\/:username/, '/api/admin/users/rad-a').replace(/^\/api\/admin\/keys\/:id/, `/api/admin/keys/${keyIdA()}`)
    .replace(':study', dx.studyUid).replace(':series', dx.seriesUid).replace(':instance', dx.sopInstanceUid)
    .replace(/^\/api\/studies\/:id/, `/api/studies/${ids.studyId}`).replace(/^\/api\/instances\/:id/, `/api/instances/${ids.instanceId}`)
    .replace(':queueName', 'classify').replace(/:(jobId|id)/g, `sop-site-a-${dx.sopInstanceUid}`).replace(/:\w+/g, 'x').replace(/\*$/, 'index.html');

  type Caller = 'anonymous' | 'key-a' | 'key-b' | 'rad-a' | 'rad-b' | 'admin-a' | 'admin-b';
  const call = async (caller: Caller, method: string, p: string, opts: { badBody?: boolean } = {}) => {
    const headers: Record<string, string> = {};
    if (caller === 'key-a') headers.authorization = `Bearer ${system.keys.a}`;
    if (caller === 'key-b') headers.authorization = `Bearer ${system.keys.b}`;
    if (sessions[caller]) {
      headers.cookie = sessions[caller].cookie;
      headers['x-csrf-token'] = sessions[caller].csrf; // so what is tested is the role and the site, not CSRF
    }
    let body: string | Buffer | undefined;
    if (method !== 'GET' && method !== 'DELETE') {
      if (/^\/dicomweb\/studies|^\/api\/instances$/.test(p)) {
        const m = multipart([makeDx().bytes]);
        headers['content-type'] = p === '/api/instances' ? 'application/dicom' : m.contentType;
        body = p === '/api/instances' ? makeDx().bytes : m.body;
      } else {
        headers['content-type'] = 'application/json';
        // A body that passes the routes' schemas, or (badBody) one that does not: credentials are
        // checked first either way, so an anonymous caller learns nothing about the schema.
        body = JSON.stringify(opts.badBody ? { bogus: ['x'] } : p.endsWith('/expire') ? { at: 'now' } : { decision: 'agree' });
      }
    }
    const res = await fetch(`${system.url}${concrete(p)}`, { method, headers, body, redirect: 'manual', signal: AbortSignal.timeout(10_000) });
    // SSE and other streams: read only the start.
    const reader = res.body?.getReader();
    let text = '';
    if (reader) {
      const deadline = Date.now() + 500;
      while (Date.now() < deadline && text.length < 200_000) {
        const chunk = await Promise.race([reader.read(), new Promise<undefined>((r) => setTimeout(() => r(undefined), 300))]);
        if (!chunk || chunk.done) break;
        text += Buffer.from(chunk.value).toString('latin1');
      }
      await reader.cancel().catch(() => {});
    }
    return { status: res.status, text };
  };

  const isAdminRoute = (p: string) => /^\/api\/admin\/|^\/admin\/queues|^\/api\/reviews\/export|^\/metrics/.test(p);
  const sitePrivate = (p: string) => /:study|:instance|:series|^\/api\/studies\/:id|^\/api\/instances\/:id|^\/api\/admin\/(users|keys)\/:/.test(p);

  it('finds the routes (sanity: the tree parser sees the known ones)', () => {
    const paths = routes.map((r) => `${r.method} ${r.path}`);
    for (const known of ['POST /dicomweb/studies', 'GET /dicomweb/studies/:study/series/:series/instances/:instance', 'GET /healthz', 'POST /auth/login']) expect(paths).toContain(known);
    expect(routes.length).toBeGreaterThan(20);
  });

  it('anonymous: every route except the listed public ones answers 401 (or 403)', async () => {
    const open: string[] = [];
    for (const r of routes) {
      if (isPublic(r.method, r.path)) continue;
      const { status } = await call('anonymous', r.method, r.path);
      // A wildcard (static files of a protected UI): the name we try may not exist; it must serve nothing.
      if (r.path.endsWith('*') && status === 404) continue;
      if (status !== 401 && status !== 403) open.push(`${r.method} ${r.path} → ${status}`);
      if (r.method !== 'GET' && r.method !== 'DELETE' && !r.path.startsWith('/dicomweb') && r.path !== '/api/instances') {
        const bad = await call('anonymous', r.method, r.path, { badBody: true });
        if (bad.status !== 401 && bad.status !== 403) open.push(`${r.method} ${r.path} (invalid body) → ${bad.status}`);
      }
    }
    expect(open).toEqual([]);
  });

  it("site B's key, radiologist and admin never read, list, retrieve or review site A's data", async () => {
    const leaks: string[] = [];
    const markers = [SECRET_NAME, 'QUILLFEATHER', 'PID-ACCESS-A1', 'ACC-ACCESS-A1', dx.studyUid, dx.sopInstanceUid];
    for (const caller of ['key-b', 'rad-b', 'admin-b'] as const) {
      for (const r of routes) {
        if (r.method !== 'GET' && !sitePrivate(r.path)) continue; // unsafe methods: only those aimed at site A's resources
        if (r.path.startsWith('/docs') || r.path.startsWith('/admin/queues')) continue; // no site data / queue ids only, see below
        const { status, text } = await call(caller, r.method, r.path);
        if (sitePrivate(r.path) && status >= 200 && status < 300) leaks.push(`${caller} ${r.method} ${r.path} → ${status}`);
        const seen = markers.filter((m) => text.includes(m));
        if (seen.length && !isAdminRoute(r.path)) leaks.push(`${caller} ${r.method} ${r.path} shows ${seen.join(', ')}`);
        // Account lists: site A's people and keys are not site B's admin's to see.
        const accounts = ['"rad-a"', '"admin-a"', keyIdA()].filter((m) => text.includes(m));
        if (accounts.length && /^\/api\/admin\/(users|keys)/.test(r.path)) leaks.push(`${caller} ${r.method} ${r.path} shows ${accounts.join(', ')}`);
      }
    }
    expect(leaks).toEqual([]);
    // Site A's key and people are untouched (no rotation, expiry, disable or new password by site B).
    expect((await call('key-a', 'GET', '/dicomweb/studies/:study')).status).toBe(200);
    expect((await call('rad-a', 'GET', '/api/worklist')).status).toBe(200);
    expect((await system.core.repos.audit.list({ limit: 500 })).filter((a) => a.actor_type === 'user' && /^user\.|^api_key\./.test(a.action))).toEqual([]);
    // No review was recorded on site A's study by anyone from site B.
    expect(await system.core.database.db.selectFrom('reviews').selectAll().execute()).toEqual([]);
  });

  it("site A's radiologist reads its own study (so the denials above are meaningful), but no admin route", async () => {
    expect((await call('rad-a', 'GET', '/dicomweb/studies/:study/series/:series/instances/:instance')).status).toBe(200);
    expect((await call('rad-a', 'GET', '/api/studies/:id')).status).toBe(200);
    expect((await call('key-a', 'GET', '/dicomweb/studies/:study')).status).toBe(200);
    const allowed: string[] = [];
    for (const r of routes.filter((x) => isAdminRoute(x.path) && !x.path.includes('*'))) {
      for (const caller of ['rad-a', 'key-a'] as const) {
        const { status } = await call(caller, r.method, r.path);
        if (status !== 401 && status !== 403) allowed.push(`${caller} ${r.method} ${r.path} → ${status}`);
      }
    }
    expect(allowed).toEqual([]);
  });

  it('an admin reaches the admin routes; an API key reaches no person route', async () => {
    expect((await call('admin-a', 'GET', '/api/admin/overview')).status).toBe(200);
    // Their own site's accounts (so the 404s site B's admin got above are meaningful).
    const users = await call('admin-a', 'GET', '/api/admin/users');
    expect(users.status).toBe(200);
    expect(users.text).toContain('"rad-a"');
    expect((await call('admin-a', 'GET', '/api/admin/keys')).text).toContain(keyIdA());
    // bull-board lists every site's jobs: superadmins only (test/admin/scoping.test.ts).
    expect((await call('admin-a', 'GET', '/admin/queues')).status).toBe(403);
    for (const p of ['/api/worklist', '/api/studies/:id', '/api/instances/:id/file', '/auth/me', '/api/events']) {
      expect([401, 403], p).toContain((await call('key-a', 'GET', p)).status);
    }
  });

  it('metrics need the token when METRICS_TOKEN is set', async () => {
    expect((await call('anonymous', 'GET', '/metrics')).status).toBe(401);
    const res = await fetch(`${system.url}/metrics`, { headers: { authorization: `Bearer ${process.env.METRICS_TOKEN}` } });
    expect(res.status).toBe(200);
  });

  it('API keys are stored hashed: the key shown once is nowhere in the database', async () => {
    const rows = await system.core.database.db.selectFrom('api_keys').selectAll().execute();
    const dump = JSON.stringify(rows);
    for (const key of [system.keys.a, system.keys.b]) {
      expect(dump).not.toContain(key);
      expect(dump).not.toContain(keySecret(key)); // nor its secret part
    }
  });

  it('security headers and a strict CSP on the web app; its pages carry no inline script', async () => {
    const res = await fetch(`${system.url}/`);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toMatch(/default-src 'self'/);
    expect(csp).toMatch(/frame-ancestors 'none'/);
    expect(csp).toMatch(/object-src 'none'/);
    const scriptSrc = /script-src ([^;]*)/.exec(csp)?.[1] ?? '';
    expect(scriptSrc).not.toMatch(/'unsafe-inline'|'unsafe-eval'|(^|\s)\*|https?:|data:/); // 'wasm-unsafe-eval' (WebAssembly codecs) is allowed
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    // API answers carry them too.
    const api = await fetch(`${system.url}/api/worklist`);
    expect(api.headers.get('x-content-type-options')).toBe('nosniff');
    expect(api.headers.get('content-security-policy')).toBeTruthy();

    const root = path.resolve(import.meta.dirname, '../..');
    const pages = ['web/index.html', 'web/admin.html', 'web/dist/index.html', 'web/dist/admin.html'].map((p) => path.join(root, p)).filter((p) => fs.existsSync(p));
    expect(pages.length).toBeGreaterThan(0);
    for (const page of pages) {
      const html = fs.readFileSync(page, 'utf8');
      const inline = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)].filter((m) => !/\bsrc=/.test(m[1]) || m[2].trim() !== '');
      expect(inline.map((m) => m[0].slice(0, 80)), page).toEqual([]);
      expect(html, page).not.toMatch(/\son[a-z]+\s*=\s*["']/i); // no inline event handlers
    }
  });
});
