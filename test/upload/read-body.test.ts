import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ClientTimeoutError, readBody, RequestTooLargeError } from '../../services/api/lib/receive.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Reads the whole body as the upload routes do, with `busyMs` of server work after each chunk. */
async function consume(body: AsyncIterable<Buffer>, busyMs = 0): Promise<{ bytes: number; error?: unknown }> {
  let bytes = 0;
  try {
    for await (const chunk of body) {
      bytes += chunk.length;
      if (busyMs) await sleep(busyMs);
    }
    return { bytes };
  } catch (error) {
    return { bytes, error };
  }
}

/** How a request body is cut off (readBody): the time the client takes, not the server, and its size. */
describe('request body limits', () => {
  it('cuts off a client that sends nothing for the idle time', async () => {
    const source = new PassThrough();
    source.write(Buffer.alloc(10));
    const started = Date.now();
    const { bytes, error } = await consume(readBody(source, { idleMs: 150, totalMs: 60_000, startedAt: started, maxBytes: 1e6 }));
    expect(bytes).toBe(10);
    expect(error).toBeInstanceOf(ClientTimeoutError);
    expect((error as Error).message).toMatch(/sent nothing for/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
  });

  it('does not count the time the server spends between chunks as the client being idle', async () => {
    const source = new PassThrough();
    source.write(Buffer.alloc(10));
    source.end(Buffer.alloc(20));
    // Each chunk keeps the server busy for three idle periods: the client had sent everything long before.
    const { bytes, error } = await consume(readBody(source, { idleMs: 50, totalMs: 60_000, startedAt: Date.now(), maxBytes: 1e6 }), 150);
    expect(error).toBeUndefined();
    expect(bytes).toBe(30);
  });

  it('cuts off a client that keeps sending but takes longer than the whole-body time', async () => {
    const source = new PassThrough();
    const drip = setInterval(() => source.write(Buffer.alloc(1)), 20); // never idle for 100 ms
    try {
      const started = Date.now();
      const { error } = await consume(readBody(source, { idleMs: 100, totalMs: 300, startedAt: started, maxBytes: 1e6 }));
      expect(error).toBeInstanceOf(ClientTimeoutError);
      expect((error as Error).message).toMatch(/not received within/);
      expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    } finally {
      clearInterval(drip);
    }
  });

  it('past the whole-body time while the server was busy, still takes what had already arrived', async () => {
    const source = new PassThrough();
    source.end(Buffer.alloc(10));
    const { bytes, error } = await consume(readBody(source, { idleMs: 1_000, totalMs: 50, startedAt: Date.now(), maxBytes: 1e6 }), 150);
    expect(error).toBeUndefined();
    expect(bytes).toBe(10);
  });

  it('stops a body larger than its limit and counts the bytes that arrived', async () => {
    const source = new PassThrough();
    for (let i = 0; i < 5; i++) source.write(Buffer.alloc(400));
    source.end();
    const counted: number[] = [];
    const { bytes, error } = await consume(readBody(source, { idleMs: 1_000, totalMs: 60_000, startedAt: Date.now(), maxBytes: 1_000, counted: (n) => counted.push(n) }));
    expect(error).toBeInstanceOf(RequestTooLargeError);
    expect(bytes).toBeLessThanOrEqual(1_000);
    expect(counted.reduce((a, b) => a + b, 0)).toBe(bytes);
  });
});
