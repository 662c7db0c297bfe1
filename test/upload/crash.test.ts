import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../services/core/config.js';
import { createCore } from '../../services/core/core.js';
import { createLogger } from '../../services/core/logger.js';
import { makeDx, multipart } from '../helpers/dicom.js';
import { freePort } from '../helpers/redis-server.js';
import { REDIS_URL } from '../helpers/system.js';

const root = path.resolve(import.meta.dirname, '../..');

/** Runs the real API server as a child process (so it can really be SIGKILLed). */
function runServer(env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'services/api/server.ts')], {
    cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => { if (d.toString().includes('Server listening')) resolve(); });
    child.on('exit', (code) => reject(new Error(`server exited early (${code})`)));
  });
  return { child, ready };
}

const port = String(await freePort());

describe('a process killed between writing the file and committing its row', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ft-crash-'));
  const env = {
    DATA_DIR: dataDir, DATABASE_URL: `sqlite:${path.join(dataDir, 'db.sqlite')}`, REDIS_URL,
    QUEUE_PREFIX: `ft-crash-${process.pid}`, PORT: port, LOG_LEVEL: 'info',
  };
  afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  it('leaves nothing counted as stored, and the orphan file is cleaned up', async () => {
    // Site and key, made through the same code the CLI uses.
    const core = await createCore(loadConfig(env), createLogger('silent', 'test'));
    await core.services.apiKeys.createSite('site-a', 'A');
    const { key } = await core.services.apiKeys.createKey('site-a', 'k');
    await core.close();

    const dx = makeDx();
    const body = multipart([dx.bytes]);
    const post = () => fetch(`http://127.0.0.1:${port}/dicomweb/studies`, {
      method: 'POST', headers: { 'content-type': body.contentType, authorization: `Bearer ${key}` }, body: body.body,
    });

    const crashing = runServer({ ...env, FT_FAILPOINTS: 'after-file-commit' });
    await crashing.ready;
    await expect(post()).rejects.toThrow(); // the connection dies with the process: no "stored" was said
    await new Promise((resolve) => crashing.child.once('exit', resolve));
    expect(crashing.child.signalCode).toBe('SIGKILL');

    const after = await createCore(loadConfig(env), createLogger('silent', 'test'));
    try {
      expect(await after.repos.instances.findBySop('site-a', dx.sopInstanceUid)).toBeUndefined();
      expect(await after.repos.instances.countByStatus()).toEqual({});
      const files = [];
      for await (const object of after.repos.storage.listObjects()) files.push(object.key);
      expect(files).toHaveLength(1); // the orphan: on disk, not in the record
      expect(await after.services.reconcile.removeOrphanFiles(0)).toBe(1);
      const left = [];
      for await (const object of after.repos.storage.listObjects()) left.push(object.key);
      expect(left).toHaveLength(0);
    } finally {
      await after.close();
    }

    // The sender retries (it never got an answer) and the instance is stored normally.
    const healthy = runServer(env);
    await healthy.ready;
    try {
      const res = await post();
      expect(res.status).toBe(200);
    } finally {
      healthy.child.kill('SIGTERM');
      await new Promise((resolve) => healthy.child.once('exit', resolve));
    }
  }, 60_000);
});
