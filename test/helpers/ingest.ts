import type { Core } from '../../services/core/core.js';

/** Bytes as the stream a protocol would hand to the ingest door. */
export async function* streamOf(...chunks: Buffer[]): AsyncGenerator<Buffer> {
  yield* chunks;
}

/** Ingests bytes through the same door the API uses, without HTTP (for worker tests). */
export async function ingestDirect(core: Core, bytes: Buffer, siteId = 'site-a') {
  return core.services.ingest.receive(streamOf(bytes), { origin: 'api', siteId, actorId: 'test' });
}

/**
 * Stored files that no instance row points to: what a refused, aborted or resent upload must not
 * leave behind (files are written at their final path, so a leftover would sit among the objects).
 */
export async function unrecordedFiles(core: Core): Promise<string[]> {
  const left: string[] = [];
  for await (const object of core.repos.storage.listObjects()) {
    if (!(await core.repos.instances.hasStorageKey(object.key))) left.push(object.key);
  }
  return left;
}
