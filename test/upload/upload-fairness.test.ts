/**
 * One site cannot starve another of upload slots (issue 16, M3): site B's key holds every upload
 * slot it may with slow uploads that never finish, and site A's uploads are still stored. Real HTTP
 * against the API as its own process. With one pool shared by all keys (the bug), B's slow uploads
 * take every slot and A gets 503.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDx, multipart } from '../helpers/dicom.js';
import { startProcessSystem, type ProcessSystem } from '../helpers/processes.js';

const SLOTS = 4;

describe('upload slots per API key (API as its own process)', () => {
  let system: ProcessSystem;
  let keyB: string;
  const sockets: net.Socket[] = [];
  beforeAll(async () => {
    // MAX_CONCURRENT_UPLOADS_PER_KEY is left to its default (half the slots).
    system = await startProcessSystem({ MAX_CONCURRENT_UPLOADS: String(SLOTS), UPLOAD_IDLE_TIMEOUT_SEC: '30', UPLOAD_TIMEOUT_SEC: '120' });
    await system.core.services.apiKeys.createSite('site-b', 'B');
    keyB = (await system.core.services.apiKeys.createKey('site-b', 'test')).key;
    await system.startApi();
  }, 120_000);
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await system?.stop();
  });

  const upload = async (key: string) => {
    const body = multipart([makeDx().bytes]);
    const res = await fetch(`${system.url}/dicomweb/studies`, {
      method: 'POST', headers: { 'content-type': body.contentType, authorization: `Bearer ${key}` }, body: body.body,
    });
    return { status: res.status, text: await res.text() };
  };

  /** An upload that sends its head and then one byte every 200 ms: it holds its slot for the whole test. */
  const slowUpload = (key: string) => {
    const body = multipart([makeDx({ rows: 512, columns: 512 }).bytes]);
    const socket = net.connect(Number(new URL(system.url).port), '127.0.0.1', () => {
      socket.write(`POST /dicomweb/studies HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\nContent-Type: ${body.contentType}\r\nContent-Length: ${body.body.length}\r\n\r\n`);
      let sent = 0;
      const timer = setInterval(() => (socket.destroyed ? clearInterval(timer) : socket.write(body.body.subarray(sent, ++sent))), 200);
    });
    socket.on('error', () => {});
    sockets.push(socket);
  };

  it("serves site A's uploads while site B's key holds all of its slots with uploads that never finish", async () => {
    // B opens slow uploads until B itself is refused: then B holds every slot the server lets it have.
    let refusedB: { status: number; text: string } | undefined;
    for (let i = 0; i < 3 * SLOTS && !refusedB; i++) {
      slowUpload(keyB);
      await new Promise((r) => setTimeout(r, 300)); // the head reaches the route, which takes a slot
      const probe = await upload(keyB);
      if (probe.status !== 200) refusedB = probe;
    }
    // A is served, twice at once, while B's uploads are still in progress.
    const [a1, a2] = await Promise.all([upload(system.key), upload(system.key)]);
    expect([a1.status, a2.status]).toEqual([200, 200]);
    expect(refusedB?.status, 'B is refused for its own share, not because the server is full').toBe(429);
    expect(refusedB?.text).toMatch(/per API key/);
    expect(await system.core.database.db.selectFrom('instances').select('id').where('site_id', '=', 'site-a').execute()).toHaveLength(2);
  }, 90_000);
});
