/**
 * npm run bench:pipeline [-- --small 1000 --large 100 --workers 1,2]
 *
 * The whole pipeline, end to end, as it runs in production: API process + N classify worker
 * processes (real Redis, SQLite, the committed model). For each worker count it sends a burst of
 * generated 16-bit DX images over STOW-RS (4 at a time), waits until every image has a result,
 * and reports throughput, upload→result latency percentiles, time per stage, and worker RSS.
 * Results go to docs/benchmarks/pipeline.md.
 *
 * npm run bench:pipeline -- --steady 2,4,6,8 [--seconds 30 --size 512|2048x2500 --workers 1]
 *
 * Steady load: for each rate (images/s) a fresh system gets images at that constant rate for
 * --seconds (each request sent on schedule, not waiting for the previous one); reports
 * upload→result latency p50/p95/p99, queue wait and per-stage medians, achieved rate, and CPU and
 * peak RSS per process. The knee is the first rate the system cannot keep up with. Results go to
 * docs/benchmarks/pipeline-steady.md.
 */
import fs from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { dxImage, writeDicom } from '../test/helpers/dicom.js';
import { startProcessSystem, waitFor, type ProcessSystem } from '../test/helpers/processes.js';
import { DEFAULT_MODEL_DIR } from '../services/inference/defaultModel.js';

