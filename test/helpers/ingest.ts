import type { Core } from '../../services/core/core.js';

/** Ingests bytes through the same door the API uses, without HTTP (for worker tests). */
export async function ingestDirect(core: Core, bytes: Buffer, siteId = 'site-a') {
  return core.services.ingest.receive([bytes], { origin: 'api', siteId, actorId: 'test' });
}
