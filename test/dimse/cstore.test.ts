import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseInstance } from '../../services/dicom/index.js';
import { SUPPORTED_TRANSFER_SYNTAXES } from '../../services/dicom/index.js';
import { runTool, storescuConfig } from '../helpers/dcmtk.js';
import { makeDx, makeSr, uid } from '../helpers/dicom.js';
import { MODEL_DIR, startProcessSystem, waitFor, type ProcessSystem } from '../helpers/processes.js';
import { freePort } from '../helpers/redis-server.js';

const root = path.resolve(import.meta.dirname, '../..');
const fixtures = path.join(root, 'test/fixtures/imaging');
const hasDcmtk = fs.existsSync('/usr/bin/storescu') && fs.existsSync('/usr/bin/echoscu') && fs.existsSync('/usr/bin/dcmodify');
const hasModel = fs.existsSync(path.join(MODEL_DIR, 'manifest.json'));
if (!hasDcmtk) console.warn('C-STORE test skipped: dcmtk (storescu, echoscu, dcmodify) is not installed');

const AE = 'FT_TEST';
const CALLER = 'MODALITY1';
const DX = '1.2.840.10008.5.1.4.1.1.1.1';
const CR = '1.2.840.10008.5.1.4.1.1.1';
const BASIC_TEXT_SR = '1.2.840.10008.5.1.4.1.1.88.11';

/**
 * One file per transfer syntax the pipeline decodes: the samples where they exist, else a test
 * fixture given fresh UIDs (and study/series UIDs, which the imaging fixtures leave out) by dcmodify,
 * which keeps the file's encoding.
 */
async function filesInEverySyntax(dir: string): Promise<Map<string, string>> {
  const sources = [
    'samples/fracatlas/01-hand-fractured-explicit-le.dcm', 'samples/fracatlas/02-hand-fractured-jpeg-lossless.dcm',
    'samples/fracatlas/03-leg-fractured-jpeg-ls.dcm', 'samples/fracatlas/04-leg-fractured-rle.dcm',
    'samples/fracatlas/05-mixed-fractured-implicit-le.dcm', 'samples/fracatlas/06-hip-fractured-deflated.dcm',
    'samples/real-cr/RG1_J2KI.dcm', 'samples/real-cr/RG3_J2KR.dcm',
    'test/fixtures/imaging/u8_mono2.explicit-be.dcm', 'test/fixtures/imaging/u8_mono2.jpeg-baseline.dcm',
    'test/fixtures/imaging/u16b12_3frames.jpeg-extended-12.dcm', 'test/fixtures/imaging/u8_mono2.jpeg-lossless-sv6.dcm',
    'test/fixtures/imaging/u8_mono2.jpeg-ls-near.dcm',
  ];
  const bySyntax = new Map<string, string>();
  for (const [i, source] of sources.entries()) {
    const file = path.join(dir, `${i}.dcm`);
    fs.copyFileSync(path.join(root, source), file);
    if (source.startsWith('test/')) {
      const { code, output } = await runTool('dcmodify', ['-nb', '-gin', '-i', `(0020,000D)=${uid()}`, '-i', `(0020,000E)=${uid()}`, '-i', '(0010,0020)=FIXTURE', file]);
      if (code !== 0) throw new Error(`dcmodify failed: ${output}`);
    }
    bySyntax.set((await parseInstance(fs.readFileSync(file))).transferSyntaxUid, file);
  }
  return bySyntax;
}

