import type { Core } from '../../services/core/core.js';

/** Bytes as the stream a protocol would hand to the ingest door. */
export async function* streamOf(...chunks: Buffer[]): AsyncGenerator<Buffer> {
  yield* chunks;
}

/** Ingests bytes through the same door the API uses, without HTTP (for worker tests). */
export async function ingestDirect(core: Core, bytes: Buffer, siteId = 'site-a') {
  return core.services.ingest.receive(streamOf(bytes), { origin: 'api', siteId, actorId: 'test' });
}
