import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './redis-server.js';

/** Where Debian puts Orthanc and its DICOMweb plugin (`orthanc`, `orthanc-dicomweb`). */
export const ORTHANC_BINARY = ['/usr/sbin/Orthanc', '/usr/bin/Orthanc'].find((p) => fs.existsSync(p));
export const ORTHANC_DICOMWEB_PLUGIN = ['/usr/share/orthanc/plugins/libOrthancDicomWeb.so'].find((p) => fs.existsSync(p));
/** Whether Orthanc and its DICOMweb plugin are installed here. */
export function orthancAvailable(): boolean {
  return Boolean(ORTHANC_BINARY && ORTHANC_DICOMWEB_PLUGIN);
}
export { freePort };

export interface OrthancOptions {
  /** Orthanc's own AE title (default ORTHANC_TEST). */
  aet?: string;
  /** DicomWeb.Servers: name → where and how Orthanc pushes by STOW-RS. */
  dicomWebServers?: Record<string, { url: string; headers?: Record<string, string> }>;
  /** DicomModalities: name → the C-STORE peer. */
  modalities?: Record<string, { aet: string; host: string; port: number }>;
  /** A fixed HTTP port (e.g. to bring back a destination that was down); default a free one. */
  httpPort?: number;
  /** Called with its folder (config, storage, index) when it stops, instead of removing it there (benchmarks remove all at the end). */
  keepFolder?: (dir: string) => void;
}

export type OrthancHandle = OrthancInstance;

export interface OrthancInstance {
  httpUrl: string;
  /** The DICOMweb root: `${httpUrl}/dicom-web`. */
  dicomWebUrl: string;
  dicomPort: number;
  aet: string;
  /** The Orthanc process (benchmarks read its CPU time). */
  pid: number;
  /** Orthanc's REST API (JSON in and out); throws on an HTTP error with Orthanc's answer. */
  rest<T = unknown>(method: string, urlPath: string, body?: unknown): Promise<T>;
  /** Runs an Orthanc job (e.g. a push) and waits until it ends; returns its final state. */
  runJob(urlPath: string, body: Record<string, unknown>, timeoutMs?: number): Promise<{ State: string; ErrorCode?: number; ErrorDescription?: string; ErrorDetails?: string }>;
  output(): string;
  stop(): Promise<void>;
}

/**
 * A private Orthanc (Debian's 1.10 with the DICOMweb plugin) on free ports with a temp config and
 * storage folder. HTTP answers loopback only (RemoteAccessAllowed false); Orthanc 1.10 has no bind
 * address option. Its DICOM port takes C-STOREs from any caller (a PACS our results go to).
 */
export async function startOrthanc(opts: OrthancOptions = {}): Promise<OrthancInstance> {
  if (!ORTHANC_BINARY || !ORTHANC_DICOMWEB_PLUGIN) throw new Error('Orthanc or its DICOMweb plugin is not installed (apt install orthanc orthanc-dicomweb)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ft-orthanc-'));
  const [httpPort, dicomPort] = [opts.httpPort ?? await freePort(), await freePort()];
  const aet = opts.aet ?? 'ORTHANC_TEST';
  const config = {
    Name: 'fracture-triage-test',
    StorageDirectory: path.join(dir, 'storage'),
    IndexDirectory: path.join(dir, 'index'),
    HttpPort: httpPort,
    DicomPort: dicomPort,
    DicomAet: aet,
    RemoteAccessAllowed: false,
    AuthenticationEnabled: false,
    StorageCompression: false,
    Plugins: [ORTHANC_DICOMWEB_PLUGIN],
    DicomWeb: {
      Enable: true,
      Root: '/dicom-web/',
      Servers: Object.fromEntries(Object.entries(opts.dicomWebServers ?? {}).map(([name, s]) => [name, { Url: s.url, HttpHeaders: s.headers ?? {} }])),
    },
    DicomModalities: Object.fromEntries(Object.entries(opts.modalities ?? {}).map(([name, m]) => [name, { AET: m.aet, Host: m.host, Port: m.port }])),
  };
  const configFile = path.join(dir, 'orthanc.json');
  fs.writeFileSync(configFile, JSON.stringify(config, null, 2));
  const child: ChildProcess = spawn(ORTHANC_BINARY, [configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  // The last 64 kB only: a benchmark sends thousands of images through one Orthanc.
  const keep = (d: Buffer) => { output = (output + d.toString()).slice(-65_536); };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const httpUrl = `http://127.0.0.1:${httpPort}`;

  const rest = async <T>(method: string, urlPath: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${httpUrl}${urlPath}`, {
      method,
      body: body === undefined ? undefined : Buffer.isBuffer(body) ? body : JSON.stringify(body),
      headers: Buffer.isBuffer(body) ? { 'content-type': 'application/dicom' } : undefined,
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`Orthanc ${method} ${urlPath}: ${res.status} ${text}`);
    return (text ? JSON.parse(text) : undefined) as T;
  };

  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`Orthanc exited (${child.exitCode}):\n${output.slice(-2000)}`);
    if (await fetch(`${httpUrl}/system`).then((r) => r.ok, () => false)) break;
    if (Date.now() > deadline) { child.kill('SIGKILL'); throw new Error(`Orthanc did not answer within 60 s:\n${output.slice(-2000)}`); }
    await new Promise((r) => setTimeout(r, 200));
  }

  return {
    httpUrl, dicomWebUrl: `${httpUrl}/dicom-web`, dicomPort, aet, pid: child.pid!, rest,
    async runJob(urlPath, body, timeoutMs = 120_000) {
      const { ID } = await rest<{ ID: string }>('POST', urlPath, { ...body, Synchronous: false });
      const end = Date.now() + timeoutMs;
      for (;;) {
        const job = await rest<{ State: string; ErrorCode?: number; ErrorDescription?: string; ErrorDetails?: string }>('GET', `/jobs/${ID}`);
        if (job.State === 'Success' || job.State === 'Failure') return job;
        if (Date.now() > end) throw new Error(`Orthanc job ${urlPath} still ${job.State} after ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      if (opts.keepFolder) opts.keepFolder(dir);
      else fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
