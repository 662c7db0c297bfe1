import { readFileSync } from 'node:fs';
import { parseInstance } from './services/imaging/dataset.js';
import { decodeInstance } from './services/imaging/index.js';
import { checkPlausibility, plausibilityMeasures } from './services/imaging/plausibility.js';
for (const f of process.argv.slice(2)) {
const bytes = readFileSync(f);
const frame = parseInstance(bytes).frameBytes(0);
const idx = Buffer.from(bytes).indexOf(Buffer.from(frame.subarray(0, 64)));
for (const start of [600, 5000]) {
const out = Buffer.from(bytes);
let seed = 1; const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
for (let i = idx + start; i < idx + frame.length - 2; i++) out[i] = Math.floor(rand() * 256);
try { const d = await decodeInstance(out); const v = checkPlausibility(d.display, d.warnings); d.warnings = []; console.log(f, start, v.readable ? 'READABLE' : v.reason, plausibilityMeasures(d.display), checkPlausibility(d.display).readable); } catch (e) { console.log(f, start, 'err', (e as Error).message); }
}}
