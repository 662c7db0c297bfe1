/**
 * npx tsx bench/profile-summary.ts <file.cpuprofile> [top=25]
 *
 * Top self-time functions of a V8 CPU profile (from `node --cpu-prof`), as a Markdown table:
 * function, file:line, self ms and share of the sampled time (idle excluded).
 */
import fs from 'node:fs';
import path from 'node:path';

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }
interface Profile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }

const [file, topArg] = process.argv.slice(2);
if (!file) throw new Error('usage: tsx bench/profile-summary.ts <file.cpuprofile> [top]');
const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const selfUs = new Map<string, number>();
let total = 0;
let idle = 0;
profile.samples.forEach((id, i) => {
  const node = byId.get(id)!;
  const dt = profile.timeDeltas[i] ?? 0;
  const { functionName, url, lineNumber } = node.callFrame;
  if (functionName === '(idle)') { idle += dt; return; }
  total += dt;
  const where = url ? `${url.replace(/^file:\/\//, '').replace(process.cwd() + path.sep, '')}:${lineNumber + 1}` : '';
  const key = `${functionName || '(anonymous)'}\t${where}`;
  selfUs.set(key, (selfUs.get(key) ?? 0) + dt);
});
const rows = [...selfUs].sort((a, b) => b[1] - a[1]).slice(0, Number(topArg ?? 25));
console.log(`Sampled ${(total / 1000).toFixed(0)} ms busy, ${(idle / 1000).toFixed(0)} ms idle.\n`);
console.log('| function | where | self ms | share |');
console.log('|---|---|---:|---:|');
for (const [key, us] of rows) {
  const [fn, where] = key.split('\t');
  console.log(`| ${fn} | ${where.replace(/.*node_modules\//, 'node_modules/')} | ${(us / 1000).toFixed(0)} | ${((100 * us) / total).toFixed(1)} % |`);
}
