import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase, type DatabaseHandle } from '../../services/core/db/database.js';
import { AiResultRepository } from '../../services/core/repositories/ai-result.repository.js';
import { InstanceRepository } from '../../services/core/repositories/instance.repository.js';
import { parseInstance } from '../../services/dicom/index.js';
import { makeDx } from '../helpers/dicom.js';

/**
 * The API and the workers are separate processes sharing one SQLite file. A worker storing a
 * result (read, then write, in one transaction) while the API commits uploads must wait for the
 * lock, not fail with "database is locked" (found by the fuzzer: SQLITE_BUSY_SNAPSHOT skips busy_timeout).
 */
describe('SQLite file shared by two connections (API and worker processes)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ft-sqlite-'));
  const handles: DatabaseHandle[] = [];
  afterAll(async () => {
    for (const h of handles) await h.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('stores results while the other connection keeps writing', async () => {
    const url = `sqlite:${path.join(dir, 'db.sqlite')}`;
    const api = await openDatabase(url);
    const worker = await openDatabase(url);
    handles.push(api, worker);
    await api.db.insertInto('sites').values({ id: 'site-a', name: 'A', created_at: Date.now() } as never).execute();
    const instances = new InstanceRepository(api.db);
    const rows = [];
    for (let i = 0; i < 60; i++) {
      const dx = makeDx();
      rows.push((await instances.insert('site-a', await parseInstance(dx.bytes), { sha256: `${i}`.padStart(64, '0'), sizeBytes: 1, storageKey: `k${i}` }, 3, { origin: 'api', actorId: 'test' }))!);
    }
    // The other process: commits small writes as fast as it can, like the API during an upload burst.
    const writer = spawn(process.execPath, ['-e', `
      const db = new (require('better-sqlite3'))(process.argv[1]);
      db.pragma('journal_mode = WAL'); db.pragma('busy_timeout = 5000');
      const insert = db.prepare("insert into audit_log (at, actor_type, actor_id, site_id, action, target_type, target_id) values (?, 'api_key', 'k', 'site-a', 'instance.store', 'instance', '1')");
      const end = Date.now() + 4000; let n = 0;
      while (Date.now() < end) { insert.run(Date.now()); n++; }
      console.log(n);
    `, path.join(dir, 'db.sqlite')], { cwd: path.resolve(import.meta.dirname, '../..'), stdio: ['ignore', 'pipe', 'inherit'] });
    let written = '';
    writer.stdout!.on('data', (d: Buffer) => (written += d.toString()));
    await new Promise((r) => setTimeout(r, 300));
    const results = new AiResultRepository(worker.db);
    const errors: string[] = [];
    for (const row of rows) {
      await results.store({ instance_id: row.id, site_id: 'site-a', study_id: row.study_id, status: 'done', model_name: 'm', model_version: '1', backend: 'cpu', probability: 0.1, raw_score: 0, flag: 'none', boxes: '[]', heatmap_key: null, reason: null, queued_at: null, started_at: null, decoded_at: null, inferred_at: null, stored_at: Date.now() })
        .catch((e: Error) => void errors.push(e.message));
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => writer.once('exit', r));
    expect(Number(written)).toBeGreaterThan(100); // the other process really was writing meanwhile
    expect(errors).toEqual([]);
    expect((await worker.db.selectFrom('ai_results').select('id').execute()).length).toBe(rows.length);
  });
});
