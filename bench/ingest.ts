/**
 * npm run bench:ingest [-- --small 400 --large 20 --concurrency 4] [--cstore]
 * npm run bench:ingest -- --vs-orthanc [--rounds 3 --small 200 --large 20] [--cstore]
 *
 * Builds dist/ with tsc and starts the real API server from it as a child process, as `npm start`
 * runs it (SQLite in a temp folder, the local Redis, no worker), then sends generated 16-bit DX
 * images over STOW-RS, one per request, at the given concurrency, and reports images/s and MB/s per
 * image size. Results go to docs/benchmarks/ingest.md.
 *
 * --cstore: the same images by DICOM C-STORE instead — our DICOM listener in its own process,
 * dcmtk's storescu in `concurrency` processes at once (one association each).
 *
 * --vs-orthanc: the same images, the same client and concurrency against Orthanc (Debian's 1.10 +
 * DICOMweb plugin, test/helpers/orthanc.ts, loopback ports; with --cstore its DICOM port). For every
 * round and size each server starts from an empty store; the order alternates between rounds, so
 * both see the same machine load. Prints both servers' images/s and our/Orthanc ratio (median of
 * the rounds).
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import vm from 'node:vm';
import { loadConfig } from '../services/core/config.js';
import { createCore } from '../services/core/core.js';
import { createLogger } from '../services/core/logger.js';
import { dxImage, writeDicom } from '../test/helpers/dicom.js';
import { freePort, orthancAvailable, startOrthanc } from '../test/helpers/orthanc.js';
import { median } from './stats.js';

const { values } = parseArgs({
  options: {
    small: { type: 'string' },
    large: { type: 'string' },
    concurrency: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '3' },
    'vs-orthanc': { type: 'boolean', default: false },
    cstore: { type: 'boolean', default: false },
    out: { type: 'string', default: 'docs/benchmarks/ingest.md' },
  },
});
const vsOrthanc = values['vs-orthanc']!;
const cstore = values.cstore!;
const smallCount = Number(values.small ?? (vsOrthanc ? 200 : 400));
const largeCount = Number(values.large ?? 20);
const root = path.resolve(import.meta.dirname, '..');
let uidCounter = 0;
const uid = () => `1.2.826.0.1.3680043.10.1431.7.${process.pid}.${Date.now()}.${++uidCounter}`;

function image(rows: number, columns: number): Buffer {
  const pixels = new Uint16Array(rows * columns);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 2654435761) >>> 20; // busy, incompressible-ish 12-bit
  return writeDicom(dxImage({ studyUid: uid(), seriesUid: uid(), sopInstanceUid: uid(), rows, columns, pixels }));
}

/** A server under test: where to post (STOW-RS) or C-STORE to, how to authenticate, how to shut it down. */
interface Server {
  name: string;
  stowUrl: string;
  headers: Record<string, string>;
  dicom?: { port: number; aet: string };
  /** The process that receives (its CPU time is reported). */
  pid: number;
  /** Processes the server needs besides (ours: Redis, for the rate check and the queue); their CPU is reported apart. */
  helperPids?: number[];
  stop(): Promise<void>;
}

const BOUNDARY = 'bench-boundary-7f3a';

/** One image as a STOW-RS body (multipart/related, one part). */
function stowBody(bytes: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`--${BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n`), bytes, Buffer.from(`\r\n--${BOUNDARY}--\r\n`)]);
}

async function post(server: Server, body: Buffer): Promise<number> {
  const res = await fetch(server.stowUrl, {
    method: 'POST',
    headers: { 'content-type': `multipart/related; type="application/dicom"; boundary=${BOUNDARY}`, ...server.headers },
    body,
  });
  await res.arrayBuffer();
  return res.status;
}

/** CPU time (user + system) a process has used so far, in ms. */
function cpuMs(pid: number): number {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime, in USER_HZ (100)
  } catch {
    return NaN;
  }
}

function cpuTotalMs(usage: NodeJS.CpuUsage): number {
  return (usage.user + usage.system) / 1000;
}

