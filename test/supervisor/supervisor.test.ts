import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDx, multipart } from '../helpers/dicom.js';
import { exited, startProcessSystem, waitFor, type ProcessSystem } from '../helpers/processes.js';
import { freePort } from '../helpers/redis-server.js';

const root = path.resolve(import.meta.dirname, '../..');

/**
 * Issue 16, item 2: `npm start` (services/main.ts) supervises the API and the worker. kill -9 of
 * either brings it back; an image accepted while the worker was dead still gets its result;
 * SIGTERM stops everything; children of a supervisor killed with -9 (the DICOM listener too) do not live on.
 */
describe('the supervisor', () => {
  let system: ProcessSystem;
  let supervisor: ChildProcess;
  let output = '';

  /** pids of the children the supervisor reported starting, in order. */
  const started = (name: string) => [...output.matchAll(/"child":"(\w+)","pid":(\d+),"msg":"child started"/g)].filter((m) => m[1] === name).map((m) => Number(m[2]));
  const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };
  const healthy = () => fetch(`${system.url}/healthz`).then((r) => r.ok, () => false);

  async function upload(): Promise<string> {
    const dx = makeDx();
    const body = multipart([dx.bytes]);
    const res = await fetch(`${system.url}/dicomweb/studies`, { method: 'POST', headers: { 'content-type': body.contentType, authorization: `Bearer ${system.key}` }, body: body.body });
    expect(res.status).toBe(200);
    return dx.sopInstanceUid;
  }
  const resultOf = async (sop: string) => {
    const row = await system.core.database.db.selectFrom('instances').innerJoin('ai_results', 'ai_results.instance_id', 'instances.id')
      .select('ai_results.status').where('instances.sop_instance_uid', '=', sop).executeTakeFirst();
    return row?.status;
  };

  function startSupervisor() {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'services/main.ts')], {
      cwd: root, env: { ...process.env, ...system.env, FT_DEMO: '0' }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    return child;
  }

  beforeAll(async () => {
    // Its own DICOM port: the supervisor starts the listener too, and the default 11112 may be taken.
    system = await startProcessSystem({ DIMSE_PORT: String(await freePort()), DIMSE_HOST: '127.0.0.1' });
    supervisor = startSupervisor();
    await waitFor(async () => output.includes('classify worker started') && output.includes('DICOM listener started') && (await healthy()), 120_000, `API, worker and DICOM listener under the supervisor:\n${output.slice(-2000)}`);
  }, 150_000);
  afterAll(async () => {
    if (supervisor.exitCode === null) supervisor.kill('SIGKILL');
    for (const pid of [...started('api'), ...started('worker'), ...started('dimse')]) if (alive(pid)) process.kill(pid, 'SIGKILL');
    await system?.stop();
  });

  it('restarts the API after kill -9; it answers again', async () => {
    const [first] = started('api');
    process.kill(first, 'SIGKILL');
    await waitFor(async () => started('api').length === 2 && (await healthy()), 60_000, 'a new API process answering');
    expect(alive(first)).toBe(false);
  }, 90_000);

  it('restarts the worker after kill -9; an image accepted meanwhile still gets its result', async () => {
    const [first] = started('worker');
    process.kill(first, 'SIGKILL');
    const sop = await upload(); // acknowledged by the API while the worker is down or starting
    await waitFor(async () => started('worker').length === 2, 60_000, 'a new worker');
    await waitFor(() => resultOf(sop), 120_000, 'the result of the image sent while the worker was down');
    expect(['done', 'failed', 'not_applicable']).toContain(await resultOf(sop));
  }, 180_000);

  it('stops every child on SIGTERM', async () => {
    const children = [...started('api'), ...started('worker'), ...started('dimse')].filter(alive);
    expect(children.length).toBe(3);
    supervisor.kill('SIGTERM');
    await exited(supervisor);
    expect(supervisor.exitCode).toBe(0);
    for (const pid of children) expect(alive(pid), `child ${pid}`).toBe(false);
  }, 90_000);

  it('children exit by themselves when the supervisor is killed with -9', async () => {
    output = '';
    supervisor = startSupervisor();
    await waitFor(async () => started('api').length === 1 && output.includes('DICOM listener started') && (await healthy()), 120_000, 'the API and DICOM listener under a new supervisor');
    const [api] = started('api');
    const [dimse] = started('dimse');
    supervisor.kill('SIGKILL');
    await waitFor(async () => !alive(api), 30_000, 'the orphaned API to exit');
    await waitFor(async () => !alive(dimse), 30_000, 'the orphaned DICOM listener to exit');
  }, 180_000);
});
