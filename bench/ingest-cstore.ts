/**
 * npm run bench:ingest [-- --small 400 --large 20 --concurrency 4]
 *
 * Starts the real API server as a child process (SQLite in a temp folder, the local Redis), then
 * sends generated 16-bit DX images over STOW-RS, one per request, at the given concurrency, and
 * reports images/s and MB/s per image size. Then the same images by DICOM C-STORE: the DICOM
 * listener in its own process, dcmtk's storescu in 4 processes (4 associations) at once.
 * Results go to docs/benchmarks/ingest.md.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../services/core/config.js';
import { createCore } from '../services/core/core.js';
import { createLogger } from '../services/core/logger.js';
import { dxImage, writeDicom } from '../test/helpers/dicom.js';

const { values } = parseArgs({
  options: {
    small: { type: 'string', default: '400' },
    large: { type: 'string', default: '20' },
    concurrency: { type: 'string', default: '4' },
    out: { type: 'string', default: 'docs/benchmarks/ingest.md' },
  },
});
const root = path.resolve(import.meta.dirname, '..');
let uidCounter = 0;
const uid = () => `1.2.826.0.1.3680043.10.1431.7.${process.pid}.${Date.now()}.${++uidCounter}`;

function image(rows: number, columns: number): Buffer {
  const pixels = new Uint16Array(rows * columns);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 2654435761) >>> 20; // busy, incompressible-ish 12-bit
  return writeDicom(dxImage({ studyUid: uid(), seriesUid: uid(), sopInstanceUid: uid(), rows, columns, pixels }));
}

async function post(url: string, key: string, bytes: Buffer): Promise<number> {
  const boundary = 'bench-boundary-7f3a';
  const body = Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), bytes, Buffer.from(`\r\n--${boundary}--\r\n`)]);
  const res = await fetch(`${url}/dicomweb/studies`, {
    method: 'POST',
    headers: { 'content-type': `multipart/related; type="application/dicom"; boundary=${boundary}`, authorization: `Bearer ${key}` },
    body,
  });
  await res.arrayBuffer();
  return res.status;
}

async function run(label: string, count: number, make: () => Buffer, url: string, key: string, concurrency: number) {
  // Images are made before the clock starts; each is fresh (new UIDs), so every one is a real store.
  const images = Array.from({ length: count }, make);
  const bytes = images.reduce((a, b) => a + b.length, 0);
  let next = 0;
  let failed = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < images.length) {
      const status = await post(url, key, images[next++]);
      if (status !== 200) failed++;
    }
  }));
  const seconds = (performance.now() - started) / 1000;
  return { label, count, failed, seconds, imagesPerSec: count / seconds, mbPerSec: bytes / 1024 / 1024 / seconds, mbPerImage: bytes / count / 1024 / 1024 };
}

/** storescu in `associations` processes at once, each sending its share of the files over one association. */
async function runCStore(label: string, count: number, make: () => Buffer, dimsePort: number, associations: number) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ft-bench-cstore-'));
  const files = Array.from({ length: count }, (_, i) => {
    const file = path.join(dir, `${i}.dcm`);
    fs.writeFileSync(file, make());
    return file;
  });
  const bytes = files.reduce((a, f) => a + fs.statSync(f).size, 0);
  const started = performance.now();
  const codes = await Promise.all(Array.from({ length: associations }, (_, a) => new Promise<number>((resolve, reject) => {
    const share = files.filter((_, i) => i % associations === a);
    const child = spawn('storescu', ['-aet', 'BENCH', '-aec', 'FRACTURE_TRIAGE', '127.0.0.1', String(dimsePort), ...share], { stdio: ['ignore', 'ignore', 'inherit'] });
    child.once('error', reject);
    child.once('exit', (code) => resolve(code ?? 1));
  })));
  const seconds = (performance.now() - started) / 1000;
  fs.rmSync(dir, { recursive: true, force: true });
  return { label, count, failed: codes.filter((c) => c !== 0).length, seconds, imagesPerSec: count / seconds, mbPerSec: bytes / 1024 / 1024 / seconds, mbPerImage: bytes / count / 1024 / 1024 };
}

