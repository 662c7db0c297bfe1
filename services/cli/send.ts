import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';

const USAGE = `Send a folder of DICOM files to a fracture-triage server over STOW-RS.

  npm run send -- <folder or file>... [--url http://127.0.0.1:8080] [--key ft_…] [--concurrency 4] [--priority stat]

The key comes from --key, else $FT_API_KEY, else data/demo-api-key (written by "npm start" in demo mode).
Files are found recursively; anything without a DICOM preamble or a .dcm extension is skipped.
`;

export interface SendSummary {
  stored: number;
  duplicate: number;
  warning: number;
  failed: number;
  skipped: number;
  failures: { file: string; reason: string }[];
}

async function* walk(target: string): AsyncGenerator<string> {
  const stat = await fsp.stat(target);
  if (stat.isFile()) {
    yield target;
    return;
  }
  const entries = await fsp.readdir(target, { withFileTypes: true });
  entries.sort((a, b) => a.name.localeCompare(b.name));
  for (const entry of entries) {
    const full = path.join(target, entry.name);
    if (entry.isDirectory()) yield* walk(full);
    else if (entry.isFile()) yield full;
  }
}

async function looksLikeDicom(file: string): Promise<boolean> {
  if (/\.dcm$/i.test(file)) return true;
  const handle = await fsp.open(file, 'r');
  try {
    const buf = Buffer.alloc(132);
    const { bytesRead } = await handle.read(buf, 0, 132, 0);
    return bytesRead === 132 && buf.toString('latin1', 128, 132) === 'DICM';
  } finally {
    await handle.close();
  }
}

/** Posts one file as a one-part STOW-RS request, streaming it from disk. */
function stowFile(url: URL, key: string, file: string, size: number, priority?: string): Promise<{ status: number; body: string; duplicates: number }> {
  const boundary = `ft-${randomUUID()}`;
  const head = Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`);
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const target = new URL(`/dicomweb/studies${priority ? `?priority=${encodeURIComponent(priority)}` : ''}`, url);
  const client = target.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(target, {
      method: 'POST',
      headers: {
        'Content-Type': `multipart/related; type="application/dicom"; boundary=${boundary}`,
        'Content-Length': head.length + size + tail.length,
        Accept: 'application/dicom+json',
        Authorization: `Bearer ${key}`,
      },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({
        status: res.statusCode ?? 0,
        body: Buffer.concat(chunks).toString('utf8'),
        duplicates: Number(res.headers['x-duplicate-count'] ?? 0),
      }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.write(head);
    const stream = fs.createReadStream(file);
    stream.on('error', (err) => req.destroy(err));
    stream.on('end', () => req.end(tail));
    stream.pipe(req, { end: false });
  });
}

type Outcome = { kind: 'stored' | 'duplicate' | 'warning' | 'failed'; reason?: string };

function interpret(status: number, body: string): Outcome {
  if (status === 401) return { kind: 'failed', reason: 'API key refused (401)' };
  let json: Record<string, { Value?: Record<string, { Value?: unknown[] }>[] }> | undefined;
  try {
    json = JSON.parse(body);
  } catch {
    return { kind: 'failed', reason: `HTTP ${status}` };
  }
  const failed = json?.['00081198']?.Value?.[0];
  if (failed) return { kind: 'failed', reason: `${String(failed['00000902']?.Value?.[0] ?? 'refused')} (0x${Number(failed['00081197']?.Value?.[0] ?? 0).toString(16).toUpperCase()})` };
  const ref = json?.['00081199']?.Value?.[0];
  if (ref?.['00081196']) return { kind: 'warning', reason: String(ref['00000902']?.Value?.[0] ?? 'warning') };
  if (status === 200 || status === 202) return { kind: 'stored' };
  return { kind: 'failed', reason: (json as unknown as { message?: string })?.message ?? `HTTP ${status}` };
}

export async function send(targets: string[], opts: { url: string; key: string; concurrency: number; priority?: string; progress?: boolean }): Promise<SendSummary> {
  const files: string[] = [];
  let skipped = 0;
  for (const target of targets) {
    for await (const file of walk(target)) {
      if (await looksLikeDicom(file)) files.push(file);
      else skipped++;
    }
  }
  const summary: SendSummary = { stored: 0, duplicate: 0, warning: 0, failed: 0, skipped, failures: [] };
  const url = new URL(opts.url);
  let done = 0;
  let next = 0;
  const draw = () => {
    if (!opts.progress) return;
    const width = 30;
    const filled = files.length ? Math.round((done / files.length) * width) : width;
    process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${files.length}  stored ${summary.stored}  dup ${summary.duplicate}  failed ${summary.failed} `);
  };
  const worker = async () => {
    while (next < files.length) {
      const file = files[next++];
      let outcome: Outcome;
      try {
        const { size } = await fsp.stat(file);
        let response = await stowFile(url, opts.key, file, size, opts.priority);
        // The server sheds load with 503 (busy) or 429 (this key's share used) + Retry-After; wait and try again a few times.
        for (let attempt = 0; (response.status === 503 || response.status === 429) && attempt < 5; attempt++) {
          await new Promise((r) => setTimeout(r, 1000 * 2 ** attempt));
          response = await stowFile(url, opts.key, file, size, opts.priority);
        }
        outcome = interpret(response.status, response.body);
        // A resend of identical bytes is acknowledged as stored; the server counts it in X-Duplicate-Count.
        if (outcome.kind === 'stored' && response.duplicates > 0) outcome = { kind: 'duplicate' };
      } catch (err) {
        outcome = { kind: 'failed', reason: (err as Error).message };
      }
      summary[outcome.kind]++;
      if (outcome.kind === 'failed' || outcome.kind === 'warning') summary.failures.push({ file, reason: outcome.reason ?? '' });
      done++;
      draw();
    }
  };
  draw();
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency) }, worker));
  if (opts.progress) process.stderr.write('\n');
  return summary;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      url: { type: 'string', default: process.env.FT_URL ?? 'http://127.0.0.1:8080' },
      key: { type: 'string' },
      concurrency: { type: 'string', default: '4' },
      priority: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || !positionals.length) {
    process.stdout.write(USAGE);
    return values.help ? 0 : 2;
  }
  let key = values.key ?? process.env.FT_API_KEY;
  if (!key) {
    const demoKey = path.join(process.env.DATA_DIR ?? 'data', 'demo-api-key');
    key = fs.existsSync(demoKey) ? fs.readFileSync(demoKey, 'utf8').trim() : undefined;
  }
  if (!key) {
    console.error('no API key: pass --key, set FT_API_KEY, or start the server in demo mode (npm start)');
    return 2;
  }
  const summary = await send(positionals, { url: values.url!, key, concurrency: Number(values.concurrency), priority: values.priority, progress: process.stderr.isTTY });
  console.log(`stored ${summary.stored}, already stored ${summary.duplicate}, stored earlier with other content ${summary.warning}, failed ${summary.failed}, skipped (not DICOM) ${summary.skipped}`);
  for (const f of summary.failures) console.log(`  ${f.file}: ${f.reason}`);
  return summary.failed ? 1 : 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).then((code) => process.exit(code), (err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