interface Result { label: string; server: string; count: number; failed: number; seconds: number; imagesPerSec: number; mbPerSec: number; mbPerImage: number; cpuMsPerImage: number; helperCpuMsPerImage: number; clientCpuMsPerImage: number; p50Ms: number; p95Ms: number }

/**
 * storescu in `associations` processes at once, each sending its share of the files over one
 * association; "failed" counts the images of storescu processes that did not exit 0.
 */
async function storescu(server: Server, images: Buffer[], associations: number): Promise<number> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ft-bench-cstore-'));
  try {
    const files = images.map((bytes, i) => {
      const file = path.join(dir, `${i}.dcm`);
      fs.writeFileSync(file, bytes);
      return file;
    });
    const failed = await Promise.all(Array.from({ length: associations }, (_, a) => new Promise<number>((resolve, reject) => {
      const share = files.filter((_, i) => i % associations === a);
      if (!share.length) return resolve(0);
      const child = spawn('storescu', ['-aet', 'BENCH', '-aec', server.dicom!.aet, '127.0.0.1', String(server.dicom!.port), ...share], { stdio: ['ignore', 'ignore', 'inherit'] });
      child.once('error', reject);
      child.once('exit', (code) => resolve(code === 0 ? 0 : share.length));
    })));
    return failed.reduce((a, b) => a + b, 0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function run(label: string, images: Buffer[], server: Server, concurrency: number): Promise<Result> {
  const bytes = images.reduce((a, b) => a + b.length, 0);
  // Request bodies made before the clock starts, like the images: a client that allocates half a
  // megabyte per request spends its CPU (collecting it) on the cores both servers share.
  const bodies = cstore ? [] : images.map(stowBody);
  // And none of the run before's garbage (a round's images and bodies are a gigabyte or more) may be
  // collected during this one: a full collection now, so every run, whoever came before it, starts
  // with a clean client heap.
  collectGarbage();
  let next = 0;
  let failed = 0;
  const latencies: number[] = [];
  const cpuBefore = cpuMs(server.pid);
  const helperCpu = () => (server.helperPids ?? []).reduce((sum, pid) => sum + cpuMs(pid), 0);
  const helperBefore = helperCpu();
  const clientBefore = process.cpuUsage();
  const started = performance.now();
  if (cstore) failed = await storescu(server, images, concurrency);
  else {
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < images.length) {
        const sent = performance.now();
        const status = await post(server, bodies[next++]);
        latencies.push(performance.now() - sent);
        if (status !== 200) failed++;
      }
    }));
  }
  const seconds = (performance.now() - started) / 1000;
  const count = images.length;
  return {
    label, server: server.name, count, failed, seconds, imagesPerSec: count / seconds, mbPerSec: bytes / 1024 / 1024 / seconds,
    mbPerImage: bytes / count / 1024 / 1024, cpuMsPerImage: (cpuMs(server.pid) - cpuBefore) / count,
    helperCpuMsPerImage: (helperCpu() - helperBefore) / count, clientCpuMsPerImage: cpuTotalMs(process.cpuUsage(clientBefore)) / count,
    p50Ms: quantile(latencies, 0.5), p95Ms: quantile(latencies, 0.95),
  };
}

/**
 * Empties the kernel's page cache (as root; elsewhere a no-op, said in the report): every run starts
 * with the same memory, not with the gigabytes of page cache the runs before it left (each round's
 * stores stay on disk until the end, see \`leftovers\`), which slowed each later run of either server.
 */
const canDropPageCache = (() => { try { fs.accessSync('/proc/sys/vm/drop_caches', fs.constants.W_OK); return true; } catch { return false; } })();
function dropPageCache(): void {
  if (canDropPageCache) fs.writeFileSync('/proc/sys/vm/drop_caches', '1');
}

/** A full, blocking garbage collection of this (client) process. */
const collectGarbage: () => void = (() => {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  return () => { gc(); gc(); };
})();

