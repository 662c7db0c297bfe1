import { describe, expect, it } from 'vitest';
import { runFuzz } from '../resilience/fuzz/harness.js';

/**
 * A small seeded slice of the DICOM fuzzer (the full 10,000-case run is `npm run test:resilience`):
 * mutated files through STOW-RS on a real API process and the worker's pipeline code.
 */
describe('fuzzed DICOM through STOW-RS and the pipeline (smoke: 300 cases)', () => {
  it('never answers 5xx, never hangs or crashes, and gives every rejection a reason', async () => {
    const figures = await runFuzz({ cases: Number(process.env.FUZZ_SMOKE_CASES ?? 300), runSeed: 20261129, concurrency: 4, saveFindings: false });
    expect(figures.findings).toEqual([]);
    expect(figures.cases).toBe(Number(process.env.FUZZ_SMOKE_CASES ?? 300));
    expect(figures.serverErrors + figures.hangs + figures.crashes + figures.missingReason).toBe(0);
    expect(figures.accepted).toBeGreaterThan(0); // the mutator leaves some files valid: the pipeline part ran
    expect(figures.apiRssMbMax).toBeLessThan(figures.apiRssMbStart + 400);
  }, 120_000);
});
