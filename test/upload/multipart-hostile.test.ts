import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDx, multipart } from '../helpers/dicom.js';
import { unrecordedFiles } from '../helpers/ingest.js';
import { failures, referenced, startSystem, stow, type TestSystem } from '../helpers/system.js';

const B = 'bnd-7c1e';
const CT = `multipart/related; type="application/dicom"; boundary=${B}`;
const part = (body: Buffer, headers = 'Content-Type: application/dicom\r\n') => Buffer.concat([Buffer.from(`--${B}\r\n${headers}\r\n`), body, Buffer.from('\r\n')]);
const close = Buffer.from(`--${B}--\r\n`);

interface Case {
  name: string;
  contentType: string;
  body: () => Buffer;
  /** Expected HTTP status. */
  status: number;
  /** What the reason (message, or every Error Comment) must say. */
  reason?: RegExp;
  /** Instances that must be acknowledged as stored. */
  stored?: number;
}

/**
 * Broken and hostile multipart/related bodies against a real server: every one gets a 4xx (or a
 * STOW response whose failures carry reasons), never a 5xx, and the server keeps answering.
 */
describe('malformed and hostile multipart bodies (real HTTP)', () => {
  let system: TestSystem;
  beforeAll(async () => {
    system = await startSystem({ env: { MAX_REQUEST_MB: '2', MAX_PART_MB: '1', UPLOAD_IDLE_TIMEOUT_SEC: '2', UPLOAD_TIMEOUT_SEC: '4', MAX_CONCURRENT_UPLOADS: '2', MAX_CONCURRENT_UPLOADS_PER_KEY: '2' } });
  });
  afterAll(() => system?.close());

  const cases: Case[] = [
    { name: 'no boundary parameter', contentType: 'multipart/related; type="application/dicom"', body: () => Buffer.concat([part(makeDx().bytes), close]), status: 400, reason: /boundary/ },
    { name: 'boundary parameter given twice', contentType: `${CT}; boundary=other`, body: () => Buffer.concat([part(makeDx().bytes), close]), status: 400, reason: /more than once/ },
    { name: 'body uses another boundary than the header', contentType: CT, body: () => Buffer.from(`--zzz\r\nContent-Type: application/dicom\r\n\r\nabc\r\n--zzz--\r\n`), status: 400, reason: /no multipart boundary/ },
    { name: 'no closing boundary: the unterminated last part is dropped, the one before kept', contentType: CT, body: () => Buffer.concat([part(makeDx().bytes), part(makeDx().bytes)]), status: 202, reason: /ended before its closing boundary/, stored: 1 },
    { name: 'no closing boundary after the only part', contentType: CT, body: () => part(makeDx().bytes), status: 400, reason: /ended before its closing boundary/ },
    { name: 'only the closing boundary: no parts', contentType: CT, body: () => close, status: 400, reason: /no parts/ },
    { name: 'repeated delimiter lines (empty parts)', contentType: CT, body: () => Buffer.concat([Buffer.from(`--${B}\r\n\r\n\r\n--${B}\r\n\r\n\r\n`), part(makeDx().bytes), close]), status: 202, reason: /empty part/, stored: 1 },
    { name: 'type parameter missing', contentType: `multipart/related; boundary=${B}`, body: () => Buffer.concat([part(makeDx().bytes), close]), status: 415, reason: /type parameter/ },
    { name: 'type parameter wrong (metadata + bulk data)', contentType: `multipart/related; type="application/dicom+json"; boundary=${B}`, body: () => Buffer.concat([part(makeDx().bytes), close]), status: 415, reason: /not supported/ },
    { name: 'not multipart at all', contentType: 'application/json', body: () => Buffer.from('{}'), status: 415, reason: /multipart\/related/ },
    { name: 'a part without Content-Type is read as DICOM', contentType: CT, body: () => Buffer.concat([part(makeDx().bytes, ''), close]), status: 200, stored: 1 },
    { name: 'a part of another type is refused on its own', contentType: CT, body: () => Buffer.concat([part(Buffer.from('hello'), 'Content-Type: text/plain\r\n'), part(makeDx().bytes), close]), status: 202, reason: /text\/plain/, stored: 1 },
    { name: 'part header line without a colon', contentType: CT, body: () => Buffer.concat([part(makeDx().bytes, 'garbage line\r\n'), close]), status: 400, reason: /bad part header/ },
    { name: 'part headers never terminated (32 KB of header)', contentType: CT, body: () => Buffer.concat([Buffer.from(`--${B}\r\nX-Pad: ${'a'.repeat(32 * 1024)}`), close]), status: 400, reason: /headers too long/ },
    { name: 'text after a boundary on its line', contentType: CT, body: () => Buffer.from(`--${B}junk\r\nContent-Type: application/dicom\r\n\r\nabc\r\n--${B}--\r\n`), status: 400, reason: /text after a boundary/ },
    { name: 'one part over MAX_PART_MB', contentType: CT, body: () => Buffer.concat([part(Buffer.alloc(1024 * 1024 + 10, 1)), part(makeDx().bytes), close]), status: 202, reason: /per-file limit/, stored: 1 },
    { name: 'body over MAX_REQUEST_MB', contentType: CT, body: () => Buffer.concat([part(Buffer.alloc(900 * 1024, 1)), part(Buffer.alloc(900 * 1024, 2)), part(Buffer.alloc(900 * 1024, 3)), close]), status: 413, reason: /request body larger/ },
    { name: '1,000 tiny parts', contentType: CT, body: () => Buffer.concat([...Array.from({ length: 1000 }, () => part(Buffer.from('x'))), close]), status: 409, reason: /not a DICOM file/ },
    { name: '10,001 empty parts (over the part limit)', contentType: CT, body: () => Buffer.concat([Buffer.from(`--${B}\r\n\r\n\r\n`.repeat(10_001)), close]), status: 400, reason: /too many parts/ },
  ];

  it.each(cases)('$name → $status', async (c) => {
    const res = await stow(system, c.body(), c.contentType).catch((error) => ({ status: -1, json: { message: String(error) }, headers: new Headers() }));
    const reasons = [res.json?.message, ...failures(res.json).map((f) => f.reason)].filter(Boolean) as string[];
    expect({ status: res.status, reasons }).toMatchObject({ status: c.status });
    if (c.reason) expect(reasons.some((r) => c.reason!.test(r)), `reasons: ${JSON.stringify(reasons)}`).toBe(true);
    for (const f of failures(res.json)) expect(f.reason).toBeTruthy();
    expect(referenced(res.json).length).toBe(c.stored ?? 0);
    // The server is still fine, and no unrecorded file is left behind.
    expect((await fetch(`${system.url}/healthz`)).status).toBe(200);
    expect(await unrecordedFiles(system.core)).toEqual([]);
  }, 60_000);

  /** Sends the request head, then the body one byte per `everyMs`; resolves when the server answers or closes. */
  function slowClient(body: Buffer, everyMs: number) {
    return new Promise<{ ms: number; response: string; sent: number }>((resolve) => {
      const started = Date.now();
      const socket = net.connect(Number(new URL(system.url).port), '127.0.0.1');
      let response = '';
      let sent = 0;
      let timer: NodeJS.Timeout | undefined;
      socket.on('connect', () => {
        socket.write(`POST /dicomweb/studies HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${system.keys.a}\r\nContent-Type: ${CT}\r\nContent-Length: ${body.length}\r\n\r\n`);
        timer = setInterval(() => {
          if (sent < body.length && !socket.destroyed) socket.write(body.subarray(sent, ++sent));
        }, everyMs);
      });
      socket.on('data', (d) => (response += d.toString()));
      const done = () => { clearInterval(timer); resolve({ ms: Date.now() - started, response, sent }); };
      socket.on('close', done);
      socket.on('error', () => {});
    });
  }

  it('a 1-byte-per-second client is cut off at the request time limit and frees its upload slot; others are served meanwhile', async () => {
    const body = Buffer.concat([part(makeDx().bytes), close]);
    const slow = [slowClient(body, 1000), slowClient(body, 1000)]; // takes both upload slots (MAX_CONCURRENT_UPLOADS=2)
    await new Promise((r) => setTimeout(r, 500));
    const busy = multipart([makeDx().bytes]);
    const refused = await stow(system, busy.body, busy.contentType);
    expect(refused.status).toBe(503); // both slots held by the slow clients: a clean "retry later"
    expect(refused.headers.get('retry-after')).toBeTruthy();
    expect((await fetch(`${system.url}/healthz`)).status).toBe(200);
    const results = await Promise.all(slow);
    for (const r of results) {
      expect(r.sent).toBeLessThan(body.length);
      expect(r.response).toMatch(/^HTTP\/1.1 408/);
      expect(r.ms).toBeLessThan(10_000); // UPLOAD_TIMEOUT_SEC=4
    }
    // Slots are free again, nothing half-written stays behind.
    const ok = multipart([makeDx().bytes]);
    expect((await stow(system, ok.body, ok.contentType)).status).toBe(200);
    expect(await unrecordedFiles(system.core)).toEqual([]);
  }, 90_000);

  it('a client that stops sending mid-body is cut off after the idle timeout', async () => {
    const body = Buffer.concat([part(makeDx().bytes), close]);
    const started = Date.now();
    const result = await new Promise<number>((resolve) => {
      const socket = net.connect(Number(new URL(system.url).port), '127.0.0.1', () => {
        socket.write(`POST /dicomweb/studies HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${system.keys.a}\r\nContent-Type: ${CT}\r\nContent-Length: ${body.length}\r\n\r\n`);
        socket.write(body.subarray(0, 100));
      });
      let response = '';
      socket.on('data', (d) => (response += d.toString()));
      socket.on('close', () => {
        expect(response).toMatch(/^HTTP\/1.1 408/);
        resolve(Date.now() - started);
      });
      socket.on('error', () => {});
    });
    expect(result).toBeGreaterThanOrEqual(1900);
    expect(result).toBeLessThan(10_000); // UPLOAD_IDLE_TIMEOUT_SEC=2
    await new Promise((r) => setTimeout(r, 200));
    expect(await unrecordedFiles(system.core)).toEqual([]);
  }, 60_000);
});
