/**
 * npm run bench:viewer — the radiologist's waits, in headless Chromium against a real API process:
 *  1. opening a 2048×2500 16-bit DX study → first rendered pixel on the viewer canvas
 *     (median of 10, each a different study, so every run fetches and decodes);
 *     the same for the real CR JPEG 2000 sample (decoded by the loader's WebAssembly codec);
 *  2. the worklist with 10,000 studies: API page time (first page, a deep page, a search) and
 *     the page load in the browser until the first 50 rows are drawn (median of 10 reloads).
 * Writes docs/benchmarks/viewer.md.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeDx, multipart } from '../test/helpers/dicom.js';
import { startProcessSystem } from '../test/helpers/processes.js';
import { launch, signIn } from '../test/e2e/browser.js';
import { ensureWebBuilt, PASSWORD } from '../test/e2e/viewer-system.js';

const root = path.resolve(import.meta.dirname, '..');
const RUNS = 10;
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const fmt = (xs: number[]) => `${median(xs).toFixed(0)} ms (min ${Math.min(...xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)})`;

ensureWebBuilt();
const sys = await startProcessSystem({ LOG_LEVEL: 'warn' });
try {
  await sys.core.services.auth.createUser({ username: 'bench', password: PASSWORD, role: 'radiologist', siteIds: ['site-a'] });
  await sys.startApi();

  // Ten distinct 2048×2500 12-bit studies (explicit VR little endian, ~10 MB each): a soft
  // gradient with structure, so the canvas has real content.
  const rows = 2500;
  const columns = 2048;
  const studyIds: number[] = [];
  for (let n = 0; n < RUNS; n++) {
    const pixels = new Uint16Array(rows * columns);
    for (let y = 0; y < rows; y++) for (let x = 0; x < columns; x++) {
      pixels[y * columns + x] = (800 + ((x * 3 + y * 2 + n * 97) % 2400) + ((x >> 4) ^ (y >> 4)) % 400) & 0xfff;
    }
    const dx = makeDx({ rows, columns, pixels, patientName: `BENCH^${n}`, accession: `BENCH${n}`, bodyPart: 'HAND' });
    const body = multipart([dx.bytes]);
    const res = await fetch(`${sys.url}/dicomweb/studies`, { method: 'POST', headers: { 'content-type': body.contentType, authorization: `Bearer ${sys.key}` }, body: body.body });
    if (res.status !== 200) throw new Error(`stow ${res.status}`);
    studyIds.push((await sys.core.repos.instances.getStudy('site-a', dx.studyUid))!.id);
  }
  const cr = fs.readFileSync(path.join(root, 'samples/real-cr/RG1_J2KI.dcm'));
  const crBody = multipart([cr]);
  await fetch(`${sys.url}/dicomweb/studies`, { method: 'POST', headers: { 'content-type': crBody.contentType, authorization: `Bearer ${sys.key}` }, body: crBody.body });
  const crStudy = await sys.core.database.db.selectFrom('studies').select('id').where('patient_id', '=', '9RG1').executeTakeFirstOrThrow();

  const browser = await launch();
  const page = browser.page;
  await signIn(page, sys.url, 'bench');

  /** Opens a study from the worklist (hash route, as a click does) and times until its image is on the canvas. */
  // Runs in the page (DOM types are not in this project's Node tsconfig, hence `any`).
  const open = (id: number) => page.evaluate(async (studyId) => {
    const w = globalThis as any;
    w.location.hash = '#/';
    await new Promise((r) => setTimeout(r, 50));
    const before: string | undefined = w.document.querySelector('#viewport')?.dataset.rendered;
    const t0 = w.performance.now();
    w.location.hash = `#/study/${studyId}`;
    for (;;) {
      await new Promise((r) => w.requestAnimationFrame(r));
      const vp = w.document.querySelector('#viewport');
      const rendered: string | undefined = vp?.dataset.rendered;
      if (rendered && rendered !== before && w.location.hash === `#/study/${studyId}`) {
        const canvas = vp.querySelector('canvas.cornerstone-canvas');
        const { data } = canvas.getContext('2d').getImageData(canvas.width >> 1, canvas.height >> 1, 1, 1);
        return { ms: w.performance.now() - t0 as number, pixel: data[0] + data[1] + data[2] as number, imageId: rendered };
      }
      if (w.performance.now() - t0 > 60_000) throw new Error('no render in 60 s');
    }
  }, id);

  // Warm-up: the first open loads the viewer module and starts the decode workers.
  await open(crStudy.id);
  const dxTimes: number[] = [];
  let lastImage = '';
  for (const id of studyIds) {
    const r = await open(id);
    if (r.imageId === lastImage) throw new Error('same image twice');
    lastImage = r.imageId;
    dxTimes.push(r.ms);
  }
  // The CR again, from the browser's image cache emptied by a reload each time.
  const crTimes: number[] = [];
  for (let i = 0; i < 5; i++) {
    await page.goto(`${sys.url}/?cr=${i}#/`); // a real page load: empty image cache, workers restarted
    await page.waitForSelector('#worklist tr.row');
    await open(studyIds[0]); // load the viewer module and workers, as above
    crTimes.push((await open(crStudy.id)).ms);
  }

  // 10,000 more studies for the worklist.
  const now = Date.now();
  const flags = ['definite', 'doubt', 'none', 'none', 'none', null] as const;
  for (let chunk = 0; chunk < 10_000; chunk += 500) {
    await sys.core.database.db.insertInto('studies').values(Array.from({ length: 500 }, (_, i) => {
      const n = chunk + i;
      const flag = flags[n % flags.length];
      return {
        site_id: 'site-a', study_uid: `1.2.826.0.1.3680043.10.1431.99.${n}`, patient_name: `WORKLIST^${n}`, patient_id: `W${n}`, patient_birth_date: '19700101',
        patient_sex: n % 2 ? 'F' : 'M', patient_age: null, accession_number: `WL${n}`, study_date: '20261129', study_time: '120000', description: null,
        priority: n % 9 === 0 ? 1 : 10, received_at: now - n * 1000, updated_at: now,
        ai_state: flag === null ? 'pending' as const : 'complete' as const, ai_flag: flag, ai_score: flag ? (n % 100) / 100 : null,
      };
    })).execute();
  }
  const total = (await sys.core.database.db.selectFrom('studies').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n;

  const apiTimes = async (query: string) => {
    const times: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      times.push(await page.evaluate(async (q) => {
        const t0 = performance.now();
        const res = await fetch(`/api/worklist${q}`);
        await res.json();
        return performance.now() - t0; // Node and the browser both have performance and fetch
      }, query));
    }
    return times;
  };
  const firstPage = await apiTimes('?limit=50');
  const deepPage = await apiTimes('?limit=50&offset=9950');
  const search = await apiTimes('?q=worklist%5E9999');
  const flagged = await apiTimes('?flag=definite,doubt&review=unreviewed&limit=50');

  const loadTimes: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    await page.goto(`${sys.url}/?load=${i}#/`);
    await page.waitForFunction(() => (globalThis as any).document.querySelectorAll('#worklist tr.row').length === 50);
    loadTimes.push(await page.evaluate(() => (globalThis as any).performance.now() as number));
  }
  await browser.close();

  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  const doc = `# Viewer benchmark

\`npm run bench:viewer\` (bench/viewer.ts): a real API process (SQLite, Redis), headless Debian Chromium
(${'`/usr/bin/chromium`'}, \`--disable-gpu\`), viewport 1440×900, signed in as a radiologist.
Machine: ${os.cpus().length} × ${cpu}, shared with other jobs while this ran (figures are indicative).
Run on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC.

## Opening a study → first rendered pixel

From setting the study's route (what a click or the N key does) until its image is drawn on the
cornerstone canvas: study request (audited), file download through the API, decode in the
loader's web worker, first render. Each run opens a different study, so nothing is cached.

| image | runs | median (min, max) |
| --- | --- | --- |
| 2048×2500, 12 bits stored, uncompressed (~10 MB) | ${dxTimes.length} | ${fmt(dxTimes)} |
| real CR 9RG1, JPEG 2000, MONOCHROME1 (WebAssembly decoder) | ${crTimes.length} (after a reload each) | ${fmt(crTimes)} |

## Worklist with ${total.toLocaleString('en')} studies

API time measured in the browser (\`fetch\` to parsed JSON), ${RUNS} runs each:

| request | median (min, max) |
| --- | --- |
| first page (50, default order) | ${fmt(firstPage)} |
| page 200 (offset 9,950) | ${fmt(deepPage)} |
| search by patient name (substring) | ${fmt(search)} |
| flagged and unreviewed (filter) | ${fmt(flagged)} |

Page load (navigation start until the first 50 rows are drawn, signed in): ${fmt(loadTimes)}.

The worklist is paginated on the server (50 rows a page, ordered in SQL: unreviewed, clinical
priority, AI flag level, score, waiting time; or by an allow-listed \`sort\` column); the database
sorts the site's rows for each page (the indexes on \`studies (site_id, review_state, …)\` serve the site and filter lookups, not the
ordering, which uses CASE ranks). The browser never holds more than a page.
`;
  fs.mkdirSync(path.join(root, 'docs/benchmarks'), { recursive: true });
  fs.writeFileSync(path.join(root, 'docs/benchmarks/viewer.md'), doc);
  console.log(doc);
} finally {
  await sys.stop();
}
