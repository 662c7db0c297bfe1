import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ORPHAN_GRACE_MS, StorageRepository, TOUCH_EVERY_MS, type ReceivedObject } from '../../services/core/repositories/storage.repository.js';

/**
 * A received object is written at its final path under a new name, and StorageRepository.makeDurable
 * must not return before its bytes (fdatasync) and its folder entry are on disk: only then may its
 * row be committed. No row points to the file before that, so the orphan sweep may remove a file
 * without a row that went unchanged for ORPHAN_GRACE_MS; a live upload must never look like one, and
 * a file swept anyway must not be reported durable.
 */
describe('object commit', () => {
  let dataDir: string;
  let storage: StorageRepository;
  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ft-commit-'));
    storage = new StorageRepository(dataDir, 64 * 1024 * 1024);
    await storage.init();
  });
  afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));
  afterEach(() => vi.useRealTimers());

  const files = async () => {
    const keys: string[] = [];
    for await (const object of storage.listObjects()) keys.push(object.key);
    return keys;
  };

  /** A received object whose fdatasync settles only when `settle` is called. */
  async function gated(bytes: Buffer, siteId = 'site-a'): Promise<{ received: ReceivedObject; settle: () => void }> {
    const writer = storage.startObject(siteId);
    await writer.write(bytes);
    const received = await writer.finish();
    await received.durable;
    let settle!: () => void;
    const gate = new Promise<void>((resolve) => { settle = resolve; });
    return { received: { ...received, durable: gate }, settle };
  }

  it('a new object: answers only after its bytes are durable, at its own new path, and leaves no other file', async () => {
    const bytes = randomBytes(50_000);
    const { received, settle } = await gated(bytes, 'site-b');
    const committing = storage.makeDurable(received);
    let done = false;
    void committing.then(() => { done = true; });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(done).toBe(false);
    settle();
    const key = await committing;
    expect(key).toMatch(/^site-b\/[0-9a-f]{2}\/[0-9a-f-]{36}\.dcm$/);
    expect(fs.readFileSync(storage.pathOf(key)).equals(bytes)).toBe(true);
    expect(await files()).toEqual([key]);
    await storage.remove(key);
  });

  it('gives each object its own file, even two with the same bytes', async () => {
    const bytes = randomBytes(10_000);
    const keys = await Promise.all([0, 1].map(async () => {
      const writer = storage.startObject('site-a');
      await writer.write(bytes);
      return storage.makeDurable(await writer.finish());
    }));
    expect(keys[0]).not.toBe(keys[1]);
    for (const key of keys) {
      expect(fs.readFileSync(storage.pathOf(key)).equals(bytes)).toBe(true);
      await storage.remove(key);
    }
  });

  it('does not report durable a file removed while it was received (e.g. by an orphan sweep)', async () => {
    const writer = storage.startObject('site-a');
    await writer.write(randomBytes(20_000));
    await writer.opened();
    fs.rmSync(writer.path);
    const received = await writer.finish();
    await expect(storage.makeDurable(received)).rejects.toThrow(/removed while it was being received/);
  });

  it('touches the file of a slow sender, so the orphan sweep never sees it as abandoned', async () => {
    expect(ORPHAN_GRACE_MS).toBeGreaterThanOrEqual(5 * TOUCH_EVERY_MS);
    vi.useFakeTimers({ toFake: ['Date'] });
    const writer = storage.startObject('site-a');
    await writer.write(Buffer.alloc(1_000));
    await writer.opened();
    const longAgo = (Date.now() - ORPHAN_GRACE_MS - 60_000) / 1000;
    fs.utimesSync(writer.path, longAgo, longAgo); // as if nothing had changed it for longer than the grace period
    await writer.write(Buffer.alloc(1_000)); // less than a batch, within a minute: nothing to do yet
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(fs.statSync(writer.path).mtimeMs).toBeLessThan(Date.now() - ORPHAN_GRACE_MS);
    vi.setSystemTime(Date.now() + TOUCH_EVERY_MS + 1_000);
    await writer.write(Buffer.alloc(1_000)); // still less than a batch, but a minute later: touched
    const deadline = performance.now() + 5_000;
    while (fs.statSync(writer.path).mtimeMs < Date.now() - 10_000 && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(fs.statSync(writer.path).mtimeMs).toBeGreaterThan(Date.now() - 10_000);
    await writer.abort();
    expect(fs.existsSync(writer.path)).toBe(false);
  });
});
