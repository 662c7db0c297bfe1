import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FailureReason } from '../../services/dicom/index.js';
import { makeDx, multipart } from '../helpers/dicom.js';
import { failures, postgresAvailable, startSystem, stow, type TestSystem } from '../helpers/system.js';
import { writeFigures } from './figures.js';

/** The local cluster's version when pg_ctlcluster can stop and start it (Debian, as root). */
function cluster(): string | undefined {
  try {
    const line = execFileSync('pg_lsclusters', ['-h'], { encoding: 'utf8' }).split('\n').find((l) => /\s5432\s/.test(l) && /\bmain\b/.test(l));
    return line?.split(/\s+/)[0];
  } catch {
    return undefined;
  }
}

const version = cluster();
const pgCtl = (action: 'stop' | 'start') => execFileSync('pg_ctlcluster', ['--skip-systemctl-redirect', version!, 'main', action, ...(action === 'stop' ? ['-m', 'fast'] : [])], { stdio: 'pipe' });

/**
 * PostgreSQL stopped and started under the API (only in npm run test:resilience: it stops the
 * shared test server for a few seconds). Uploads and reads fail cleanly (503 + Retry-After, a
 * reason per instance, nothing counted as stored) and work again once it is back.
 */
describe.skipIf(!process.env.FT_RESILIENCE || !version || !(await postgresAvailable()))('PostgreSQL restart under the API', () => {
  let system: TestSystem;
  let stopped = false;
  beforeAll(async () => { system = await startSystem({ db: 'postgres' }); });
  afterAll(async () => {
    if (stopped) pgCtl('start');
    await system?.close();
  });

  const send = (dx = makeDx()) => {
    const body = multipart([dx.bytes]);
    return stow(system, body.body, body.contentType).catch((error) => ({ status: -1, json: undefined, headers: new Headers(), error }));
  };

  it('503 with reasons while it is down, uploads stored again within seconds of it coming back', async () => {
    expect((await send()).status).toBe(200);
    pgCtl('stop');
    stopped = true;
    const stoppedAt = Date.now();
    const dx = makeDx();
    const down = await send(dx);
    expect(down.status).toBe(503);
    expect(down.headers.get('retry-after')).toBeTruthy();
    // Checking the API key already needs the database: a plain 503 with a message (or, when the key
    // was checked before it went away, the STOW body with 0x0110 per instance).
    const reasons = [(down.json as { message?: string } | undefined)?.message, ...failures(down.json).map((f) => f.code === FailureReason.ProcessingFailure && f.reason)];
    expect(reasons.some((r) => typeof r === 'string' && /retry later|try again later/.test(r)), JSON.stringify(down.json)).toBe(true);
    const qido = await fetch(`${system.url}/dicomweb/studies`, { headers: { authorization: `Bearer ${system.keys.a}` } });
    expect(qido.status).toBe(503);
    expect((await fetch(`${system.url}/readyz`)).status).toBe(503);
    const downMs = Date.now() - stoppedAt;

    pgCtl('start');
    stopped = false;
    const startedAt = Date.now();
    let recoveredMs = -1;
    let statusesWhileRecovering: number[] = [];
    while (Date.now() - startedAt < 60_000) {
      const res = await send(dx);
      statusesWhileRecovering.push(res.status);
      if (res.status === 200) {
        recoveredMs = Date.now() - startedAt;
        break;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    statusesWhileRecovering = [...new Set(statusesWhileRecovering)];
    writeFigures('postgres-restart', { downMs, recoveredAfterStartMs: recoveredMs, statusesWhileRecovering });
    console.log(`[postgres] down for ${downMs} ms; uploads stored again ${recoveredMs} ms after start; statuses meanwhile ${statusesWhileRecovering}`);
    expect(recoveredMs).toBeGreaterThanOrEqual(0);
    expect(statusesWhileRecovering.every((s) => s === 200 || s === 503)).toBe(true);
    // The upload refused while it was down was not half-recorded: stored once now, with its file.
    const row = await system.core.repos.instances.findBySop('site-a', dx.sopInstanceUid);
    expect(row?.status).toMatch(/stored|queued/);
    expect((await fetch(`${system.url}/readyz`)).status).toBe(200);
  }, 120_000);
});
