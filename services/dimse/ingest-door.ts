import type { Core } from '../core/core.js';
import type { IngestContext, IngestOutcome } from '../core/services/ingest.service.js';
import { receiveOne } from '../api/lib/receive.js';

/** One instance being received: bytes in, then the outcome once it is fsynced and recorded. */
export interface IngestPart {
  write(chunk: Buffer): Promise<void>;
  end(): Promise<IngestOutcome>;
  abort(): void;
}

export type DimseIngestContext = IngestContext & { origin: 'dimse' };

/**
 * The protocol-free ingest door for one instance. Today's door is receiveOne (an async iterable
 * in); this adapts it to push-style writes with back-pressure: write() resolves once the chunk has
 * been taken. When core's ingest.openPart(ctx) lands, this function becomes a call to it.
 */
export function openIngestPart(core: Core, ctx: DimseIngestContext): IngestPart {
  const waiting: { chunk?: Buffer; done?: boolean; error?: Error; taken: () => void }[] = [];
  let wake: (() => void) | undefined;
  const push = (item: Omit<(typeof waiting)[number], 'taken'>) => new Promise<void>((taken) => {
    waiting.push({ ...item, taken });
    wake?.();
  });
  async function* source(): AsyncGenerator<Buffer> {
    for (;;) {
      if (!waiting.length) await new Promise<void>((resolve) => { wake = resolve; });
      wake = undefined;
      const item = waiting.shift();
      if (!item) continue;
      item.taken();
      if (item.error) throw item.error;
      if (item.done) return;
      yield item.chunk!;
    }
  }
  // Until core records the origin itself, the audit's actor says the instance came in over DIMSE.
  const outcome = receiveOne(source(), core.repos.storage, core.services.ingest, { ...ctx, actorId: `dimse:${ctx.actorId}` });
  outcome.catch(() => {}); // an abort rejects it; end() is never called then
  return {
    write: (chunk) => push({ chunk }),
    end: async () => {
      void push({ done: true });
      return outcome;
    },
    abort: () => { void push({ error: new Error('association ended before the data set was complete') }); },
  };
}
