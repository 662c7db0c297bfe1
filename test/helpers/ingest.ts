import fs from 'node:fs';
import type { Core } from '../../services/core/core.js';

/** Ingests bytes through the same service the API uses, without HTTP (for worker tests). */
export async function ingestDirect(core: Core, bytes: Buffer, siteId = 'site-a') {
  const writer = await core.repos.storage.openTemp();
  await writer.write(bytes);
  const temp = await writer.finish();
  const outcome = await core.services.ingest.ingest(temp, { siteId, actorId: 'test' });
  if (fs.existsSync(temp.tempPath)) throw new Error('temp file left behind');
  return outcome;
}