const { values } = parseArgs({
  options: {
    small: { type: 'string', default: '1000' },
    large: { type: 'string', default: '100' },
    workers: { type: 'string', default: '1,2' },
    steady: { type: 'string' },
    seconds: { type: 'string', default: '30' },
    size: { type: 'string', default: '512' },
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

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const median = (xs: number[]) => pct([...xs].sort((a, b) => a - b), 50);

async function runOnce(label: string, count: number, rows: number, columns: number, workers: number) {
  const system: ProcessSystem = await startProcessSystem({ LOG_LEVEL: 'warn', MAX_CONCURRENT_UPLOADS: '64', MAX_CONCURRENT_UPLOADS_PER_KEY: '64', JOB_LOCK_MS: '30000', STALLED_CHECK_MS: '30000' });
  try {
    await system.startApi();
    const workerProcs: import('node:child_process').ChildProcess[] = [];
    for (let i = 0; i < workers; i++) workerProcs.push(await system.startWorker({ LOG_LEVEL: 'info' }));
    const images = Array.from({ length: count }, () => image(rows, columns));
    let peakRss = 0;
    const sampler = setInterval(() => { for (const w of workerProcs) peakRss = Math.max(peakRss, rssMb(w.pid!)); }, 250);
    const started = Date.now();
    let next = 0;
    let rejected = 0;
    await Promise.all(Array.from({ length: 4 }, async () => {
      while (next < images.length) if ((await post(system.url, system.key, images[next++])) !== 200) rejected++;
    }));
    const uploaded = Date.now();
    const db = system.core.database.db;
    await waitFor(async () => (await db.selectFrom('ai_results').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n >= count - rejected, 3600_000, 'every result');
    const finished = Date.now();
    clearInterval(sampler);
    const rowsOut = await db.selectFrom('ai_results').innerJoin('instances', 'instances.id', 'ai_results.instance_id')
      .select(['ai_results.status', 'ai_results.started_at', 'ai_results.decoded_at', 'ai_results.inferred_at', 'ai_results.stored_at', 'ai_results.queued_at', 'instances.received_at'])
      .execute();
    const latency = rowsOut.map((r) => r.stored_at - r.received_at).sort((a, b) => a - b);
    return {
      label, workers, count, rejected, failed: rowsOut.filter((r) => r.status !== 'done').length,
      uploadSeconds: (uploaded - started) / 1000,
      totalSeconds: (finished - started) / 1000,
      imagesPerSec: count / ((finished - started) / 1000),
      p50: pct(latency, 50), p95: pct(latency, 95), p99: pct(latency, 99),
      queueWait: median(rowsOut.map((r) => r.started_at! - r.queued_at!)),
      decode: median(rowsOut.map((r) => r.decoded_at! - r.started_at!)),
      inference: median(rowsOut.map((r) => r.inferred_at! - r.decoded_at!)),
      store: median(rowsOut.map((r) => r.stored_at - r.inferred_at!)),
      peakRss,
    };
  } finally {
    await system.stop();
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

async function runSteady(rate: number, seconds: number, rows: number, columns: number, workers: number) {
  const system: ProcessSystem = await startProcessSystem({ LOG_LEVEL: 'warn', MAX_CONCURRENT_UPLOADS: '64', JOB_LOCK_MS: '30000', STALLED_CHECK_MS: '30000' });
  try {
    const api = await system.startApi();
    const workerProcs: import('node:child_process').ChildProcess[] = [];
    for (let i = 0; i < workers; i++) workerProcs.push(await system.startWorker({ LOG_LEVEL: 'info' })); // info: the start-up line the helper waits for
    const count = Math.max(1, Math.round(rate * seconds));
    const images = Array.from({ length: count }, () => image(rows, columns));
    const procs = [{ name: 'api', pid: api.pid! }, ...workerProcs.map((w, i) => ({ name: `worker ${i + 1}`, pid: w.pid! }))];
    const peakRss = new Map(procs.map((p) => [p.name, 0]));
    const sampler = setInterval(() => { for (const p of procs) peakRss.set(p.name, Math.max(peakRss.get(p.name)!, rssMb(p.pid))); }, 250);
    const cpuBefore = new Map(procs.map((p) => [p.name, cpuMs(p.pid)]));
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
    const db = system.core.database.db;
    const finishedBy = await waitFor(async () => (await db.selectFrom('ai_results').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n >= count - rejected, 1800_000, 'every result').then(() => Date.now());
    clearInterval(sampler);
    const elapsed = (finishedBy - started) / 1000;
    const cpu = procs.map((p) => `${p.name} ${(((cpuMs(p.pid) - cpuBefore.get(p.name)!) / 1000 / elapsed) * 100).toFixed(0)} % / ${peakRss.get(p.name)!.toFixed(0)} MB`);
    const rowsOut = await db.selectFrom('ai_results').innerJoin('instances', 'instances.id', 'ai_results.instance_id')
      .select(['ai_results.status', 'ai_results.started_at', 'ai_results.decoded_at', 'ai_results.inferred_at', 'ai_results.stored_at', 'ai_results.queued_at', 'instances.received_at'])
      .execute();
    const latency = rowsOut.map((r) => r.stored_at - r.received_at).sort((a, b) => a - b);
    const lastReceived = Math.max(...rowsOut.map((r) => r.received_at));
    return {
      rate, count, rejected, failed: rowsOut.filter((r) => r.status !== 'done').length,
      // What the system sustained: results per second over the sending window plus the time to drain it.
      achieved: rowsOut.length / ((Math.max(...rowsOut.map((r) => r.stored_at)) - Math.min(...rowsOut.map((r) => r.received_at))) / 1000),
      drainSeconds: (Math.max(...rowsOut.map((r) => r.stored_at)) - lastReceived) / 1000,
      p50: pct(latency, 50), p95: pct(latency, 95), p99: pct(latency, 99),
      queueWait: median(rowsOut.map((r) => r.started_at! - r.queued_at!)),
      decode: median(rowsOut.map((r) => r.decoded_at! - r.started_at!)),
      inference: median(rowsOut.map((r) => r.inferred_at! - r.decoded_at!)),
      store: median(rowsOut.map((r) => r.stored_at - r.inferred_at!)),
      cpu,
    };
  } finally {
    await system.stop();
  }
}

async function steadyMain() {
  const rates = values.steady!.split(',').map(Number);
  const seconds = Number(values.seconds);
  const workers = Number(values.workers!.split(',')[0]);
  const [rows, columns] = values.size === '512' ? [512, 512] : [2500, 2048];
  const results: Awaited<ReturnType<typeof runSteady>>[] = [];
  for (const rate of rates) {
    console.error(`steady ${rate} images/s for ${seconds} s (${columns}×${rows}, ${workers} worker(s))…`);
    results.push(await runSteady(rate, seconds, rows, columns, workers));
  }
  // The knee: the first rate whose results fall behind the offered rate (the queue grows while sending).
  const knee = results.find((r) => r.achieved < 0.9 * r.rate || r.p95 > 4 * results[0].p95);
  const lines = [
    `# Pipeline benchmark: steady load, ${columns}×${rows}`,
    '',
    `Command: \`npm run bench:pipeline -- --steady ${values.steady} --seconds ${seconds} --size ${values.size} --workers ${workers}\``,
    `Machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, shared with other work while measured (load average ${os.loadavg()[0].toFixed(1)} at the end). Date: ${new Date().toISOString().slice(0, 10)}.`,
    `Setup: a fresh API process + ${workers} worker process(es) (defaults: WORKER_CONCURRENCY, DECODE_THREADS), SQLite, local Redis, the committed model; generated 16-bit DX images (uncompressed) sent over STOW-RS one per request at a constant rate for ${seconds} s, each request on schedule whatever the previous answers. Latency = upload received → result stored.`,
    '',
    '| offered images/s | sent | rejected | no result | achieved images/s | drain after last upload s | latency p50 / p95 / p99 ms | median queue wait / decode / inference / store ms | CPU (of one core) / peak RSS per process |',
    '|---:|---:|---:|---:|---:|---:|---|---|---|',
    ...results.map((r) => `| ${r.rate} | ${r.count} | ${r.rejected} | ${r.failed} | ${r.achieved.toFixed(2)} | ${r.drainSeconds.toFixed(1)} | ${r.p50} / ${r.p95} / ${r.p99} | ${r.queueWait} / ${r.decode} / ${r.inference} / ${r.store} | ${r.cpu.join('; ')} |`),
    '',
    knee ? `Knee: ${knee.rate} images/s — the first offered rate the pipeline did not keep up with (achieved < 90 % of offered, or p95 more than 4× the lowest rate's).` : `No knee up to ${rates[rates.length - 1]} images/s: every rate was sustained.`,
    '',
  ];
  const out = values.out ?? 'docs/benchmarks/pipeline-steady.md';
  fs.writeFileSync(out, lines.join('\n'));
  console.log(lines.join('\n'));
}

async function main() {
  if (values.steady) return steadyMain();
  const workerCounts = values.workers!.split(',').map(Number);
  const results = [];
  for (const [label, count, rows, columns] of [['512×512', Number(values.small), 512, 512], ['2048×2500', Number(values.large), 2500, 2048]] as const) {
    if (!count) continue;
    for (const workers of workerCounts) {
      console.error(`running ${label} × ${count} with ${workers} worker(s)…`);
      results.push(await runOnce(label, count, rows, columns, workers));
    }
  }
  const manifest = JSON.parse(fs.readFileSync(`${process.env.MODEL_DIR ?? DEFAULT_MODEL_DIR}/manifest.json`, 'utf8'));
  const lines = [
    '# Pipeline benchmark',
    '',
    `Command: \`npm run bench:pipeline -- --small ${values.small} --large ${values.large} --workers ${values.workers}\``,
    `Machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}. Date: ${new Date().toISOString().slice(0, 10)}.`,
    `Setup: API process + worker processes (WORKER_CONCURRENCY=2, DECODE_THREADS=1 each), SQLite, local Redis, model ${manifest.name} ${manifest.version} (input ${manifest.inputSize}²), TF.js backend chosen by "auto" (wasm here: tfjs-node cannot install on this machine). A burst of generated 16-bit DX images (uncompressed) is sent over STOW-RS, 4 requests at a time; the clock stops when the last result is stored.`,
    '',
    '| images | workers | count | rejected | no result | upload s | total s | images/s | latency p50 / p95 / p99 ms | median queue wait / decode / inference / store ms | peak worker RSS MB |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---|---|---:|',
    ...results.map((r) => `| ${r.label} | ${r.workers} | ${r.count} | ${r.rejected} | ${r.failed} | ${r.uploadSeconds.toFixed(1)} | ${r.totalSeconds.toFixed(1)} | ${r.imagesPerSec.toFixed(2)} | ${r.p50} / ${r.p95} / ${r.p99} | ${r.queueWait} / ${r.decode} / ${r.inference} / ${r.store} | ${r.peakRss.toFixed(0)} |`),
    '',
    'Latency is upload received → result stored, so for a burst it is mostly time spent waiting in the queue; the per-stage medians show the work itself. On 2 cores a second worker process competes with the first (and with the API) for the same CPUs.',
    '',
  ];
  fs.writeFileSync(values.out ?? 'docs/benchmarks/pipeline.md', lines.join('\n'));
  console.log(lines.join('\n'));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
