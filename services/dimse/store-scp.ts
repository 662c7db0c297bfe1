import type { Core } from '../core/core.js';
import { EXPLICIT_BIG, EXPLICIT_LITTLE, FailureReason, IMPLICIT_LITTLE, fileMetaHeader, isStorableSopClass, isSupportedTransferSyntax } from '../dicom/index.js';
import type { Logger } from '../core/logger.js';
import type { IngestOutcome } from '../core/services/ingest.service.js';
import { DimseStatus, type AssociationDecision, type AssociationRequest, type DimseHandlers, type StoreSink, type StoreStatus } from '../dimse-net/dcmjs-dimse.js';
import type { DimseMetrics } from './metrics.js';

const VERIFICATION_SOP_CLASS = '1.2.840.10008.1.1';
const NATIVE = new Set([IMPLICIT_LITTLE, EXPLICIT_LITTLE, EXPLICIT_BIG]);
/** The site every calling AE stores into in demo mode. */
export const DEMO_SITE = 'demo';

/**
 * The transfer syntax we accept for one proposed context: the sender's own encoding, never a
 * transcoding. A sender that offers its file's compressed syntax next to uncompressed fallbacks
 * keeps the compressed one; otherwise the sender's first choice among what the pipeline decodes.
 */
export function chooseTransferSyntax(proposed: string[]): string | null {
  const supported = proposed.filter(isSupportedTransferSyntax);
  return supported.find((ts) => !NATIVE.has(ts)) ?? supported[0] ?? null;
}

/** How an ingest outcome is answered over DIMSE (PS3.4 Annex B.2.3). */
export function storeStatus(outcome: IngestOutcome): StoreStatus {
  switch (outcome.status) {
    case 'stored':
    case 'duplicate':
      return { status: DimseStatus.Success };
    case 'conflict':
      return { status: DimseStatus.ElementsDiscarded, errorComment: 'another object with this SOP Instance UID is kept' };
    case 'failed': {
      // Our side (disk full, database away): "out of resources" makes a sender retry later.
      if (outcome.retryable || outcome.failureReason === FailureReason.OutOfResources) return { status: DimseStatus.OutOfResources, errorComment: outcome.reason };
      if (outcome.failureReason === FailureReason.DataSetMismatch) return { status: DimseStatus.DataSetMismatch, errorComment: outcome.reason };
      if (outcome.failureReason === FailureReason.SopClassNotSupported) return { status: DimseStatus.SopClassNotSupported, errorComment: outcome.reason };
      if (outcome.failureReason === FailureReason.ProcessingFailure) return { status: DimseStatus.ProcessingFailure, errorComment: outcome.reason };
      return { status: DimseStatus.CannotUnderstand, errorComment: outcome.reason };
    }
  }
}

/** Counts waiting callers through a fixed number of slots. */
class Slots {
  private free: number;
  private readonly queue: (() => void)[] = [];
  constructor(size: number) { this.free = size; }
  async take(): Promise<void> {
    if (this.free > 0) { this.free--; return; }
    await new Promise<void>((resolve) => this.queue.push(resolve));
  }
  give(): void {
    const next = this.queue.shift();
    if (next) next();
    else this.free++;
  }
}

/**
 * The C-STORE SCP: who may associate (calling AE → site, optional host pin; anyone into "demo"
 * in demo mode), which contexts are accepted, and each C-STORE streamed through the ingest door.
 * The success status goes back only once ingest says the file is fsynced and its row committed.
 */
