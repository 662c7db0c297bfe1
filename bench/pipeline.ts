/**
 * The whole pipeline, end to end, as it runs in production: API process(es) + N classify worker
 * processes (real Redis, SQLite or PostgreSQL, the committed model), images sent over STOW-RS.
 *
 * Burst (docs/benchmarks/pipeline.md):
 *   npm run bench:pipeline [-- --small 1000 --large 100 --workers 1,2 --db sqlite|postgres --api 1|2]
 * sends a burst of generated 16-bit DX images (4 requests at a time), waits until every image has a
 * result, and reports throughput, upload→result latency percentiles, time per stage and worker RSS.
 *
 * Steady load to the knee (docs/benchmarks/pipeline-steady.md):
 *   npm run bench:pipeline -- --steady auto [--sizes 512,2048x2500 --seconds 10 --min-images 8 --workers 1]
 *   npm run bench:pipeline -- --steady 1,2,4 --sizes 512          (fixed rates instead of the ramp)
 * For each size one system gets images at a constant rate (each request sent on schedule, not
 * waiting for the previous answer) for --seconds per rate, rate after rate, draining in between.
 * `auto` ramps the rate ×1.5 from --from until the system falls behind, tries one step in between,
 * then runs at 70 % of the highest sustained rate (the knee) and compares its p95 with the goal
 * (≤ 2 s for 512², ≤ 5 s for 2048×2500). Reports upload→result latency p50/p95/p99, queue wait,
 * per-stage medians, and CPU and peak RSS per process for each rate.
 *
 * Scale-out (docs/benchmarks/scale-out.md):
 *   npm run bench:pipeline -- --scale-out [--small 120]
 * the same burst on SQLite with 1 worker, then PostgreSQL with 1, 2 and 4 worker processes, then
 * PostgreSQL with 4 workers and two API processes behind one port (services/api/cluster.ts), in one run.
 */
import fs from 'node:fs';
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { dxImage, writeDicom } from '../test/helpers/dicom.js';
import { startProcessSystem, waitFor, type ProcessSystem } from '../test/helpers/processes.js';
import { PG_URL } from '../test/helpers/system.js';
import { DEFAULT_MODEL_DIR } from '../services/inference/defaultModel.js';

const { values } = parseArgs({
  options: {
    small: { type: 'string', default: '1000' },
    large: { type: 'string', default: '100' },
    workers: { type: 'string', default: '1,2' },
    db: { type: 'string', default: 'sqlite' },
    api: { type: 'string', default: '1' },
    steady: { type: 'string' },
    seconds: { type: 'string', default: '10' },
    size: { type: 'string' },
    sizes: { type: 'string', default: '512,2048x2500' },
    from: { type: 'string' },
    'min-images': { type: 'string', default: '8' },
    'scale-out': { type: 'boolean', default: false },
    out: { type: 'string' },
  },
});

let uidCounter = 0;
const uid = () => `1.2.826.0.1.3680043.10.1431.8.${process.pid}.${Date.now()}.${++uidCounter}`;

/** A synthetic radiograph-like image: smooth background and a few bright "bones" with noise. */
function image(rows: number, columns: number): Buffer {
  const pixels = new Uint16Array(rows * columns);
  const seed = uidCounter * 7919;
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < columns; x++) {
      const bone = Math.abs(x - columns * (0.3 + 0.4 * ((seed % 5) / 5))) < columns * 0.06 || Math.abs(y - rows / 2) < rows * 0.04 ? 2600 : 0;
      pixels[y * columns + x] = Math.min(4095, 600 + bone + ((x * 13 + y * 7 + seed) % 97) * 4);
    }
  }
  return writeDicom(dxImage({ studyUid: uid(), seriesUid: uid(), sopInstanceUid: uid(), rows, columns, pixels, bodyPart: 'HAND' }));
}

async function post(url: string, key: string, bytes: Buffer): Promise<number> {
  const boundary = 'bench-pipeline-boundary';
  const res = await fetch(`${url}/dicomweb/studies`, {
    method: 'POST',
    headers: { 'content-type': `multipart/related; type="application/dicom"; boundary=${boundary}`, authorization: `Bearer ${key}` },
    body: Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), bytes, Buffer.from(`\r\n--${boundary}--\r\n`)]),
  });
  await res.arrayBuffer();
  return res.status;
}

