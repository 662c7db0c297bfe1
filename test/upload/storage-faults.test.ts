import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FailureReason } from '../../services/dicom/index.js';
import { makeDx, multipart } from '../helpers/dicom.js';
import { failures, referenced, startSystem, stow, type TestSystem } from '../helpers/system.js';

/** Mounts a small tmpfs (root only); undefined when this machine does not let us. */
function mountTmpfs(sizeMb: number): string | undefined {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ft-full-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}m`, 'tmpfs', dir], { stdio: 'pipe' });
    return dir;
  } catch (error) {
    fs.rmSync(dir, { recursive: true, force: true });
    console.warn(`storage-faults: skipped, cannot mount a tmpfs here (${(error as Error).message.split('\n')[0]}); run as root`);
    return undefined;
  }
}

const mountPoint = process.platform === 'linux' && process.getuid?.() === 0 ? mountTmpfs(6) : undefined;

/** Lazy unmount works with files still open: never leave the mount behind, even if a hook times out. */
function unmount() {
  if (!mountPoint || !fs.existsSync(mountPoint)) return;
  try { execFileSync('umount', ['-l', mountPoint], { stdio: 'pipe' }); } catch { /* not mounted any more */ }
  fs.rmSync(mountPoint, { recursive: true, force: true });
}
if (mountPoint) process.once('exit', unmount);

function count(dir: string): number {
  if (!fs.existsSync(dir)) return 0;
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).length;
}

/**
 * Data folder full or read-only: uploads fail with 507 / 503 and a reason, nothing half-written is
 * counted as stored (no row, no object file, no temp file), and uploads work again once space returns.
 */
describe.skipIf(!mountPoint)('data folder full or read-only (tmpfs)', () => {
  let system: TestSystem;
  const dataDir = path.join(mountPoint ?? '/nonexistent', 'data');
  const dbDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ft-full-db-'));
  beforeAll(async () => {
    // The database lives elsewhere: this is about the file store.
    system = await startSystem({ env: { DATA_DIR: dataDir, DATABASE_URL: `sqlite:${path.join(dbDir, 'db.sqlite')}` } });
  });
  afterAll(async () => {
    unmount();
    await Promise.race([system?.close(), new Promise((r) => setTimeout(r, 20_000))]).catch(() => {});
    fs.rmSync(dbDir, { recursive: true, force: true });
  });

  const big = () => makeDx({ rows: 512, columns: 512 }); // ~512 KB
  const rows = async () => (await system.core.database.db.selectFrom('instances').select('id').execute()).length;
  const fill = () => {
    // Leave less than one image's worth of space.
    const filler = path.join(mountPoint!, 'filler');
    const chunk = Buffer.alloc(64 * 1024, 1);
    const fd = fs.openSync(filler, 'w');
    try {
      for (;;) fs.writeSync(fd, chunk);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
    } finally {
      fs.closeSync(fd);
    }
    fs.truncateSync(filler, fs.statSync(filler).size - 200 * 1024);
    return filler;
  };

  it('disk full: STOW answers 507 with 0xA700 and a reason per instance; nothing is stored or left behind', async () => {
    const filler = fill();
    const before = await rows();
    const sent = [big(), big()];
    const body = multipart(sent.map((d) => d.bytes));
    const res = await stow(system, body.body, body.contentType);
    expect(res.status).toBe(507);
    expect(res.headers.get('retry-after')).toBeTruthy();
    const f = failures(res.json);
    expect(f).toHaveLength(2);
    for (const x of f) {
      expect(x.code).toBe(FailureReason.OutOfResources);
      expect(x.reason).toMatch(/storage is full/);
    }
    expect(await rows()).toBe(before);
    expect(count(path.join(dataDir, 'objects'))).toBe(0);

    // The single-file endpoint says the same.
    const one = await fetch(`${system.url}/api/instances`, { method: 'POST', headers: { 'content-type': 'application/dicom', authorization: `Bearer ${system.keys.a}` }, body: big().bytes });
    expect(one.status).toBe(507);
    expect((await one.json()).message).toMatch(/storage is full/);

    // Space returns: the same upload is stored.
    fs.rmSync(filler);
    const again = await stow(system, body.body, body.contentType);
    expect(again.status).toBe(200);
    expect(referenced(again.json)).toHaveLength(2);
    expect(await rows()).toBe(before + 2);
  });

  it('read-only data folder: STOW answers 503 + Retry-After with 0x0110 and the reason; recovers when writable', async () => {
    const before = await rows();
    execFileSync('mount', ['-o', 'remount,ro', mountPoint!], { stdio: 'pipe' });
    const dx = makeDx();
    const body = multipart([dx.bytes]);
    let res;
    try {
      res = await stow(system, body.body, body.contentType);
    } finally {
      execFileSync('mount', ['-o', 'remount,rw', mountPoint!], { stdio: 'pipe' });
    }
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBeTruthy();
    expect(failures(res.json)).toEqual([{ code: FailureReason.ProcessingFailure, reason: expect.stringMatching(/read-only/), sop: undefined }]);
    expect(await rows()).toBe(before);
    const again = await stow(system, body.body, body.contentType);
    expect(again.status).toBe(200);
    expect(await rows()).toBe(before + 1);
  });
});

/**
 * SQLite write lock held by another process (a long backup, a stuck tool): the upload fails
 * cleanly with 503 + Retry-After after busy_timeout, its file is not kept, and the next upload after
 * the lock is released is stored.
 */
describe('database locked by another process', () => {
  let system: TestSystem;
  beforeAll(async () => { system = await startSystem(); });
  afterAll(() => system?.close());

  it('503 with a reason while locked, stored once the lock is gone', async () => {
    const file = path.join(system.dataDir, 'db.sqlite');
    const locker = spawn(process.execPath, ['-e', `
      const db = new (require('better-sqlite3'))(process.argv[1]);
      db.exec('begin exclusive'); console.log('locked');
      process.stdin.on('data', () => { db.exec('rollback'); db.close(); process.exit(0); });
    `, file], { cwd: path.resolve(import.meta.dirname, '../..'), stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve) => locker.stdout!.once('data', () => resolve()));
      const dx = makeDx();
      const body = multipart([dx.bytes]);
      const res = await stow(system, body.body, body.contentType);
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBeTruthy();
      expect(failures(res.json)[0]).toMatchObject({ code: FailureReason.ProcessingFailure, reason: expect.stringMatching(/try again later/) });
      expect(count(path.join(system.dataDir, 'objects'))).toBe(0); // the file of the unrecorded upload was taken back
      locker.stdin!.write('release\n');
      await new Promise((r) => locker.once('exit', r));
      const again = await stow(system, body.body, body.contentType);
      expect(again.status).toBe(200);
      expect(await system.core.repos.instances.findBySop('site-a', dx.sopInstanceUid)).toBeTruthy();
    } finally {
      if (locker.exitCode === null) locker.kill('SIGKILL');
    }
  }, 30_000);
});
