import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Runs a DICOM checker on bytes; returns its exit code and all it printed. */
export async function check(tool: 'dciodvfy' | 'dcmdump' | 'dsrdump', bytes: Buffer): Promise<{ code: number; output: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ft-check-'));
  const file = path.join(dir, 'object.dcm');
  fs.writeFileSync(file, bytes);
  try {
    const { stdout, stderr } = await run(tool, tool === 'dcmdump' ? ['-q', file] : [file], { maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, output: (e.stdout ?? '') + (e.stderr ?? '') };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** dciodvfy's error lines (warnings are allowed: e.g. our private coding scheme). */
export const errorLines = (output: string) => output.split('\n').filter((l) => /^Error/i.test(l.trim()) || /^E:/.test(l.trim()));

/** Every SOP Instance UID referenced anywhere in a DICOM JSON object (0008,1155). */
export function referencedSops(json: unknown, out = new Set<string>()): Set<string> {
  if (Array.isArray(json)) json.forEach((v) => referencedSops(v, out));
  else if (json && typeof json === 'object') {
    for (const [key, value] of Object.entries(json as Record<string, { Value?: unknown[] }>)) {
      if (key === '00081155') for (const v of value.Value ?? []) out.add(String(v));
      else referencedSops(value, out);
    }
  }
  return out;
}

/** The bodies of a multipart/related message (STOW-RS request, WADO-RS answer), byte for byte. */
export function multipartBodies(message: Buffer, contentType: string): Buffer[] {
  const boundary = /boundary="?([^";]+)"?/.exec(contentType)?.[1];
  if (!boundary) throw new Error(`no boundary in ${contentType}`);
  const delimiter = Buffer.from(`--${boundary}`);
  const bodies: Buffer[] = [];
  let at = message.indexOf(delimiter);
  while (at >= 0) {
    const next = message.indexOf(delimiter, at + delimiter.length);
    if (next < 0) break;
    const part = message.subarray(at + delimiter.length, next);
    const headersEnd = part.indexOf('\r\n\r\n');
    // The part ends with the CRLF that precedes the next delimiter.
    bodies.push(Buffer.from(part.subarray(headersEnd + 4, part.length - 2)));
    at = next;
  }
  return bodies;
}