export function storeScpHandlers(core: Core, metrics: DimseMetrics, log: Logger): DimseHandlers {
  const { config } = core;
  const stores = new Slots(config.dimse.maxConcurrentStores);
  let active = 0;

  async function siteFor(request: AssociationRequest): Promise<string | undefined> {
    if (config.demo) return (await core.repos.sites.get(DEMO_SITE)) ? DEMO_SITE : undefined;
    const entry = await core.repos.aeTitles.get(request.callingAeTitle);
    if (!entry) return undefined;
    const peer = request.peerAddress.replace(/^::ffff:/, '');
    if (entry.host && entry.host !== peer) return undefined;
    return entry.site_id;
  }

  async function associate(request: AssociationRequest): Promise<AssociationDecision> {
    if (request.calledAeTitle !== config.dimse.aeTitle) {
      metrics.associations.inc({ site: '', result: 'wrong_called_ae' });
      log.warn({ calledAe: request.calledAeTitle, peer: request.peerAddress }, 'association rejected: called AE title is not ours');
      return { accept: false, refusal: 'called-ae-not-recognized' };
    }
    const siteId = await siteFor(request);
    if (!siteId) {
      metrics.associations.inc({ site: '', result: 'unknown_calling_ae' });
      log.warn({ callingAe: request.callingAeTitle, peer: request.peerAddress }, 'association rejected: calling AE title not registered (npm run cli -- ae:add)');
      return { accept: false, refusal: 'calling-ae-not-recognized' };
    }
    if (active >= config.dimse.maxAssociations) {
      metrics.associations.inc({ site: siteId, result: 'busy' });
      log.warn({ site: siteId, active }, 'association rejected: too many open associations');
      return { accept: false, refusal: 'busy' };
    }
    const contexts = new Map<number, string | null>();
    for (const context of request.contexts) {
      const storable = context.abstractSyntaxUid === VERIFICATION_SOP_CLASS || isStorableSopClass(context.abstractSyntaxUid);
      contexts.set(context.id, storable ? chooseTransferSyntax(context.transferSyntaxUids) : null);
    }
    active++;
    metrics.activeAssociations.set(active);
    metrics.associations.inc({ site: siteId, result: 'accepted' });
    log.info({ site: siteId, callingAe: request.callingAeTitle, contexts: contexts.size, accepted: [...contexts.values()].filter(Boolean).length }, 'association accepted');
    let closed = false;
    const open = new Set<StoreSink>();
    return {
      accept: true,
      contexts,
      session: {
        closed() {
          if (closed) return;
          closed = true;
          active--;
          metrics.activeAssociations.set(active);
          // A connection lost mid-transfer: the half-received instance is discarded, never acknowledged.
          for (const sink of open) void sink.abort();
        },
        openStore: (info) => {
          const sink = openStore(siteId, request.callingAeTitle, info, () => open.delete(sink));
          open.add(sink);
          return sink;
        },
      },
    };
  }

  function openStore(siteId: string, callingAe: string, info: { sopClassUid: string; sopInstanceUid: string; transferSyntaxUid: string }, done: () => void): StoreSink {
    // The data set may start arriving before a slot is free; it waits in the stream meanwhile.
    const ready = stores.take().then(async () => {
      // The protocol-free ingest door: it records origin "dimse" and the calling AE per instance and in the audit.
      const part = core.services.ingest.openPart({ siteId, actorId: callingAe, origin: 'dimse' });
      await part.write(fileMetaHeader({ ...info, sourceAeTitle: callingAe }));
      return part;
    });
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      stores.give();
      done();
    };
    return {
      async write(chunk) {
        metrics.bytes.inc({ site: siteId }, chunk.length);
        await (await ready).write(chunk);
      },
      async end() {
        try {
          const outcome = await (await ready).end();
          metrics.stores.inc({ site: siteId, outcome: outcome.status });
          if (outcome.status === 'failed' && outcome.kind === 'patient-identity') metrics.identityRefusals.inc({ origin: 'dimse' });
          const status = storeStatus(outcome);
          const logged = { site: siteId, callingAe, outcome: outcome.status, status: `0x${status.status.toString(16).padStart(4, '0')}`, ...(outcome.status === 'failed' ? { reason: outcome.reason } : { instanceId: outcome.instanceId }) };
          if (outcome.status === 'failed') log.warn(logged, 'C-STORE refused');
          else log.info(logged, 'C-STORE');
          return status;
        } finally {
          release();
        }
      },
      async abort() {
        try {
          await (await ready).abort();
        } finally {
          release();
        }
      },
    };
  }

  return {
    associate,
    onError(error, peer) {
      log.warn({ err: error.message, peer }, 'DICOM network error');
    },
  };
}