function rssMb(pid: number): number {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

/** CPU time (user + system) a process has used so far, in ms. */
function cpuMs(pid: number): number {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return NaN;
  }
}

/** Node child process ids of `pid` (the API processes a cluster primary forked; not tsx's esbuild). */
function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const ppid = Number(fs.readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
      if (ppid === pid && fs.readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === 'node') out.push(Number(entry));
    } catch {
      /* gone */
    }
  }
  return out;
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
const median = (xs: number[]) => (xs.length ? pct([...xs].sort((a, b) => a - b), 50) : NaN);
const loadAvg = () => os.loadavg().map((l) => l.toFixed(1)).join(' / ');

interface SystemShape {
  db: 'sqlite' | 'postgres';
  workers: number;
  apis: number;
}

interface Bench {
  system: ProcessSystem;
  /** Every process to watch: name and pid (re-read: a cluster's API processes appear after start). */
  procs(): { name: string; pid: number }[];
  stop(): Promise<void>;
}

/** A fresh system: its own data folder, queue prefix and SQLite file or PostgreSQL database. */
async function startBench(shape: SystemShape): Promise<Bench> {
  let database: string | undefined;
  const env: Record<string, string> = { LOG_LEVEL: 'warn', MAX_CONCURRENT_UPLOADS: '64', MAX_CONCURRENT_UPLOADS_PER_KEY: '64', JOB_LOCK_MS: '30000', STALLED_CHECK_MS: '30000' };
  if (shape.db === 'postgres') {
    database = `ft_bench_${randomBytes(4).toString('hex')}`;
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database}`);
    await admin.end();
    const url = new URL(PG_URL);
    url.pathname = `/${database}`;
    env.DATABASE_URL = url.toString();
  }
  const system = await startProcessSystem(env);
  const api = await system.startApi(shape.apis > 1 ? { entry: 'services/api/cluster.ts', env: { API_PROCESSES: String(shape.apis) } } : {});
  const workers: ChildProcess[] = [];
  for (let i = 0; i < shape.workers; i++) workers.push(await system.startWorker({ LOG_LEVEL: 'info' })); // info: the start-up line the helper waits for
  return {
    system,
    procs: () => [
      ...(shape.apis > 1 ? [{ name: 'api primary', pid: api.pid! }, ...childPids(api.pid!).map((pid, i) => ({ name: `api ${i + 1}`, pid }))] : [{ name: 'api', pid: api.pid! }]),
      ...workers.map((w, i) => ({ name: `worker ${i + 1}`, pid: w.pid! })),
    ],
    async stop() {
      await system.stop();
      if (database) {
        const admin = new pg.Client({ connectionString: PG_URL });
        await admin.connect();
        await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
        await admin.end();
      }
    },
  };
}

/** CPU share (of one core) and peak RSS per process between start() and stop(). */
function watch(bench: Bench) {
  const procs = bench.procs();
  const peak = new Map(procs.map((p) => [p.name, 0]));
  const before = new Map(procs.map((p) => [p.name, cpuMs(p.pid)]));
  const timer = setInterval(() => { for (const p of procs) peak.set(p.name, Math.max(peak.get(p.name)!, rssMb(p.pid))); }, 250);
  const t0 = Date.now();
  const stop = () => {
    clearInterval(timer);
    const seconds = (Date.now() - t0) / 1000;
    const used = procs.map((p) => cpuMs(p.pid) - before.get(p.name)!);
    stop.totalCpuMs = used.reduce((a, b) => a + b, 0);
    return procs.map((p, i) => `${p.name} ${((used[i] / 1000 / seconds) * 100).toFixed(0)} % / ${peak.get(p.name)!.toFixed(0)} MB`);
  };
  stop.totalCpuMs = 0;
  return stop;
}

async function resultRows(system: ProcessSystem, since = 0) {
  return system.core.database.db.selectFrom('ai_results').innerJoin('instances', 'instances.id', 'ai_results.instance_id')
    .select(['ai_results.status', 'ai_results.started_at', 'ai_results.decoded_at', 'ai_results.inferred_at', 'ai_results.stored_at', 'ai_results.queued_at', 'instances.received_at'])
    .where('instances.received_at', '>=', since)
    .execute();
}

async function resultCount(system: ProcessSystem): Promise<number> {
  const row = await system.core.database.db.selectFrom('ai_results').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return Number(row.n);
}

function stages(rows: Awaited<ReturnType<typeof resultRows>>) {
  const latency = rows.map((r) => r.stored_at - r.received_at).sort((a, b) => a - b);
  return {
    p50: pct(latency, 50), p95: pct(latency, 95), p99: pct(latency, 99),
    queueWait: median(rows.map((r) => r.started_at! - r.queued_at!)),
    decode: median(rows.map((r) => r.decoded_at! - r.started_at!)),
    inference: median(rows.map((r) => r.inferred_at! - r.decoded_at!)),
    store: median(rows.map((r) => r.stored_at - r.inferred_at!)),
  };
}

// ---------------------------------------------------------------- burst

async function runBurst(label: string, count: number, rows: number, columns: number, shape: SystemShape) {
  const bench = await startBench(shape);
  try {
    const { system } = bench;
    const images = Array.from({ length: count }, () => image(rows, columns));
    const stop = watch(bench);
    const started = Date.now();
    let next = 0;
    let rejected = 0;
    await Promise.all(Array.from({ length: 4 }, async () => {
      while (next < images.length) if ((await post(system.url, system.key, images[next++])) !== 200) rejected++;
    }));
    const uploaded = Date.now();
    await waitFor(async () => (await resultCount(system)) >= count - rejected, 3600_000, 'every result');
    const finished = Date.now();
    const cpu = stop();
    const out = await resultRows(system);
    return {
      label, ...shape, count, rejected, failed: out.filter((r) => r.status !== 'done').length,
      cpuMsPerImage: stop.totalCpuMs / count,
      uploadSeconds: (uploaded - started) / 1000,
      totalSeconds: (finished - started) / 1000,
      imagesPerSec: count / ((finished - started) / 1000),
      ...stages(out),
      cpu,
    };
  } finally {
    await bench.stop();
  }
}

type BurstResult = Awaited<ReturnType<typeof runBurst>>;
const burstHeader = [
  '| images | database | API processes | workers | count | rejected | no result | upload s (ingest images/s) | total s | images/s end to end | latency p50 / p95 / p99 ms | median queue wait / decode / inference / store ms | CPU (of one core) / peak RSS per process | CPU ms per image, all processes |',
  '|---|---|---:|---:|---:|---:|---:|---|---:|---:|---|---|---|---:|',
];
const burstLine = (r: BurstResult) =>
  `| ${r.label} | ${r.db} | ${r.apis} | ${r.workers} | ${r.count} | ${r.rejected} | ${r.failed} | ${r.uploadSeconds.toFixed(1)} (${(r.count / r.uploadSeconds).toFixed(1)}) | ${r.totalSeconds.toFixed(1)} | ${r.imagesPerSec.toFixed(2)} | ${r.p50} / ${r.p95} / ${r.p99} | ${r.queueWait} / ${r.decode} / ${r.inference} / ${r.store} | ${r.cpu.join('; ')} | ${r.cpuMsPerImage.toFixed(0)} |`;

function machine(): string {
  return `${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
}

function modelLine(): string {
  const manifest = JSON.parse(fs.readFileSync(`${process.env.MODEL_DIR ?? DEFAULT_MODEL_DIR}/manifest.json`, 'utf8'));
  return `model ${manifest.name} ${manifest.version} (input ${manifest.inputSize}²), TF.js backend chosen by "auto" (wasm here: tfjs-node cannot install on this machine)`;
}

async function burstMain() {
  const workerCounts = values.workers!.split(',').map(Number);
  const db = values.db === 'postgres' ? 'postgres' : 'sqlite';
  const apis = Number(values.api);
  const results: BurstResult[] = [];
  for (const [label, count, rows, columns] of [['512×512', Number(values.small), 512, 512], ['2048×2500', Number(values.large), 2500, 2048]] as const) {
    if (!count) continue;
    for (const workers of workerCounts) {
      console.error(`running ${label} × ${count} with ${workers} worker(s)… (load ${loadAvg()})`);
      results.push(await runBurst(label, count, rows, columns, { db, workers, apis }));
      console.error(burstLine(results[results.length - 1]));
    }
  }
  const lines = [
    '# Pipeline benchmark',
    '',
    `Command: \`npm run bench:pipeline -- --small ${values.small} --large ${values.large} --workers ${values.workers}${db !== 'sqlite' ? ` --db ${db}` : ''}${apis > 1 ? ` --api ${apis}` : ''}\``,
    `Machine: ${machine()}; load average (1/5/15 min) ${loadAvg()} at the end. Date: ${new Date().toISOString().slice(0, 10)}.`,
    `Setup: API process(es) + worker processes (WORKER_CONCURRENCY=2, DECODE_THREADS=1 each), ${db === 'postgres' ? 'PostgreSQL' : 'SQLite'}, local Redis, ${modelLine()}. A burst of generated 16-bit DX images (uncompressed) is sent over STOW-RS, 4 requests at a time; the clock stops when the last result is stored.`,
    '',
    ...burstHeader,
    ...results.map(burstLine),
    '',
    'Latency is upload received → result stored, so for a burst it is mostly time spent waiting in the queue; the per-stage medians show the work itself. On 2 cores a second worker process competes with the first (and with the API) for the same CPUs.',
    '',
  ];
  fs.writeFileSync(values.out ?? 'docs/benchmarks/pipeline.md', lines.join('\n'));
  console.log(lines.join('\n'));
}

// ---------------------------------------------------------------- scale-out

async function scaleOutMain() {
  const count = values.small === '1000' ? 120 : Number(values.small); // --small left at the burst default: 120 images per row
  const shapes: SystemShape[] = [
    { db: 'sqlite', apis: 1, workers: 1 },
    { db: 'postgres', apis: 1, workers: 1 },
    { db: 'postgres', apis: 1, workers: 2 },
    { db: 'postgres', apis: 1, workers: 4 },
    { db: 'postgres', apis: 2, workers: 4 },
  ];
  const results: BurstResult[] = [];
  const loads: string[] = [];
  for (const shape of shapes) {
    console.error(`scale-out: 512×512 × ${count}, ${shape.db}, ${shape.apis} API, ${shape.workers} worker(s)… (load ${loadAvg()})`);
    results.push(await runBurst('512×512', count, 512, 512, shape));
    loads.push(loadAvg());
    console.error(burstLine(results[results.length - 1]));
  }
  const lines = [
    '# Scale-out on the existing engines',
    '',
    `Command: \`npm run bench:pipeline -- --scale-out${count !== 120 ? ` --small ${count}` : ''}\``,
    `Machine: ${machine()}, shared with other work. Date: ${new Date().toISOString().slice(0, 10)}.`,
    `Setup: for each row a fresh system — its own data folder, queue prefix, and SQLite file or PostgreSQL database (PostgreSQL 15 on loopback); API process(es) + worker processes (WORKER_CONCURRENCY=2, DECODE_THREADS=1 each), local Redis, ${modelLine()}. Two API processes share one port through services/api/cluster.ts (node:cluster, round-robin). A burst of ${count} generated 16-bit 512×512 DX images (uncompressed) is sent over STOW-RS, 4 requests at a time; "upload s" ends when the last answer arrives, "total s" when the last result is stored.`,
    '',
    ...burstHeader.map((l, i) => (i === 0 ? `${l} load average 1/5/15 min after the row |` : `${l}---|`)),
    ...results.map((r, i) => `${burstLine(r)} ${loads[i]} |`),
    '',
  ];
  fs.writeFileSync(values.out ?? 'docs/benchmarks/scale-out.md', lines.join('\n'));
  console.log(lines.join('\n'));
}

// ---------------------------------------------------------------- steady load

interface SteadyResult {
  rate: number;
  role: 'ramp' | 'between' | '70 % of knee' | 'fixed';
  count: number;
  rejected: number;
  failed: number;
  achieved: number;
  drainSeconds: number;
  p50: number;
  p95: number;
  p99: number;
  queueWait: number;
  decode: number;
  inference: number;
  store: number;
  cpu: string[];
  cpuMsPerImage: number;
  load: string;
  sustained?: boolean;
}

/** One rate on a running system: constant-rate sends for `seconds`, then wait until all have a result. */
async function steadyWindow(bench: Bench, rate: number, seconds: number, rows: number, columns: number, role: SteadyResult['role']): Promise<SteadyResult> {
  const { system } = bench;
  // At least MIN_WINDOW_IMAGES per window, so a slow rate still gives percentiles (the window grows).
  const count = Math.max(MIN_WINDOW_IMAGES, Math.round(rate * seconds));
  const images = Array.from({ length: count }, () => image(rows, columns));
  const before = await resultCount(system);
  const stop = watch(bench);
  const started = Date.now();
  let rejected = 0;
  const sends: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    // Constant rate: request i leaves at started + i/rate, whether or not earlier ones were answered.
    const wait = started + (i * 1000) / rate - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    sends.push(post(system.url, system.key, images[i]).then((status) => { if (status !== 200) rejected++; }, () => { rejected++; }));
  }
  await Promise.all(sends);
  await waitFor(async () => (await resultCount(system)) >= before + count - rejected, 1800_000, 'every result');
  const cpu = stop();
  const out = await resultRows(system, started);
  const first = Math.min(...out.map((r) => r.stored_at));
  const last = Math.max(...out.map((r) => r.stored_at));
  return {
    rate, role, count, rejected, failed: out.filter((r) => r.status !== 'done').length,
    // Results per second between the first and the last result: the offered rate while the system
    // keeps up, its service rate once it does not (a backlog builds and drains at that rate).
    achieved: out.length > 1 ? ((out.length - 1) * 1000) / Math.max(1, last - first) : NaN,
    drainSeconds: (last - Math.max(...out.map((r) => r.received_at))) / 1000,
    ...stages(out),
    cpu,
    cpuMsPerImage: stop.totalCpuMs / count,
    load: loadAvg(),
  };
}

