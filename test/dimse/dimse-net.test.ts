import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const probe = path.join(import.meta.dirname, 'fixtures/dimse-net-probe.ts');
const run = (...args: string[]) => promisify(execFile)(process.execPath, ['--import', 'tsx', probe, ...args], { cwd: root, env: { ...process.env, LOG_LEVEL: 'debug' } });

/** Every .ts file under services/ that imports a module by this name. */
function importers(moduleName: string): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.ts') && new RegExp(`from '${moduleName}'|import\\('${moduleName}'\\)`).test(fs.readFileSync(full, 'utf8'))) found.push(path.relative(root, full));
    }
  };
  walk(path.join(root, 'services'));
  return found;
}

describe('services/dimse-net: the one wrapper around dcmjs-dimse', () => {
  it('is the only code that imports dcmjs-dimse, and services/results does not import the listener entry point', () => {
    expect(importers('dcmjs-dimse')).toEqual(['services/dimse-net/dcmjs-dimse.ts']);
    expect(importers('\\.\\./\\.\\./dimse/[^\']+').concat(importers('\\.\\./dimse/[^\']+')).filter((f) => f.startsWith('services/results/'))).toEqual([]);
  });

  it('stores through our SCU into our SCP and prints nothing of the library to stdout', async () => {
    const { stdout, stderr } = await run();
    expect(stdout).toBe('RESULT {"statuses":[0],"received":1}\n');
    expect(stderr).toBe('');
  }, 60_000);

  it('routes the library log to our logger at debug level when asked', async () => {
    const { stdout } = await run('route');
    const lines = stdout.trim().split('\n');
    expect(lines.pop()).toBe('RESULT {"statuses":[0],"received":1}');
    const logged = lines.map((l) => JSON.parse(l) as { level: number; library?: string; msg: string });
    expect(logged.length).toBeGreaterThan(0);
    expect(logged.every((l) => l.level === 20 && l.library === 'dcmjs-dimse')).toBe(true);
    expect(logged.some((l) => /C-STORE RQ/.test(l.msg))).toBe(true);
  }, 60_000);
});
