import fs from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ORPHAN_GRACE_MS } from '../../services/core/repositories/storage.repository.js';
import { makeDx, multipart } from '../helpers/dicom.js';
import { startProcessSystem, waitFor, type ProcessSystem } from '../helpers/processes.js';
import { login, PASSWORD } from '../helpers/session.js';
import { startSystem, stow, type TestSystem } from '../helpers/system.js';

const mode = (file: string) => fs.statSync(file).mode & 0o777;

/** Issue 16, M5/M7 and the low findings: data at rest private, no caching of patient data, full disk and full database. */
// Generous: every sign-in runs scrypt, slow on a loaded machine.
describe('data at rest and storage limits', { timeout: 90_000 }, () => {
  let system: TestSystem;
  beforeAll(async () => {
    // The test runner's umask is usually 022: the modes below must not depend on it.
    system = await startSystem();
    await system.core.services.auth.createUser({ username: 'rad-a', password: PASSWORD, role: 'radiologist', siteIds: ['site-a'] });
  });
  afterAll(() => system?.close());

  it('keeps the database, stored images, heat maps and files being received 0600 in 0700 folders', async () => {
    const body = multipart([makeDx().bytes]);
    expect((await stow(system, body.body, body.contentType)).status).toBe(200);
    await system.core.repos.storage.writeDerived('site-a/1/heatmap.png', Buffer.from('png'));
    const writer = await system.core.repos.storage.openObject('site-a'); // a file still being received
    try {
      const files: string[] = [];
      const dirs: string[] = [system.dataDir];
      for (const entry of fs.readdirSync(system.dataDir, { recursive: true }).map((f) => path.join(system.dataDir, String(f)))) {
        (fs.statSync(entry).isDirectory() ? dirs : files).push(entry);
      }
      expect(files.some((f) => f.endsWith('.dcm'))).toBe(true);
      expect(files.some((f) => f.endsWith('heatmap.png'))).toBe(true);
      expect(files).toContain(writer.path);
      expect(files.some((f) => f.endsWith('db.sqlite'))).toBe(true);
      for (const dir of dirs) expect(mode(dir), dir).toBe(0o700);
      for (const file of files) expect(mode(file), file).toBe(0o600);
    } finally {
      await writer.abort();
    }
  });

  it('answers with Cache-Control: no-store wherever patient data or sessions travel', async () => {
    const session = await login(system.url, 'rad-a');
    const asUser = { headers: { cookie: session.cookie } };
    const asKey = { headers: { authorization: `Bearer ${system.keys.a}` } };
    for (const [url, init] of [['/api/worklist', asUser], ['/dicomweb/studies', asKey], ['/dicomweb/studies', asUser], ['/auth/me', asUser]] as const) {
      const res = await fetch(`${system.url}${url}`, init);
      expect(res.status, url).toBe(200);
      expect(res.headers.get('cache-control'), url).toBe('no-store');
    }
  });

  it('is not ready when the data disk has less free space than MIN_FREE_DISK_MB', async () => {
    const full = await startSystem({ env: { MIN_FREE_DISK_MB: String(1024 ** 3) } }); // a petabyte: never free
    try {
      const res = await fetch(`${full.url}/readyz`);
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ status: 'not ready', disk: 'full' });
    } finally {
      await full.close();
    }
    expect((await (await fetch(`${system.url}/readyz`)).json()).disk).toBe('ok');
  });

  it('answers 507 when the database is full (SQLITE_FULL), not 503', async () => {
    const { db } = system.core.database;
    // Cap the file at its size now, then fill its free pages and the sessions table's last page:
    // the sign-in's session row has no room left.
    await sql`CREATE TABLE filler (x BLOB)`.execute(db);
    const pages = Number((await sql<{ page_count: number }>`PRAGMA page_count`.execute(db)).rows[0].page_count);
    await sql.raw(`PRAGMA max_page_count = ${pages}`).execute(db);
    const fillUntilFull = async (insert: (i: number) => Promise<unknown>) => {
      for (let i = 0; i < 100_000; i++) {
        const error = await insert(i).then(() => undefined, (err: { code?: string }) => err);
        if (error?.code === 'SQLITE_FULL') return;
        if (error) throw error;
      }
      throw new Error('the database never filled up');
    };
    const user = (await system.core.repos.users.byUsername('rad-a'))!;
    await fillUntilFull(() => sql`INSERT INTO filler VALUES (randomblob(512))`.execute(db));
    await fillUntilFull((i) => system.core.repos.users.createSession({ idHash: `filler-${i}`, userId: user.id, csrfToken: 'x', expiresAt: Date.now() + 60_000 }));
    try {
      // A sign-in writes a session row (and an audit row): the database has no page left for them.
      const res = await fetch(`${system.url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'rad-a', password: PASSWORD }) });
      expect(res.status).toBe(507);
      expect(res.headers.get('retry-after')).toBeTruthy();
    } finally {
      await sql.raw('PRAGMA max_page_count = 1073741823').execute(db);
      await sql`DROP TABLE filler`.execute(db);
      await db.deleteFrom('sessions').where('id_hash', 'like', 'filler-%').execute();
    }
  });
});

describe('partial upload files after a crash (API as its own process)', () => {
  let system: ProcessSystem | undefined;
  afterAll(() => system?.stop());

  it('are swept at start once unchanged for the grace period (tmp/ of older versions: two idle timeouts); recent ones stay', async () => {
    system = await startProcessSystem({ UPLOAD_IDLE_TIMEOUT_SEC: '30' });
    // Written at their final path, with no row: half an upload, or one still being received.
    const shard = path.join(system.env.DATA_DIR, 'objects', 'site-a', 'ab');
    fs.mkdirSync(shard, { recursive: true });
    const staleObject = path.join(shard, 'ab000000-0000-4000-8000-000000000001.dcm');
    const liveObject = path.join(shard, 'ab000000-0000-4000-8000-000000000002.dcm');
    fs.writeFileSync(staleObject, 'half an upload');
    fs.writeFileSync(liveObject, 'half an upload');
    const longAgo = (Date.now() - ORPHAN_GRACE_MS - 60_000) / 1000;
    fs.utimesSync(staleObject, longAgo, longAgo);
    const tmp = path.join(system.env.DATA_DIR, 'tmp');
    fs.mkdirSync(tmp, { recursive: true });
    const stale = path.join(tmp, 'left-by-a-crash.part');
    const recent = path.join(tmp, 'upload-in-progress.part');
    fs.writeFileSync(stale, 'half an upload');
    fs.writeFileSync(recent, 'half an upload');
    const old = (Date.now() - 61_000) / 1000; // just past 2 × 30 s
    fs.utimesSync(stale, old, old);
    await system.startApi();
    await waitFor(async () => !fs.existsSync(stale) && !fs.existsSync(staleObject), 20_000, 'the stale partial files to be swept');
    expect(fs.existsSync(recent)).toBe(true);
    expect(fs.existsSync(liveObject)).toBe(true);
  }, 90_000);
});
