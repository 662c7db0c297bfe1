import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send } from '../../services/cli/send.js';
import { makeDx } from '../helpers/dicom.js';
import { startSystem, type TestSystem } from '../helpers/system.js';

describe('send CLI', () => {
  let system: TestSystem;
  let folder: string;
  beforeAll(async () => {
    system = await startSystem();
    folder = fs.mkdtempSync(path.join(os.tmpdir(), 'ft-send-'));
    fs.mkdirSync(path.join(folder, 'nested'));
    for (let i = 0; i < 4; i++) fs.writeFileSync(path.join(folder, i % 2 ? 'nested' : '', `img${i}.dcm`), makeDx().bytes);
    fs.writeFileSync(path.join(folder, 'README.txt'), 'not dicom');
    fs.writeFileSync(path.join(folder, 'broken.dcm'), Buffer.from('broken'.repeat(40)));
  });
  afterAll(async () => {
    await system?.close();
    fs.rmSync(folder, { recursive: true, force: true });
  });

  it('sends a folder recursively, then finds everything already stored the second time', async () => {
    const first = await send([folder], { url: system.url, key: system.keys.a, concurrency: 3 });
    expect(first).toMatchObject({ stored: 4, duplicate: 0, failed: 1, skipped: 1 });
    expect(first.failures[0]).toMatchObject({ file: expect.stringContaining('broken.dcm'), reason: expect.stringMatching(/not a DICOM file.*0xC000/) });
    const second = await send([folder], { url: system.url, key: system.keys.a, concurrency: 3 });
    expect(second).toMatchObject({ stored: 0, duplicate: 4, failed: 1 });
    expect(await system.core.repos.instances.countByStatus('site-a')).toEqual({ queued: 4 });
  });
});

describe('the samples folder', () => {
  let system: TestSystem;
  beforeAll(async () => {
    system = await startSystem();
  });
  afterAll(() => system?.close());

  it('is stored whole and queued once per image; a second send stores nothing new', async () => {
    const samples = path.resolve(import.meta.dirname, '../../samples');
    const expected = fs.readFileSync(path.join(samples, 'manifest.csv'), 'utf8').trim().split('\n').length - 1;
    const first = await send([samples], { url: system.url, key: system.keys.a, concurrency: 4 });
    expect(first).toMatchObject({ stored: expected, failed: 0, duplicate: 0 });
    const counts = await system.core.jobs.classify.queue.getJobCounts('waiting', 'prioritized');
    expect(counts.waiting + counts.prioritized).toBe(expected);
    const second = await send([samples], { url: system.url, key: system.keys.a, concurrency: 4 });
    expect(second).toMatchObject({ stored: 0, duplicate: expected, failed: 0 });
    const after = await system.core.jobs.classify.queue.getJobCounts('waiting', 'prioritized');
    expect(after.waiting + after.prioritized).toBe(expected);
  });
});
