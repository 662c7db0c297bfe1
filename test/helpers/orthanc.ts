import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/**
 * A real Orthanc (Debian `orthanc` + `orthanc-dicomweb`) on free loopback ports, with its own
 * temp storage, for tests that need a PACS: DICOMweb at `${httpUrl}/dicom-web`, DICOM at
 * `aet@127.0.0.1:dicomPort`. `orthancAvailable()` says whether it can run here.
 */
export interface OrthancHandle {
  httpUrl: string;
  dicomWebUrl: string;
  dicomPort: number;
  aet: string;
  stop(): Promise<void>;
}

const ORTHANC = ['/usr/sbin/Orthanc', '/usr/bin/Orthanc'].find((p) => fs.existsSync(p));
const DICOMWEB_PLUGIN = ['/usr/share/orthanc/plugins/libOrthancDicomWeb.so'].find((p) => fs.existsSync(p));

export function orthancAvailable(): boolean {
  return Boolean(ORTHANC && DICOMWEB_PLUGIN);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

export async function startOrthanc(opts: { aet?: string; httpPort?: number; dicomPort?: number } = {}): Promise<OrthancHandle> {
  if (!ORTHANC || !DICOMWEB_PLUGIN) throw new Error('Orthanc with its DICOMweb plugin is not installed');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ft-orthanc-'));
  const httpPort = opts.httpPort ?? await freePort();
  const dicomPort = opts.dicomPort ?? await freePort();
  const aet = opts.aet ?? 'ORTHANC';
  const config = {
    Name: 'ft-test', StorageDirectory: path.join(dir, 'db'), IndexDirectory: path.join(dir, 'db'),
    HttpPort: httpPort, DicomPort: dicomPort, DicomAet: aet, RemoteAccessAllowed: false, AuthenticationEnabled: false,
    DicomCheckCalledAet: false, DicomAlwaysAllowStore: true, Plugins: [DICOMWEB_PLUGIN], HttpServerEnabled: true,
    DicomWeb: { Enable: true, Root: '/dicom-web/', EnableWado: true, Ssl: false, StowMaxInstances: 0, StowMaxSize: 0 },
    StableAge: 1, SaveJobs: false, LogExportedResources: false,
  };
  fs.writeFileSync(path.join(dir, 'orthanc.json'), JSON.stringify(config));
  const child: ChildProcess = spawn(ORTHANC, [path.join(dir, 'orthanc.json')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const httpUrl = `http://127.0.0.1:${httpPort}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`Orthanc exited (${child.exitCode}):\n${output.slice(-2000)}`);
    const up = await fetch(`${httpUrl}/system`).then((r) => r.ok, () => false);
    if (up) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`Orthanc did not answer within 60 s:\n${output.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    httpUrl, dicomWebUrl: `${httpUrl}/dicom-web`, dicomPort, aet,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
