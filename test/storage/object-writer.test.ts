import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StorageRepository } from '../../services/core/repositories/storage.repository.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Split as a network delivers it: uneven chunks, so slab and batch boundaries fall mid-chunk. */
function chunks(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const size = [65_536, 1_000, 300_001, 7][i % 4];
    out.push(Buffer.from(bytes.subarray(at, at + size)));
    at += size;
  }
  return out;
}

/**
 * ObjectWriter copies received bytes into slabs that are reused from one object to the next
 * (storage.repository.ts): what it writes, hashes and hands over for parsing must be exactly the
 * object's own bytes, whatever was in the slab before, and a slab must not be reused while an
 * object still holds it.
 */
describe('object writer', () => {
  let dataDir: string;
  let storage: StorageRepository;
  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ft-writer-'));
    storage = new StorageRepository(dataDir, 64 * 1024 * 1024);
    await storage.init();
  });
  afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  async function receive(bytes: Buffer) {
    const writer = storage.startObject('site-a');
    for (const chunk of chunks(bytes)) await writer.write(chunk);
    const received = await writer.finish();
    await received.durable;
    return received;
  }

  it('hands over, hashes and writes exactly the bytes received, across slab reuse', async () => {
    // 20 MB spans two 16 MiB slabs (joined for parsing); the small ones reuse slabs that held it.
    for (const size of [20 * 1024 * 1024 + 123, 512 * 1024 + 5, 3, 2 * 1024 * 1024]) {
      const bytes = randomBytes(size);
      const received = await receive(bytes);
      expect(received.sizeBytes).toBe(size);
      expect(received.sha256).toBe(sha(bytes));
      expect(received.bytes!.equals(bytes)).toBe(true);
      expect(fs.readFileSync(storage.pathOf(received.storageKey)).equals(bytes)).toBe(true);
      received.release();
      await storage.remove(received.storageKey);
    }
  });

  it('objects received at once keep their own bytes; a held object is not overwritten by the next', async () => {
    const held = randomBytes(700_000);
    const first = await receive(held);
    // Not released: its slab must not go to the objects below.
    const others = await Promise.all(Array.from({ length: 6 }, async () => {
      const bytes = randomBytes(300_000 + Math.floor(Math.random() * 900_000));
      const received = await receive(bytes);
      return { bytes, received };
    }));
    for (const { bytes, received } of others) {
      expect(received.bytes!.equals(bytes)).toBe(true);
      received.release();
    }
    await Promise.all(Array.from({ length: 6 }, async () => (await receive(randomBytes(600_000))).release()));
    expect(first.bytes!.equals(held)).toBe(true);
    first.release();
  });
});