const MIN_WINDOW_IMAGES = Number(values['min-images']);
const GOALS: Record<string, number> = { '512': 2000, '2048x2500': 5000 };
const round2 = (x: number) => Number(x.toPrecision(2));

async function steadySize(size: string, seconds: number, workers: number) {
  const [columns, rows] = size === '512' ? [512, 512] : size.split('x').map(Number);
  const bench = await startBench({ db: values.db === 'postgres' ? 'postgres' : 'sqlite', workers, apis: Number(values.api) });
  const results: SteadyResult[] = [];
  const run = async (rate: number, role: SteadyResult['role']) => {
    console.error(`steady ${size}: ${rate} images/s for ${seconds} s (${role}; load ${loadAvg()})…`);
    const r = await steadyWindow(bench, rate, seconds, rows, columns, role);
    r.sustained = r.rejected === 0 && r.failed === 0 && r.achieved >= 0.9 * rate;
    results.push(r);
    console.error(steadyLine(r));
    return r;
  };
  try {
    let knee: number | undefined;
    if (values.steady === 'auto') {
      const from = Number(values.from ?? (size === '512' ? 1 : 0.25));
      let rate = from;
      let failedAt: number | undefined;
      for (let step = 0; step < 10; step++) {
        const r = await run(rate, 'ramp');
        if (!r.sustained) { failedAt = rate; break; }
        knee = rate;
        rate = round2(rate * 1.5);
      }
      // One step between the last sustained rate and the first that was not.
      if (knee !== undefined && failedAt !== undefined) {
        const mid = round2(Math.sqrt(knee * failedAt));
        if (mid > knee && mid < failedAt && (await run(mid, 'between')).sustained) knee = mid;
      }
      if (knee !== undefined) await run(round2(0.7 * knee), '70 % of knee');
    } else {
      for (const rate of values.steady!.split(',').map(Number)) {
        const r = await run(rate, 'fixed');
        if (r.sustained) knee = Math.max(knee ?? 0, rate);
      }
    }
    return { size, columns, rows, results, knee };
  } finally {
    await bench.stop();
  }
}