async function main() {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ft-bench-'));
  const port = String(21000 + Math.floor(Math.random() * 5000));
  const dimsePort = Number(port) + 1;
  const env = { DATA_DIR: dataDir, DATABASE_URL: `sqlite:${path.join(dataDir, 'db.sqlite')}`, QUEUE_PREFIX: `ft-bench-${process.pid}`, PORT: port, LOG_LEVEL: 'warn', MAX_CONCURRENT_UPLOADS: '64', MAX_CONCURRENT_UPLOADS_PER_KEY: '64', DIMSE_PORT: String(dimsePort), DIMSE_HOST: '127.0.0.1' };
  const core = await createCore(loadConfig({ ...process.env, ...env }), createLogger('silent', 'bench'));
  await core.services.apiKeys.createSite('bench', 'Bench');
  const { key } = await core.services.apiKeys.createKey('bench', 'bench');
  await core.repos.aeTitles.upsert({ aeTitle: 'BENCH', siteId: 'bench', host: null });
  const dimse = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'services/dimse/main.ts')], { cwd: root, env: { ...process.env, ...env, LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'inherit'] });
  const dimseReady = new Promise<void>((resolve, reject) => {
    let seen = '';
    dimse.stdout!.on('data', (d: Buffer) => { seen += d.toString(); if (seen.includes('DICOM listener started')) resolve(); });
    dimse.once('exit', (code) => reject(new Error(`DICOM listener exited (${code})`)));
  });

  const server = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'services/api/server.ts')], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  server.stdout!.resume();
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (server.exitCode !== null) throw new Error(`server exited (${server.exitCode})`);
    if (await fetch(`${url}/healthz`).then((r) => r.ok, () => false)) break;
    if (i > 300) throw new Error('server did not come up');
    await new Promise((r) => setTimeout(r, 100));
  }
  const concurrency = Number(values.concurrency);
  try {
    await run('warm-up', 20, () => image(256, 256), url, key, concurrency);
    const results = [
      await run('512×512, 16-bit', Number(values.small), () => image(512, 512), url, key, concurrency),
      await run('2048×2500, 16-bit', Number(values.large), () => image(2500, 2048), url, key, concurrency),
    ];
    await dimseReady;
    const cstore = [
      await runCStore('512×512, 16-bit', Number(values.small), () => image(512, 512), dimsePort, 4),
      await runCStore('2048×2500, 16-bit', Number(values.large), () => image(2500, 2048), dimsePort, 4),
    ];
    const lines = [
      '# Ingest benchmark',
      '',
      `Command: \`npm run bench:ingest -- --small ${values.small} --large ${values.large} --concurrency ${concurrency}\``,
      `Machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB; Node ${process.version}; SQLite (WAL, synchronous=FULL) and files in a temp folder on the local disk; Redis on localhost.`,
      `Date: ${new Date().toISOString().slice(0, 10)}. One STOW-RS request per image (uncompressed Explicit VR LE), ${concurrency} at a time, API server in its own process; each image is fsynced, recorded and queued before its response.`,
      '',
      '| images | count | failed | seconds | images/s | MB/s | MB/image |',
      '|---|---:|---:|---:|---:|---:|---:|',
      ...results.map((r) => `| ${r.label} | ${r.count} | ${r.failed} | ${r.seconds.toFixed(1)} | ${r.imagesPerSec.toFixed(1)} | ${r.mbPerSec.toFixed(1)} | ${r.mbPerImage.toFixed(2)} |`),
      '',
      '## DICOM C-STORE',
      '',
      'The same kind of images sent by dcmtk `storescu` in 4 processes at once (4 associations, each one C-STORE after another), to the DICOM listener in its own process; each success status is sent after the file is fsynced and its row committed. "failed" counts storescu processes that did not exit 0.',
      '',
      '| images | count | failed | seconds | images/s | MB/s | MB/image |',
      '|---|---:|---:|---:|---:|---:|---:|',
      ...cstore.map((r) => `| ${r.label} | ${r.count} | ${r.failed} | ${r.seconds.toFixed(1)} | ${r.imagesPerSec.toFixed(1)} | ${r.mbPerSec.toFixed(1)} | ${r.mbPerImage.toFixed(2)} |`),
      '',
    ];
    fs.mkdirSync(path.dirname(path.resolve(root, values.out!)), { recursive: true });
    fs.writeFileSync(path.resolve(root, values.out!), lines.join('\n'));
    console.log(lines.join('\n'));
  } finally {
    server.kill('SIGTERM');
    dimse.kill('SIGTERM');
    await core.jobs.classify.queue.obliterate({ force: true }).catch(() => {});
    await core.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