/** Request round-trip time as the client saw it (NaN for C-STORE, timed per storescu process). */
function quantile(values: number[], q: number): number {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/**
 * Stores of servers that have stopped, removed only when the whole benchmark is done: ext4 without a
 * journal (as on the machine these figures come from) skips inodes freed in the last 30 seconds
 * when it makes a file, so deleting one round's thousands of files made the next round's file
 * creation crawl, a cost no hospital store has and that fell unevenly on the two servers.
 */
const leftovers: string[] = [];

/** Our API server alone (no worker), or with --cstore our DICOM listener alone, from an empty data folder with one site and key. */
async function startOurs(): Promise<Server> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ft-bench-'));
  const [port, dimsePort] = [await freePort(), await freePort()];
  const env = {
    DATA_DIR: dataDir, DATABASE_URL: `sqlite:${path.join(dataDir, 'db.sqlite')}`, QUEUE_PREFIX: `ft-bench-${process.pid}-${port}`, PORT: String(port), LOG_LEVEL: 'warn',
    MAX_CONCURRENT_UPLOADS: '64', MAX_CONCURRENT_UPLOADS_PER_KEY: '64', DIMSE_PORT: String(dimsePort), DIMSE_HOST: '127.0.0.1',
  };
  const core = await createCore(loadConfig({ ...process.env, ...env }), createLogger('silent', 'bench'));
  await core.services.apiKeys.createSite('bench', 'Bench');
  const { key } = await core.services.apiKeys.createKey('bench', 'bench');
  if (cstore) await core.repos.aeTitles.upsert({ aeTitle: 'BENCH', siteId: 'bench', host: null });
  const entry = cstore ? 'services/dimse/main.ts' : 'services/api/server.ts';
  // What `npm start` runs: the compiled JavaScript (built in main()), not the TypeScript loader.
  const program = [path.join(root, 'dist', entry.replace(/\.ts$/, '.js'))];
  const child = spawn(process.execPath, [...(process.env.BENCH_NODE_OPTIONS?.split(' ').filter(Boolean) ?? []), ...program], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  child.stdout!.resume();
  const url = `http://127.0.0.1:${port}`;
  const up = () => (cstore ? accepts(dimsePort) : fetch(`${url}/healthz`).then((r) => r.ok, () => false));
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`server exited (${child.exitCode})`);
    if (await up()) break;
    if (i > 600) throw new Error('server did not come up');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    name: 'fracture-triage',
    stowUrl: `${url}/dicomweb/studies`,
    headers: { authorization: `Bearer ${key}` },
    dicom: { port: dimsePort, aet: core.config.dimse.aeTitle },
    pid: child.pid!,
    // Redis on this machine, if it says which process it is (a remote one costs this machine nothing).
    helperPids: await core.redis.info('server').then((info) => { const pid = Number(/process_id:(\d+)/.exec(info)?.[1]); return pid && fs.existsSync(`/proc/${pid}`) ? [pid] : []; }, () => []),
    async stop() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
      await core.jobs.classify.queue.obliterate({ force: true }).catch(() => {});
      await core.close();
      leftovers.push(dataDir);
    },
  };
}

/** Whether something accepts TCP connections on the loopback port (the DICOM listener is up). */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

async function startOrthancServer(): Promise<Server> {
  const orthanc = await startOrthanc({ keepFolder: (dir) => leftovers.push(dir) });
  return { name: 'Orthanc', stowUrl: `${orthanc.dicomWebUrl}/studies`, headers: {}, dicom: { port: orthanc.dicomPort, aet: orthanc.aet }, pid: orthanc.pid, stop: () => orthanc.stop() };
}

const sizes = [
  { label: '512×512, 16-bit', rows: 512, columns: 512, count: smallCount },
  { label: '2048×2500, 16-bit', rows: 2500, columns: 2048, count: largeCount },
];
const concurrency = Number(values.concurrency);

