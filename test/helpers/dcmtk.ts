import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SUPPORTED_TRANSFER_SYNTAXES } from '../../services/dicom/index.js';

/** Runs a dcmtk tool to its end; returns its exit code and everything it printed. */
export function runTool(command: string, args: string[], timeoutMs = 120_000): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${command} did not finish in ${timeoutMs} ms:\n${output}`)); }, timeoutMs);
    child.once('error', (err) => { clearTimeout(timer); reject(err); });
    child.once('exit', (code) => { clearTimeout(timer); resolve({ code, output }); });
  });
}

/**
 * A storescu configuration (-xf <file> FT) proposing each SOP class in every transfer syntax the
 * pipeline decodes, one context each, so storescu sends every file in its own syntax (its built-in
 * profiles propose uncompressed syntaxes only, and would transcode or fail).
 */
export function storescuConfig(sopClassUids: string[]): string {
  const syntaxes = SUPPORTED_TRANSFER_SYNTAXES.map((t, i) => ({ name: `TS${i}`, uid: t.uid }));
  const contexts = sopClassUids.flatMap((sop) => syntaxes.map((ts) => `${sop}\\${ts.name}`));
  if (contexts.length > 128) throw new Error('at most 128 presentation contexts');
  const text = [
    '[[TransferSyntaxes]]',
    ...syntaxes.flatMap((ts) => [`[${ts.name}]`, `TransferSyntax1 = ${ts.uid}`]),
    '[[PresentationContexts]]', '[FT]',
    ...contexts.map((c, i) => `PresentationContext${i + 1} = ${c}`),
    '[[Profiles]]', '[FT]', 'PresentationContexts = FT',
  ].join('\n');
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ft-storescu-')), 'storescu.cfg');
  fs.writeFileSync(file, `${text}\n`);
  return file;
}
