/**
 * Bounded inflation (issue 16, H1): a ~1 MB Deflated data set that inflates to 1 GiB is refused
 * by the parser (ingest and the worker's decode alike) after a few megabytes, with 0xC000 when it
 * outgrows the image it declares and 0xA700 when it outgrows the size limit; through STOW the
 * API process's peak RSS stays under 400 MB, and a worker process handed the bombs (as files
 * already stored) records each as a failed result with its reason, its peak RSS under 400 MB too.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DicomRejection, readDicom } from '../../services/dicom/index.js';
import { PixelDataError, decodeInstance } from '../../services/imaging/index.js';
import { deflateBomb, makeDx, multipart } from '../helpers/dicom.js';
import { ingestDirect } from '../helpers/ingest.js';
import { MODEL_DIR, startProcessSystem, waitFor, type ProcessSystem } from '../helpers/processes.js';

const GiB = 1024 ** 3;
const hasModel = fs.existsSync(`${MODEL_DIR}/manifest.json`);

/** A process's peak resident set (VmHWM) in MB: the high-water mark, so no sampling can miss a spike. */
const peakRssMb = (pid: number) => Number(/VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
let smallImageBomb: Buffer;
let hugeImageBomb: Buffer;

beforeAll(async () => {
  // Declares 32x32 pixels but carries 1 GiB; and one that declares 16384x16384x2 frames (1 GiB).
  smallImageBomb = await deflateBomb({ rows: 32, columns: 32, inflatedBytes: GiB });
  hugeImageBomb = await deflateBomb({ rows: 16384, columns: 16384, frames: 2, inflatedBytes: GiB });
}, 120_000);

describe('deflate bomb, in process', () => {
  it('is about 1 MB on the wire', () => {
    expect(smallImageBomb.length).toBeLessThan(1.5 * 1024 * 1024);
    expect(hugeImageBomb.length).toBeLessThan(1.5 * 1024 * 1024);
  });

  it('outgrowing the declared image is refused with 0xC000', async () => {
    const error = await readDicom(smallImageBomb).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DicomRejection);
    expect((error as DicomRejection).failureReason).toBe(0xc000);
    expect((error as DicomRejection).reason).toMatch(/larger than its image needs/);
  });

  it('outgrowing the size limit is refused with 0xA700', async () => {
    const error = await readDicom(hugeImageBomb, { maxInflatedBytes: 32 * 1024 * 1024 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DicomRejection);
    expect((error as DicomRejection).failureReason).toBe(0xa700);
  });

  it('the worker decode refuses it with a typed error', async () => {
    const error = await decodeInstance(smallImageBomb).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PixelDataError);
    expect((error as PixelDataError).code).toBe('corrupt-pixel-data');
    const tooLarge = await decodeInstance(hugeImageBomb, { maxInflatedBytes: 32 * 1024 * 1024 }).catch((e: unknown) => e);
    expect((tooLarge as PixelDataError).code).toBe('too-large');
  });
});

describe('deflate bomb through STOW (API as its own process)', () => {
  let system: ProcessSystem;
  beforeAll(async () => {
    system = await startProcessSystem({ MAX_PART_MB: '100' });
  }, 120_000);
  afterAll(() => system?.stop());

  it('is refused with a reason and the API peak RSS stays under 400 MB', async () => {
    const api = await system.startApi();
    const send = async (bytes: Buffer) => {
      const body = multipart([bytes]);
      const res = await fetch(`${system.url}/dicomweb/studies`, {
        method: 'POST', headers: { 'content-type': body.contentType, authorization: `Bearer ${system.key}` }, body: body.body,
      });
      const json = await res.json() as Record<string, { Value: Record<string, { Value: unknown[] }>[] }>;
      const failed = json['00081198']?.Value ?? [];
      return { status: res.status, codes: failed.map((f) => f['00081197'].Value[0]) };
    };
    expect(await send(smallImageBomb)).toEqual({ status: 409, codes: [0xc000] });
    expect(await send(hugeImageBomb)).toEqual({ status: 409, codes: [0xa700] });
    const peakMb = peakRssMb(api.pid!);
    console.log(`API peak RSS after two 1 GiB deflate bombs: ${peakMb.toFixed(0)} MB`);
    expect(peakMb).toBeLessThan(400);
  }, 120_000);

  it.skipIf(!hasModel)('handed to the worker as stored files, each ends as a failed result with its reason; the worker peak RSS stays under 400 MB', async () => {
    // The API refuses bombs, so plant them the way an older release or a restored backup could have:
    // ingest two ordinary images, then put the bombs in their stored files before a worker runs.
    const planted: number[] = [];
    for (const bomb of [smallImageBomb, hugeImageBomb]) {
      const stored = await ingestDirect(system.core, makeDx().bytes);
      expect(stored.status).toBe('stored');
      const instance = (await system.core.database.db.selectFrom('instances').selectAll().orderBy('id', 'desc').executeTakeFirstOrThrow());
      fs.writeFileSync(system.core.repos.storage.pathOf(instance.storage_key), bomb);
      planted.push(instance.id);
    }
    const worker = await system.startWorker();
    const results = await waitFor(async () => {
      const rows = await system.core.database.db.selectFrom('ai_results').selectAll().where('instance_id', 'in', planted).execute();
      return rows.length === planted.length && rows;
    }, 90_000, 'both results');
    for (const row of results) {
      expect(row.status, `instance ${row.instance_id}`).toBe('failed');
      expect(row.flag).toBeNull();
    }
    const reasons = Object.fromEntries(results.map((r) => [r.instance_id, r.reason]));
    expect(reasons[planted[0]]).toMatch(/cannot decode the image: .*larger than its image needs/);
    expect(reasons[planted[1]]).toMatch(/cannot decode the image: .*(too large|limit)/);
    for (const id of planted) expect((await system.core.repos.instances.get(id))?.status).toBe('failed');
    const studies = await system.core.database.db.selectFrom('studies').select(['id', 'ai_flag']).execute();
    for (const study of studies) expect(study.ai_flag).not.toBe('normal');
    const peakMb = peakRssMb(worker.pid!);
    console.log(`worker peak RSS after two 1 GiB deflate bombs: ${peakMb.toFixed(0)} MB`);
    expect(peakMb).toBeLessThan(400);
  }, 180_000);
});
