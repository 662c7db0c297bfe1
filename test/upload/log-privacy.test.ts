import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { send } from '../../services/cli/send.js';
import { makeDx } from '../helpers/dicom.js';
import { MODEL_DIR, startProcessSystem, waitFor, type ProcessSystem } from '../helpers/processes.js';
import os from 'node:os';

const NAME = 'ZEBRAQUIXOTE^WILHELMINA';
const PATIENT_ID = 'PID-7731-XQZ';
const ACCESSION = 'ACCN-99812-Q';

describe('logs carry no patient data', () => {
  let system: ProcessSystem | undefined;
  afterAll(() => system?.stop());

  it('API and worker logs at debug level never contain the names, IDs or accession numbers they handled', async () => {
    system = await startProcessSystem({ LOG_LEVEL: 'trace' });
    const s = system;
    await s.startApi();
    const hasModel = fs.existsSync(path.join(MODEL_DIR, 'manifest.json'));
    if (hasModel) await s.startWorker({ LOG_LEVEL: 'trace' });

    const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'ft-privacy-'));
    const good = makeDx({ patientName: NAME, patientId: PATIENT_ID, accession: ACCESSION });
    fs.writeFileSync(path.join(folder, 'a.dcm'), good.bytes);
    fs.writeFileSync(path.join(folder, 'b.dcm'), good.bytes.subarray(0, good.bytes.length - 300)); // truncated: a rejection
    const conflict = makeDx({ studyUid: good.studyUid, seriesUid: good.seriesUid, sopInstanceUid: good.sopInstanceUid, patientName: NAME, patientId: PATIENT_ID, accession: ACCESSION, rows: 16 });
    fs.writeFileSync(path.join(folder, 'c.dcm'), conflict.bytes);
    // Patient data where a defined term belongs: the worker refuses the image and names the
    // attribute, never its text (quotable() in failure-reason.ts).
    const hostile = makeDx({ patientName: NAME, patientId: PATIENT_ID, accession: ACCESSION, extra: { '00280004': { vr: 'CS', value: `${NAME} ${PATIENT_ID}` } } });
    fs.writeFileSync(path.join(folder, 'd.dcm'), hostile.bytes);
    const summary = await send([folder], { url: s.url, key: s.key, concurrency: 1 });
    expect(summary).toMatchObject({ stored: 2, failed: 1, warning: 1 });
    await fetch(`${s.url}/dicomweb/studies?PatientID=${PATIENT_ID}`, { headers: { authorization: `Bearer ${s.key}` } });
    if (hasModel) {
      await waitFor(async () => (await s.core.database.db.selectFrom('ai_results').selectAll().execute()).length === 2, 60_000, 'both results');
      const refused = await s.core.database.db.selectFrom('ai_results').innerJoin('instances', 'instances.id', 'ai_results.instance_id')
        .select(['ai_results.status', 'ai_results.reason']).where('instances.sop_instance_uid', '=', hostile.sopInstanceUid).executeTakeFirstOrThrow();
      // Not "normal": a visible failure with the reason, the value replaced.
      expect(refused.status).not.toBe('done');
      expect(refused.reason).toContain('(unrecognised value)');
    }
    await new Promise((r) => setTimeout(r, 500));
    const logs = s.output();
    if (process.env.DUMP_LOGS) fs.writeFileSync(process.env.DUMP_LOGS, logs);
    expect(logs.length).toBeGreaterThan(500); // trace logging really happened
    expect(logs).toContain('"reqId"');
    for (const secret of [NAME, 'ZEBRAQUIXOTE', 'WILHELMINA', PATIENT_ID, ACCESSION]) expect(logs).not.toContain(secret);
    fs.rmSync(folder, { recursive: true, force: true });
  }, 120_000);
});