describe.skipIf(!hasDcmtk || !hasModel)('DICOM C-STORE SCP (dcmtk storescu/echoscu → listener process → real worker)', () => {
  let system: ProcessSystem;
  let port: number;
  let dir: string;
  let config: string;
  let files: Map<string, string>;

  const storescu = (aet: string, paths: string[]) => runTool('storescu', ['-xf', config, 'FT', '-aet', aet, '-aec', AE, '127.0.0.1', String(port), ...paths]);
  const echoscu = (aet: string, aec = AE) => runTool('echoscu', ['-aet', aet, '-aec', aec, '127.0.0.1', String(port)]);
  const instances = () => system.core.database.db.selectFrom('instances').selectAll().execute();

  beforeAll(async () => {
    port = await freePort();
    system = await startProcessSystem({ DIMSE_PORT: String(port), DIMSE_AE_TITLE: AE, DIMSE_HOST: '127.0.0.1' });
    await system.core.repos.aeTitles.upsert({ aeTitle: CALLER, siteId: 'site-a', host: null });
    await system.core.repos.aeTitles.upsert({ aeTitle: 'ELSEWHERE', siteId: 'site-a', host: '192.0.2.7' });
    await Promise.all([system.startDimse(), system.startWorker()]);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ft-cstore-'));
    config = storescuConfig([CR, DX, BASIC_TEXT_SR]);
    files = await filesInEverySyntax(dir);
  }, 180_000);
  afterAll(async () => {
    await system?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('answers C-ECHO from a registered caller and rejects unknown callers and a wrong called AE at association', async () => {
    expect((await echoscu(CALLER)).code).toBe(0);
    const unknown = await echoscu('STRANGER');
    expect(unknown.code).not.toBe(0);
    expect(unknown.output).toMatch(/Calling AE Title Not Recognized/i);
    // Registered, but only from another host.
    expect((await echoscu('ELSEWHERE')).output).toMatch(/Calling AE Title Not Recognized/i);
    expect((await echoscu(CALLER, 'SOMEONE_ELSE')).output).toMatch(/Called AE Title Not Recognized/i);
    expect(system.output()).not.toMatch(/"level":50/);
  });

  it('stores a file in every accepted transfer syntax once, in the syntax it was sent, and the worker classifies each', async () => {
    expect([...files.keys()].sort()).toEqual(SUPPORTED_TRANSFER_SYNTAXES.map((t) => t.uid).sort());
    const sent = await storescu(CALLER, [...files.values()]);
    expect(sent.output).not.toMatch(/^E:/m);
    expect(sent.code).toBe(0);

    const rows = await instances();
    expect(rows).toHaveLength(files.size);
    for (const [syntax, file] of files) {
      const meta = await parseInstance(fs.readFileSync(file));
      const row = rows.find((r) => r.sop_instance_uid === meta.sopInstanceUid)!;
      expect(row, `row for ${syntax}`).toBeDefined();
      expect(row.site_id).toBe('site-a');
      expect(row.transfer_syntax_uid).toBe(syntax);
      // The stored file is a Part 10 file in the sent syntax, naming the caller as its source.
      const stored = await system.core.repos.storage.readFile(row.storage_key);
      expect((await parseInstance(stored)).transferSyntaxUid).toBe(syntax);
      expect(stored.includes(Buffer.from(CALLER))).toBe(true);
    }
    const results = await waitFor(async () => {
      const r = await system.core.database.db.selectFrom('ai_results').selectAll().execute();
      return r.length === files.size && r;
    }, 240_000, 'a result for every stored instance');
    expect(results.filter((r) => r.status === 'done').length).toBeGreaterThan(0);
    expect(results.filter((r) => r.status === 'failed').map((r) => r.reason)).toEqual([]);

    const audit = await system.core.repos.audit.list({ action: 'instance.store', siteId: 'site-a' });
    expect(audit.length).toBe(files.size);
    expect(audit.every((a) => a.actor_type === 'dicom_ae' && a.actor_id === CALLER && JSON.parse(a.details!).origin === 'dimse')).toBe(true);
    expect(rows.every((r) => r.origin === 'dimse' && r.actor_id === CALLER)).toBe(true);

    // A resend adds nothing: same rows, no new jobs.
    const jobsBefore = await system.core.jobs.classify.queue.getJobCountByTypes('waiting', 'prioritized', 'active', 'completed', 'failed', 'delayed');
    const again = await storescu(CALLER, [...files.values()]);
    expect(again.code).toBe(0);
    expect(await instances()).toHaveLength(files.size);
    expect(await system.core.jobs.classify.queue.getJobCountByTypes('waiting', 'prioritized', 'active', 'completed', 'failed', 'delayed')).toBe(jobsBefore);
  }, 400_000);

  it('stores a report (SR) with its study, marks it not applicable at once, and refuses another patient in the same study with A900', async () => {
    const image = makeDx({ patientId: 'PAT-1' });
    const report = makeSr({ studyUid: image.studyUid, patientId: 'PAT-1' });
    const intruder = makeDx({ studyUid: image.studyUid, patientId: 'PAT-2' });
    const write = (name: string, bytes: Buffer) => { const file = path.join(dir, name); fs.writeFileSync(file, bytes); return file; };
    const ok = await storescu(CALLER, [write('image.dcm', image.bytes), write('report.dcm', report.bytes)]);
    expect(ok.code).toBe(0);
    const sr = await system.core.repos.instances.findBySop('site-a', report.sopInstanceUid);
    expect(sr?.sop_class_uid).toBe(BASIC_TEXT_SR);
    const result = await waitFor(() => system.core.repos.aiResults.byInstance(sr!.id), 120_000, 'the report\'s AI result');
    expect(result.status).toBe('not_applicable');

    const refused = await runTool('storescu', ['-d', '-xf', config, 'FT', '-aet', CALLER, '-aec', AE, '127.0.0.1', String(port), write('intruder.dcm', intruder.bytes)]);
    expect(refused.output).toMatch(/DIMSE Status\s*:\s*0xa900/i);
    expect(refused.output).toMatch(/Study UID is stored for another Patient ID/);
    expect(await system.core.repos.instances.findBySop('site-a', intruder.sopInstanceUid)).toBeUndefined();
  }, 200_000);
});
