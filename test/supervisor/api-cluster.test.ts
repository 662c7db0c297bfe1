/**
 * services/api/cluster.ts: API_PROCESSES API processes behind one port. Uploads to the one port are
 * stored whichever process takes them; an API process that dies is replaced and the port serves
 * through both again.
 */
import fs from 'node:fs';
import http from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { makeDx, multipart } from '../helpers/dicom.js';
import { startProcessSystem, waitFor, type ProcessSystem } from '../helpers/processes.js';

/** Node processes whose parent is `pid` (the cluster's API processes; not tsx's esbuild). */
function nodeChildren(pid: number): number[] {
  return fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e)).flatMap((e) => {
    try {
      const ppid = Number(fs.readFileSync(`/proc/${e}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
      return ppid === pid && fs.readFileSync(`/proc/${e}/comm`, 'utf8').trim() === 'node' ? [Number(e)] : [];
    } catch {
      return [];
    }
  });
}

describe.skipIf(process.platform !== 'linux')('API processes behind one port (services/api/cluster.ts)', () => {
  let system: ProcessSystem | undefined;
  afterAll(() => system?.stop());

  it('stores uploads through either process and replaces one that dies', async () => {
    system = await startProcessSystem({ LOG_LEVEL: 'warn' });
    const s = system;
    const primary = await s.startApi({ entry: 'services/api/cluster.ts', env: { API_PROCESSES: '2' } });
    const first = await waitFor(async () => { const c = nodeChildren(primary.pid!); return c.length === 2 && c; }, 60_000, 'two API processes');

    // A new connection per upload (no keep-alive): a connection held by a process that is then
    // killed is reset, as with any server; the claim here is that the port takes new ones.
    const upload = () => new Promise<number>((resolve, reject) => {
      const body = multipart([makeDx({ rows: 64, columns: 64 }).bytes]);
      const req = http.request(`${s.url}/dicomweb/studies`, {
        method: 'POST', agent: false, headers: { 'content-type': body.contentType, authorization: `Bearer ${s.key}` },
      }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode!)); });
      req.on('error', reject);
      req.setTimeout(30_000, () => req.destroy(new Error('no answer in 30 s')));
      req.end(body.body);
    });
    expect(await Promise.all(Array.from({ length: 6 }, upload))).toEqual(Array(6).fill(200));

    process.kill(first[0], 'SIGKILL');
    const now = await waitFor(async () => { const c = nodeChildren(primary.pid!); return c.length === 2 && !c.includes(first[0]) && c; }, 60_000, 'a replacement API process');
    expect(now).toContain(first[1]);
    // Both the survivor and the replacement take uploads on the same port (round-robin: two in a row reach both).
    expect(await Promise.all([upload(), upload()])).toEqual([200, 200]);
    expect(await Promise.all([upload(), upload()])).toEqual([200, 200]);
    const rows = await s.core.database.db.selectFrom('instances').select('id').execute();
    expect(rows).toHaveLength(10);
  }, 180_000);
});
