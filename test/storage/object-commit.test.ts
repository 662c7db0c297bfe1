import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StorageRepository, type TempObject } from '../../services/core/repositories/storage.repository.js';

/**
 * StorageRepository.commit puts a temp file in place under its content address. It hard-links new
 * objects while their fdatasync is still in flight (temp.durable), but it must never trust a file
 * already at that path (a crash can leave a truncated one there, with no row) and must never answer
 * before the bytes are durable.
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

  /** A finished temp object whose fdatasync settles only when `settle` is called. */
  async function tempObject(bytes: Buffer): Promise<{ temp: TempObject; settle: () => void }> {
    const writer = await storage.openTemp();
    await writer.write(bytes);
    const temp = await writer.finish();
    await temp.durable;
    let settle!: () => void;
    const gate = new Promise<void>((resolve) => { settle = resolve; });
    return { temp: { ...temp, durable: gate }, settle };
  }

  it('rewrites a file left at the object path (e.g. truncated by a crash) instead of trusting it', async () => {
    const bytes = randomBytes(100_000);
    const { temp, settle } = await tempObject(bytes);
    const target = storage.pathOf(storage.keyFor('site-a', temp.sha256));
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, bytes.subarray(0, 10)); // what a crash between write and fsync can leave
    settle();
    const key = await storage.commit(temp, 'site-a');
    await storage.discardTemp(temp);
    const stored = fs.readFileSync(storage.pathOf(key));
    expect(createHash('sha256').update(stored).digest('hex')).toBe(temp.sha256);
  });

  it('does not replace a file at the object path before its own bytes are durable', async () => {
    const bytes = randomBytes(50_000);
    const { temp, settle } = await tempObject(bytes);
    const target = storage.pathOf(storage.keyFor('site-a', temp.sha256));
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, 'earlier copy');
    const committing = storage.commit(temp, 'site-a');
    let done = false;
    void committing.then(() => { done = true; });
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(done).toBe(false);
    expect(fs.readFileSync(target, 'utf8')).toBe('earlier copy');
    settle();
    await committing;
    expect(fs.readFileSync(target).equals(bytes)).toBe(true);
    await storage.discardTemp(temp);
  });

  it('a new object: answers only after its bytes are durable, and leaves no temp file', async () => {
    const bytes = randomBytes(50_000);
    const { temp, settle } = await tempObject(bytes);
    const committing = storage.commit(temp, 'site-b');
    let done = false;
    void committing.then(() => { done = true; });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(done).toBe(false);
    settle();
    const key = await committing;
    await storage.discardTemp(temp);
    expect(fs.readFileSync(storage.pathOf(key)).equals(bytes)).toBe(true);
    expect(fs.readdirSync(storage.tempDir)).toEqual([]);
  });
});
