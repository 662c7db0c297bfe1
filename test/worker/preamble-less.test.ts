/**
 * Issue 11's bug: a file without the 128-byte preamble was accepted by STOW but every classify
 * attempt failed ("no DICM marker at offset 128"). Both bare encodings, sent by STOW to a real API
 * process, must get an AI result from a real worker process.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeDx, multipart } from '../helpers/dicom.js';
import { MODEL_DIR, startProcessSystem, waitFor, type ProcessSystem } from '../helpers/processes.js';

const hasModel = fs.existsSync(path.join(MODEL_DIR, 'manifest.json'));

describe.skipIf(!hasModel)('a preamble-less file sent by STOW gets an AI result', () => {
  let system: ProcessSystem | undefined;
  afterAll(() => system?.stop());

  it('implicit and explicit VR little endian', async () => {
    system = await startProcessSystem();
    const s = system;
    await s.startApi();
    await s.startWorker();
    const files = (['1.2.840.10008.1.2', '1.2.840.10008.1.2.1'] as const).map((ts) => makeDx({ rows: 128, columns: 96, write: { bare: true, transferSyntaxUid: ts } }));
    for (const dx of files) {
      expect(dx.bytes.subarray(128, 132).toString('latin1')).not.toBe('DICM');
      const body = multipart([dx.bytes]);
      const res = await fetch(`${s.url}/dicomweb/studies`, {
        method: 'POST', headers: { 'content-type': body.contentType, authorization: `Bearer ${s.key}` }, body: body.body,
      });
      expect(res.status).toBe(200);
    }
    const results = await waitFor(async () => {
      const rows = await s.core.database.db.selectFrom('ai_results').innerJoin('instances', 'instances.id', 'ai_results.instance_id')
        .select(['instances.sop_instance_uid as sop', 'ai_results.status as status', 'ai_results.reason as reason']).execute();
      return rows.length === files.length && rows;
    }, 120_000, 'an AI result for both bare files');
    for (const dx of files) {
      expect(results.find((r) => r.sop === dx.sopInstanceUid)).toMatchObject({ status: 'done', reason: null });
    }
  }, 180_000);
});
