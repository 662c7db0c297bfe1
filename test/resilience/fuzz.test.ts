import { describe, expect, it } from 'vitest';
import { runFuzz } from './fuzz/harness.js';
import { writeFigures } from './figures.js';

const CASES = Number(process.env.FUZZ_CASES ?? 10_000);
const SEED = Number(process.env.FUZZ_SEED ?? 8);

/** The full fuzz run of issue 8: 10,000 mutated DICOM files (FUZZ_CASES, FUZZ_SEED to change). */
describe.skipIf(!process.env.FT_RESILIENCE)('DICOM fuzzer: mutated files through STOW-RS and the pipeline', () => {
  it(`${CASES} cases: 0 crashes, 0 hangs, 0 5xx, memory bounded, every rejection with a reason`, async () => {
    const figures = await runFuzz({ cases: CASES, runSeed: SEED, concurrency: 4, log: (line) => console.log(`[fuzz] ${line}`) });
    writeFigures('fuzz', figures);
    console.log(`[fuzz] ${JSON.stringify({ ...figures, findings: figures.findings.length })}`);
    expect(figures.findings).toEqual([]);
    expect(figures.cases).toBe(CASES);
    expect(figures.serverErrors).toBe(0);
    expect(figures.hangs).toBe(0);
    expect(figures.crashes).toBe(0);
    expect(figures.missingReason).toBe(0);
    // Bounded: the API holds at most one part in memory per upload; growth beyond 400 MB means a leak.
    expect(figures.apiRssMbMax).toBeLessThan(figures.apiRssMbStart + 400);
  }, 6 * 3600_000);
});