/** Starts a fresh server, warms it up (JIT, connections) with small images, measures, stops it. */
async function measure(start: () => Promise<Server>, size: (typeof sizes)[number], images: Buffer[]): Promise<Result> {
  // No run starts while the disk still writes back the run before it (a gigabyte of images): that
  // slowed whichever server came next, the more the more it syncs.
  execFileSync('sync');
  dropPageCache();
  const server = await start();
  try {
    await run('warm-up', Array.from({ length: 20 }, () => image(256, 256)), server, concurrency);
    return await run(size.label, images, server, concurrency);
  } finally {
    await server.stop();
  }
}

const how = cstore
  ? `DICOM C-STORE: dcmtk storescu in ${concurrency} processes at once (one association each), to our DICOM listener in its own process`
  : `One STOW-RS request per image (uncompressed Explicit VR LE), ${concurrency} at a time, API server in its own process`;
const loadAtStart = os.loadavg()[0];
const machine = () => `Machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, shared with other work while measured (load average at start ${loadAtStart.toFixed(1)}, at the end ${os.loadavg()[0].toFixed(1)}); Node ${process.version}; files in a temp folder on the local disk; Redis on localhost.`;

async function soloMain(): Promise<string[]> {
  const results: Result[] = [];
  for (const size of sizes.filter((s) => s.count > 0)) {
    // Images are made before the clock starts; each is fresh (new UIDs), so every one is a real store.
    results.push(await measure(startOurs, size, Array.from({ length: size.count }, () => image(size.rows, size.columns))));
  }
  return [
    '# Ingest benchmark',
    '',
    `Command: \`npm run bench:ingest -- --small ${smallCount} --large ${largeCount} --concurrency ${concurrency}${cstore ? ' --cstore' : ''}\``,
    machine(),
    `Date: ${new Date().toISOString().slice(0, 10)}. ${how}, no worker; each image is fsynced, recorded and queued before its response.`,
    '',
    '| images | count | failed | seconds | images/s | MB/s | MB/image | server CPU ms/image | Redis CPU ms/image | client CPU ms/image | request p50 ms | p95 ms |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...results.map((r) => `| ${r.label} | ${r.count} | ${r.failed} | ${r.seconds.toFixed(1)} | ${r.imagesPerSec.toFixed(1)} | ${r.mbPerSec.toFixed(1)} | ${r.mbPerImage.toFixed(2)} | ${r.cpuMsPerImage.toFixed(1)} | ${r.helperCpuMsPerImage.toFixed(1)} | ${r.clientCpuMsPerImage.toFixed(1)} | ${r.p50Ms.toFixed(1)} | ${r.p95Ms.toFixed(1)} |`),
    '',
  ];
}