function steadyLine(r: SteadyResult) {
  return `| ${r.rate} | ${r.role} | ${r.count} | ${r.rejected} | ${r.failed} | ${r.achieved.toFixed(2)} | ${r.sustained ? 'yes' : '**no**'} | ${r.drainSeconds.toFixed(1)} | ${r.p50} / ${r.p95} / ${r.p99} | ${r.queueWait} / ${r.decode} / ${r.inference} / ${r.store} | ${r.cpu.join('; ')} | ${r.cpuMsPerImage.toFixed(0)} | ${r.load} |`;
}

async function steadyMain() {
  const seconds = Number(values.seconds);
  const workers = Number(values.workers!.split(',')[0]);
  const sizes = (values.size ?? values.sizes!).split(',');
  const per = [];
  for (const size of sizes) per.push(await steadySize(size, seconds, workers));
  const db = values.db === 'postgres' ? 'PostgreSQL' : 'SQLite';
  const command = `npm run bench:pipeline -- --steady ${values.steady} --sizes ${sizes.join(',')} --seconds ${seconds} --workers ${workers}${values.from ? ` --from ${values.from}` : ''}${values['min-images'] !== '8' ? ` --min-images ${values['min-images']}` : ''}${values.db !== 'sqlite' ? ` --db ${values.db}` : ''}${values.api !== '1' ? ` --api ${values.api}` : ''}`;
  const lines = [
    '# Pipeline benchmark: steady load to the knee',
    '',
    `Command: \`${command}\``,
    `Machine: ${machine()}, shared with other work while measured (load average per row, 1/5/15 min). Date: ${new Date().toISOString().slice(0, 10)}.`,
    `Setup: per size one fresh system — an API process + ${workers} worker process(es) (defaults: WORKER_CONCURRENCY=2, DECODE_THREADS=1), ${db}, local Redis, ${modelLine()}. Generated 16-bit DX images (uncompressed) sent over STOW-RS one per request at a constant rate for ${seconds} s per rate (at least ${MIN_WINDOW_IMAGES} images, so slow rates run longer), each request on schedule whatever the previous answers; the next rate starts once every result is stored.`,
    'Latency = upload received → result stored (flag, boxes, heat map). Achieved = results per second between the first and the last result of the window. A rate is sustained when achieved ≥ 90 % of offered with nothing rejected or failed; the knee is the highest sustained rate (the ramp multiplies by 1.5, then tries one rate in between).',
    '',
  ];
  for (const s of per) {
    const goal = GOALS[s.size];
    const at70 = s.results.find((r) => r.role === '70 % of knee');
    lines.push(
      `## ${s.columns}×${s.rows}`,
      '',
      '| offered images/s | run | sent | rejected | no result | achieved images/s | sustained | drain after last upload s | latency p50 / p95 / p99 ms | median queue wait / decode / inference / store ms | CPU (of one core) / peak RSS per process | CPU ms per image, all processes | load average |',
      '|---:|---|---:|---:|---:|---:|---|---:|---|---|---|---:|---|',
      ...s.results.map(steadyLine),
      '',
      s.knee === undefined
        ? `No sustained rate: even the lowest rate tried (${s.results[0]?.rate} images/s) was not kept up with.`
        : `**Knee: ${s.knee} images/s** (highest sustained rate${s.results.every((r) => r.sustained) ? `; no rate tried saturated the system` : ''}).` +
          (at70 ? ` At 70 % of it (${at70.rate} images/s): **p95 ${at70.p95} ms**, goal ≤ ${goal ?? '—'} ms: ${goal === undefined ? '—' : at70.p95 <= goal ? '**met**' : '**not met**'}.` : ''),
      '',
    );
  }
  const out = values.out ?? 'docs/benchmarks/pipeline-steady.md';
  fs.writeFileSync(out, lines.join('\n'));
  console.log(lines.join('\n'));
}

async function main() {
  if (values['scale-out']) return scaleOutMain();
  if (values.steady) return steadyMain();
  return burstMain();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
