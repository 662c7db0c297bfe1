import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FailureReason } from '../../services/dicom/index.js';
import { decodeInstance, isPixelDataError } from '../../services/imaging/index.js';
import { multipart } from '../helpers/dicom.js';
import { failures, referenced, startSystem, stow, type TestSystem } from '../helpers/system.js';
import { REGRESSION_DIR } from '../resilience/fuzz/harness.js';

const files = fs.existsSync(REGRESSION_DIR) ? fs.readdirSync(REGRESSION_DIR).filter((f) => f.endsWith('.dcm')).sort() : [];

/** Every input the fuzzer once found mishandled: now a clean answer with a reason that blames the file. */
describe.skipIf(!files.length)('fuzz regression fixtures through STOW-RS', () => {
  let system: TestSystem;
  beforeAll(async () => { system = await startSystem(); });
  afterAll(() => system?.close());

  it.each(files)('%s', async (file) => {
    const bytes = fs.readFileSync(path.join(REGRESSION_DIR, file));
    const body = multipart([bytes]);
    const res = await stow(system, body.body, body.contentType);
    expect(res.status).toBeLessThan(500);
    for (const f of failures(res.json)) {
      expect(f.reason).toBeTruthy();
      expect([FailureReason.ProcessingFailure, FailureReason.OutOfResources]).not.toContain(f.code);
      expect(f.reason).not.toMatch(/call stack|TypeError|RangeError|undefined/i);
    }
    if (referenced(res.json).length) {
      await decodeInstance(bytes).catch((error) => expect(isPixelDataError(error)).toBe(true));
    }
  });
});