async function vsOrthancMain(): Promise<string[]> {
  const rounds = Number(values.rounds);
  const rows: string[] = [];
  const summary: string[] = [];
  for (const size of sizes.filter((s) => s.count > 0)) {
    const ours: Result[] = [];
    const theirs: Result[] = [];
    for (let round = 0; round < rounds; round++) {
      const images = Array.from({ length: size.count }, () => image(size.rows, size.columns)); // the same bytes to both
      const order = round % 2 === 0 ? ['Orthanc', 'ours'] : ['ours', 'Orthanc'];
      for (const who of order) {
        const r = who === 'ours' ? await measure(startOurs, size, images) : await measure(startOrthancServer, size, images);
        (who === 'ours' ? ours : theirs).push(r);
        console.error(`${size.label} round ${round + 1} ${r.server}: ${r.imagesPerSec.toFixed(1)} images/s, ${r.cpuMsPerImage.toFixed(1)} CPU ms/image (+ ${r.helperCpuMsPerImage.toFixed(1)} Redis, client ${r.clientCpuMsPerImage.toFixed(1)}), ${r.failed} failed`);
        rows.push(`| ${size.label} | ${round + 1} | ${r.server} | ${r.count} | ${r.failed} | ${r.seconds.toFixed(2)} | ${r.imagesPerSec.toFixed(1)} | ${r.mbPerSec.toFixed(1)} | ${r.cpuMsPerImage.toFixed(1)} | ${r.helperCpuMsPerImage.toFixed(1)} | ${r.clientCpuMsPerImage.toFixed(1)} | ${r.p50Ms.toFixed(1)} | ${r.p95Ms.toFixed(1)} |`);
      }
    }
    const [o, t] = [median(ours.map((r) => r.imagesPerSec)), median(theirs.map((r) => r.imagesPerSec))];
    const [oc, tc] = [median(ours.map((r) => r.cpuMsPerImage)), median(theirs.map((r) => r.cpuMsPerImage))];
    // Each round's two runs saw the same machine load: their ratios, not only the ratio of the medians.
    const paired = ours.map((r, i) => (r.imagesPerSec / theirs[i].imagesPerSec).toFixed(2)).join(', ');
    summary.push(`| ${size.label} | ${t.toFixed(1)} | ${o.toFixed(1)} | **${(o / t).toFixed(2)}×** | ${paired} | ${tc.toFixed(1)} | ${oc.toFixed(1)} |`);
  }
  return [
    '# Ingest benchmark: fracture-triage vs Orthanc',
    '',
    `Command: \`npm run bench:ingest -- --vs-orthanc --rounds ${rounds} --small ${smallCount} --large ${largeCount} --concurrency ${concurrency}${cstore ? ' --cstore' : ''}\``,
    machine(),
    `Date: ${new Date().toISOString().slice(0, 10)}. Orthanc 1.10 (Debian) + DICOMweb plugin with its default settings, versus our ${cstore ? 'DICOM listener' : 'API'} process alone (no worker). Same generated 16-bit DX files (uncompressed Explicit VR LE, fresh UIDs) to both, ${cstore ? `dcmtk storescu in ${concurrency} processes at once (one association each)` : `the same HTTP client (Node fetch), ${concurrency} concurrent STOW-RS requests of one instance each`}; every server starts from an empty store for each round and size, after sync(1) (no writeback left from the run before)${canDropPageCache ? ', with the page cache emptied' : ' (page cache not emptied: not root)'} and 20 warm-up images of 256²; request bodies are built and the client's heap fully collected before each clock starts; the order alternates between rounds. Ours answers only after the file and its directory are fsynced, the row committed (SQLite WAL, synchronous=FULL) and the job queued.`,
    '',
    'Median of the rounds (ratio = ours / Orthanc, of the two medians; then ours / Orthanc within each round, whose two runs saw the same machine load; CPU = the server process\'s user+system time per image, less sensitive to the shared machine than wall-clock rates; the per-run table adds the CPU of the Redis ours needs and of the shared client, which take the same two cores):',
    '',
    '| images | Orthanc images/s | ours images/s | ratio | ratio in each round | Orthanc CPU ms/image | ours CPU ms/image |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...summary,
    '',
    'Every run:',
    '',
    '| images | round | server | count | failed | seconds | images/s | MB/s | server CPU ms/image | its Redis CPU ms/image | client CPU ms/image | request p50 ms | p95 ms |',
    '|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
    '',
  ];
}

async function main() {
  if (vsOrthanc && !orthancAvailable()) {
    console.log('bench:ingest --vs-orthanc skipped: Orthanc or its DICOMweb plugin is not installed (apt install orthanc orthanc-dicomweb)');
    return;
  }
  // The servers run from dist/, as `npm start` runs them: build it first (tsc, as `npm run build`).
  execFileSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.json')], { stdio: 'inherit' });
  let lines: string[];
  try {
    lines = vsOrthanc ? await vsOrthancMain() : await soloMain();
  } finally {
    for (const dir of leftovers) fs.rmSync(dir, { recursive: true, force: true });
  }
  fs.mkdirSync(path.dirname(path.resolve(root, values.out!)), { recursive: true });
  fs.writeFileSync(path.resolve(root, values.out!), lines.join('\n'));
  console.log(lines.join('\n'));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
