import net from 'node:net';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProcessSystem, type ProcessSystem } from '../helpers/processes.js';
import { login, PASSWORD } from '../helpers/session.js';
import { openEventStream, type EventStream } from '../helpers/streams.js';

/**
 * Issue 16, C1: the API runs as its own process under `ulimit -n 256`, and is flooded with idle
 * and half-sent connections, then with event streams. Before the fix it died with EMFILE (at 1,100
 * idle connections under ulimit -n 1024); it must keep answering /healthz.
 */
describe('the API under connection floods with a low open-file limit', () => {
  let system: ProcessSystem;
  let api: ChildProcess;
  const port = () => Number(new URL(system.url).port);

  beforeAll(async () => {
    system = await startProcessSystem({ LOG_LEVEL: 'warn', SSE_MAX_PER_SITE: '12' });
    for (const username of ['flood-1', 'flood-2']) {
      await system.core.services.auth.createUser({ username, password: PASSWORD, role: 'radiologist', siteIds: ['site-a'] });
    }
    api = await system.startApi({ openFiles: 256 });
  }, 120_000);
  afterAll(() => system?.stop());

  const healthz = () => fetch(`${system.url}/healthz`, { signal: AbortSignal.timeout(30_000) }).then((r) => r.status);

  /** Opens `n` raw TCP connections; every other one sends half a request and stops. Resolves when each connected or failed. */
  async function flood(n: number): Promise<{ sockets: net.Socket[]; closedByServer: () => number }> {
    const sockets: net.Socket[] = [];
    let closed = 0;
    await Promise.all(Array.from({ length: n }, (_, i) => new Promise<void>((resolve) => {
      const socket = net.connect(port(), '127.0.0.1');
      sockets.push(socket);
      socket.on('error', () => {});
      socket.once('close', () => { closed++; resolve(); });
      socket.once('connect', () => {
        if (i % 2) socket.write('GET /api/worklist HTTP/1.1\r\nHost: x\r\n');
        resolve();
      });
    })));
    return { sockets, closedByServer: () => closed };
  }

  it('keeps answering /healthz through 1,000 idle and half-sent connections', async () => {
    const { sockets, closedByServer } = await flood(1000);
    expect(await healthz()).toBe(200);
    expect(api.exitCode).toBeNull();
    // It made room by closing flood connections (its cap is far below 1,000 here).
    expect(closedByServer()).toBeGreaterThan(500);
    for (const socket of sockets) socket.destroy();
    expect(await healthz()).toBe(200);
  });

  it('caps event streams per user and per site, and keeps answering through a 300-stream flood', async () => {
    const one = await login(system.url, 'flood-1');
    const attempts = await Promise.all(Array.from({ length: 300 }, () => openEventStream(system.url, one.cookie).catch(() => undefined)));
    const open = attempts.filter((s): s is EventStream => s?.status === 200);
    expect(open.length).toBeGreaterThan(0);
    expect(open.length).toBeLessThanOrEqual(8); // SSE_MAX_PER_USER default
    expect(attempts.filter((s) => s?.status === 429).length).toBeGreaterThan(0);
    expect(await healthz()).toBe(200);
    expect(api.exitCode).toBeNull();
    // The site cap (12) counts every user's streams.
    const two = await login(system.url, 'flood-2');
    const more: EventStream[] = [];
    for (let i = 0; i < 8; i++) more.push(await openEventStream(system.url, two.cookie));
    expect(more.filter((s) => s.status === 200).length).toBe(Math.min(8, 12 - open.length));
    for (const stream of [...open, ...more]) stream.close();
    expect(await healthz()).toBe(200);
  }, 60_000);
});
