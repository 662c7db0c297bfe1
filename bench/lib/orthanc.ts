/**
 * A private Orthanc (Debian's 1.10 + DICOMweb plugin) for benchmarks: free loopback port, temp
 * config and storage, Orthanc's defaults otherwise (so its durability is what a default install
 * promises). `test/helpers/orthanc.ts` (branch dimse) does the same for tests with more options;
 * once both are on main this file can import from there instead.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../test/helpers/redis-server.js';

const ORTHANC_BINARY = ['/usr/sbin/Orthanc', '/usr/bin/Orthanc'].find((p) => fs.existsSync(p));
const DICOMWEB_PLUGIN = ['/usr/share/orthanc/plugins/libOrthancDicomWeb.so'].find((p) => fs.existsSync(p));
export const orthancAvailable = Boolean(ORTHANC_BINARY && DICOMWEB_PLUGIN);

export interface BenchOrthanc {
  /** STOW-RS root, e.g. http://127.0.0.1:1234/dicom-web */
  dicomWebUrl: string;
  pid: number;
  stop(): Promise<void>;
}

export async function startOrthanc(): Promise<BenchOrthanc> {
  if (!ORTHANC_BINARY || !DICOMWEB_PLUGIN) throw new Error('Orthanc or its DICOMweb plugin is not installed (apt install orthanc orthanc-dicomweb)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ft-bench-orthanc-'));
  const [httpPort, dicomPort] = [await freePort(), await freePort()];
  const configFile = path.join(dir, 'orthanc.json');
  fs.writeFileSync(configFile, JSON.stringify({
    Name: 'ft-bench', StorageDirectory: path.join(dir, 'storage'), IndexDirectory: path.join(dir, 'index'),
    HttpPort: httpPort, DicomPort: dicomPort, RemoteAccessAllowed: false, AuthenticationEnabled: false,
    StorageCompression: false, Plugins: [DICOMWEB_PLUGIN], DicomWeb: { Enable: true, Root: '/dicom-web/' },
  }));
  const child = spawn(ORTHANC_BINARY, [configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  let output = '';
  child.stderr!.on('data', (d: Buffer) => { output = (output + d.toString()).slice(-4000); });
  const httpUrl = `http://127.0.0.1:${httpPort}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`Orthanc exited (${child.exitCode}):\n${output}`);
    if (await fetch(`${httpUrl}/system`).then((r) => r.ok, () => false)) break;
    if (Date.now() > deadline) { child.kill('SIGKILL'); throw new Error(`Orthanc did not answer within 60 s:\n${output}`); }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    dicomWebUrl: `${httpUrl}/dicom-web`,
    pid: child.pid!,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
