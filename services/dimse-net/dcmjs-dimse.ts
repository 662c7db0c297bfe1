/**
 * The only module that imports dcmjs-dimse (npm): our DICOM network layer. It turns the library's
 * SCP callbacks into the small protocol-neutral interface of DimseHandlers (the C-STORE listener,
 * services/dimse), and its Client into one call that stores objects on a peer (the C-STORE SCU
 * of services/results), so the library can be swapped by rewriting this file. It imports nothing
 * of ours: both the listener entry point and the results senders may use it, neither knows the other.
 *
 * What we rely on (dcmjs-dimse 0.3): an Scp subclass per connection; associationRequested; cEchoRequest;
 * C-STORE data sets streamed into a Writable of ours (createStoreWritableStream), so nothing is held
 * whole in memory by the library; createDatasetFromStoreWritableStream runs after the last fragment,
 * and we answer the C-STORE only once our sink has stored and recorded the instance. As SCU: a
 * Client with one CStoreRequest per object (read from a file), one association for all of them.
 *
 * Logging: the library logs through loglevel's root logger at TRACE by default, to the console.
 * It is silenced when this module loads; routeLibraryLog() sends its INFO and above to our logger
 * at debug level (connection and association events; data sets are never logged).
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import dimse from 'dcmjs-dimse';

const { Scp, Client, Dataset, log: libraryLog } = dimse;
const { PresentationContextResult, RejectResult, RejectSource, RejectReason } = dimse.constants;
const { CEchoResponse, CStoreResponse } = dimse.responses;

type LibAssociation = InstanceType<typeof dimse.association.Association>;
type LibContext = InstanceType<typeof dimse.association.PresentationContext>;
type LibStoreRequest = InstanceType<typeof dimse.requests.CStoreRequest>;
type LibDataset = InstanceType<typeof Dataset>;

// Nothing on stdout from the library, whoever loads it (a test, the worker, the listener).
libraryLog.setLevel('silent');

/** The part of our (pino) logger the library's messages go to. */
export interface LibraryLogSink {
  debug(obj: object, msg: string): void;
  isLevelEnabled(level: string): boolean;
}

/** Sends the library's INFO and above to `log` at debug level; silent unless `log` has debug on. */
export function routeLibraryLog(log: LibraryLogSink): void {
  libraryLog.methodFactory = (level) => (...args: unknown[]) => {
    log.debug({ library: 'dcmjs-dimse', libraryLevel: level }, args.map((a) => (a instanceof Error ? a.message : String(a))).join(' '));
  };
  // setLevel rebuilds the logging methods with the factory above.
  libraryLog.setLevel(log.isLevelEnabled('debug') ? 'info' : 'silent');
}

export interface ProposedContext {
  id: number;
  abstractSyntaxUid: string;
  transferSyntaxUids: string[];
}

export interface AssociationRequest {
  callingAeTitle: string;
  calledAeTitle: string;
  peerAddress: string;
  contexts: ProposedContext[];
}

/** Why an association is refused; the adapter maps it to the A-ASSOCIATE-RJ result/source/reason. */
export type AssociationRefusal = 'calling-ae-not-recognized' | 'called-ae-not-recognized' | 'busy';

export type AssociationDecision =
  /** Per proposed context id: the transfer syntax accepted, or null to refuse that context. */
  | { accept: true; contexts: Map<number, string | null>; session: StoreSession }
  | { accept: false; refusal: AssociationRefusal };

export interface StoreRequestInfo {
  sopClassUid: string;
  sopInstanceUid: string;
  transferSyntaxUid: string;
}

/** DIMSE status and Error Comment (0000,0902) sent in the C-STORE response. */
export interface StoreStatus {
  status: number;
  errorComment?: string;
}

export interface StoreSink {
  /** Next bytes of the data set, encoded in the negotiated transfer syntax. */
  write(chunk: Buffer): Promise<void>;
  /** The whole data set arrived: store it and answer with this status. */
  end(): Promise<StoreStatus>;
  /** The association broke off mid-transfer. */
  abort(): Promise<void>;
}

/** What one accepted association does with its C-STOREs. */
export interface StoreSession {
  openStore(request: StoreRequestInfo): StoreSink;
  closed(): void;
}

export interface DimseHandlers {
  associate(request: AssociationRequest): Promise<AssociationDecision>;
  /** Unexpected errors (network, protocol); never patient data. */
  onError(error: Error, peerAddress: string): void;
}

export interface DimseListener {
  port: number;
  close(graceMs?: number): Promise<void>;
}

/** DIMSE status codes we send (PS3.4 Annex B.2.3, PS3.7 Annex C). */
export const DimseStatus = {
  Success: 0x0000,
  ProcessingFailure: 0x0110,
  SopClassNotSupported: 0x0122,
  OutOfResources: 0xa700,
  DataSetMismatch: 0xa900,
  CannotUnderstand: 0xc000,
  ElementsDiscarded: 0xb006,
} as const;

/** Error Comment is LO: at most 64 characters. */
function errorComment(text: string): string {
  return text.length <= 64 ? text : `${text.slice(0, 63)}…`;
}

export async function listenDimse(opts: {
  port: number;
  host: string;
  /** Connections past this are closed at once (associations are limited in associate()). */
  maxConnections: number;
  handlers: DimseHandlers;
}): Promise<DimseListener> {
  const { handlers } = opts;
  const sinks = new WeakMap<LibDataset, Promise<StoreStatus>>();

  class Listener extends Scp {
    private session?: StoreSession;
    private readonly peer: string;

    constructor(socket: net.Socket) {
      // pduTimeout: a sender may pause between PDUs while we fsync and commit; 2 min before we give up.
      super(socket, { associationTimeout: 30_000, pduTimeout: 120_000 });
      this.peer = socket.remoteAddress ?? 'unknown';
      this.on('close', () => this.session?.closed());
      this.on('networkError', (error: Error) => handlers.onError(error, this.peer));
    }

    override associationRequested(association: LibAssociation): void {
      const contexts = association.getPresentationContexts().map(({ id, context }) => ({
        id,
        abstractSyntaxUid: context.getAbstractSyntaxUid(),
        transferSyntaxUids: context.getTransferSyntaxUids(),
      }));
      handlers.associate({
        callingAeTitle: association.getCallingAeTitle().trim(),
        calledAeTitle: association.getCalledAeTitle().trim(),
        peerAddress: this.peer,
        contexts,
      }).then((decision) => {
        if (!decision.accept) {
          const reason = {
            'calling-ae-not-recognized': [RejectResult.Permanent, RejectSource.ServiceUser, RejectReason.CallingAeNotRecognized],
            'called-ae-not-recognized': [RejectResult.Permanent, RejectSource.ServiceUser, RejectReason.CalledAeNotRecognized],
            busy: [RejectResult.Transient, RejectSource.ServiceProviderPresentation, RejectReason.LocalLimitExceeded],
          }[decision.refusal];
          this.sendAssociationReject(reason[0], reason[1], reason[2]);
          return;
        }
        this.session = decision.session;
        for (const { id, context } of association.getPresentationContexts()) {
          const ts = decision.contexts.get(id);
          if (ts) context.setResult(PresentationContextResult.Accept, ts);
          else context.setResult(PresentationContextResult.RejectAbstractSyntaxNotSupported);
        }
        this.sendAssociationAccept();
      }, (error: Error) => {
        handlers.onError(error, this.peer);
        this.sendAssociationReject(RejectResult.Transient, RejectSource.ServiceUser, RejectReason.NoReasonGiven);
      });
    }

    override associationReleaseRequested(): void {
      this.sendAssociationReleaseResponse();
    }

    override cEchoRequest(request: InstanceType<typeof dimse.requests.CEchoRequest>, callback: (response: InstanceType<typeof CEchoResponse>) => void): void {
      const response = CEchoResponse.fromRequest(request);
      response.setStatus(DimseStatus.Success);
      callback(response);
    }

    override createStoreWritableStream(context: LibContext, request: LibStoreRequest): Writable {
      const sink = this.session!.openStore({
        sopClassUid: request.getAffectedSopClassUid(),
        sopInstanceUid: request.getAffectedSopInstanceUid(),
        transferSyntaxUid: context.getAcceptedTransferSyntaxUid() ?? '',
      });
      const writable = new Writable({
        write: (chunk: Buffer, _encoding, done) => { sink.write(chunk).then(() => done(), done); },
        final: (done) => done(),
      });
      // A broken association destroys the stream: the part is discarded, nothing half-stored.
      writable.once('error', () => { void sink.abort(); });
      (writable as Writable & { sink?: StoreSink }).sink = sink;
      return writable;
    }

    override createDatasetFromStoreWritableStream(writable: Writable, context: LibContext, callback: (dataset: LibDataset) => void): void {
      const sink = (writable as Writable & { sink?: StoreSink }).sink!;
      const finished = new Promise<void>((resolve, reject) => {
        if (writable.writableFinished) resolve();
        else { writable.once('finish', resolve); writable.once('error', reject); }
      });
      const status = finished.then(() => sink.end(), async (error: Error) => {
        await sink.abort();
        return { status: DimseStatus.ProcessingFailure, errorComment: `receiving the data set failed: ${error.message}` };
      });
      // The library wants a Dataset for cStoreRequest; ours is a placeholder that carries our result.
      const placeholder = new Dataset({}, context.getAcceptedTransferSyntaxUid());
      sinks.set(placeholder, status);
      callback(placeholder);
    }

    override cStoreRequest(request: LibStoreRequest, callback: (response: InstanceType<typeof CStoreResponse>) => void): void {
      const dataset = request.getDataset();
      const pending = dataset ? sinks.get(dataset) : undefined;
      const respond = (result: StoreStatus) => {
        const response = CStoreResponse.fromRequest(request);
        response.setStatus(result.status);
        if (result.errorComment) response.setErrorComment(errorComment(result.errorComment));
        callback(response);
      };
      if (!pending) {
        respond({ status: DimseStatus.CannotUnderstand, errorComment: 'C-STORE without a data set' });
        return;
      }
      pending.then(respond, (error: Error) => {
        handlers.onError(error, this.peer);
        respond({ status: DimseStatus.ProcessingFailure, errorComment: 'the server could not store this instance' });
      });
    }
  }

  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    socket.on('error', () => {}); // reported through the Scp's networkError
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    new Listener(socket);
  });
  server.maxConnections = opts.maxConnections;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => { server.off('error', reject); resolve(); });
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : opts.port,
    /** Stops accepting; associations still open after `graceMs` are cut (their unfinished C-STOREs were never acknowledged). */
    async close(graceMs = 10_000) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      const timer = setTimeout(() => { for (const socket of sockets) socket.destroy(); }, graceMs);
      await closed;
      clearTimeout(timer);
    },
  };
}

/** A peer to send to: its AE title, host and port, and the AE title we call from. */
export interface StoreTarget {
  aeTitle: string;
  host: string;
  port: number;
  callingAeTitle: string;
}

/** A C-STORE SCU session that could not run: refused association, network error, timeout. */
export class DimseNetworkError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DimseNetworkError';
  }
}

/**
 * C-STORE SCU: sends each object (a Part 10 file's bytes) on one association and returns the
 * status the peer answered for each, or undefined where it answered nothing. A refused
 * association or a network error throws DimseNetworkError; judging the statuses is the caller's.
 */
export async function storeObjects(
  target: StoreTarget,
  objects: { sopInstanceUid: string; bytes: Uint8Array }[],
  timeouts: { connectMs: number; associationMs: number; pduMs: number },
): Promise<{ sopInstanceUid: string; status: number | undefined }[]> {
  // The library reads the objects from files: a private temp folder, removed afterwards.
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'ft-cstore-'));
  try {
    const client = new Client();
    const statuses = new Map<string, number>();
    for (const object of objects) {
      const file = path.join(dir, `${randomUUID()}.dcm`);
      await fs.writeFile(file, object.bytes);
      const request = new dimse.requests.CStoreRequest(file);
      request.on('response', (response: { getStatus(): number }) => statuses.set(object.sopInstanceUid, response.getStatus()));
      client.addRequest(request);
    }
    await new Promise<void>((resolve, reject) => {
      const where = `${target.aeTitle}@${target.host}:${target.port}`;
      client.on('associationRejected', (result: { reason?: number }) => reject(new DimseNetworkError(`C-STORE to ${where}: association rejected (reason ${result?.reason ?? '?'})`)));
      client.on('networkError', (error: Error) => reject(new DimseNetworkError(`C-STORE to ${where} failed: ${(error as { code?: string }).code ?? error.message}`)));
      client.on('closed', () => resolve());
      client.send(target.host, target.port, target.callingAeTitle, target.aeTitle, {
        connectTimeout: timeouts.connectMs, associationTimeout: timeouts.associationMs, pduTimeout: timeouts.pduMs,
      });
    });
    return objects.map((o) => ({ sopInstanceUid: o.sopInstanceUid, status: statuses.get(o.sopInstanceUid) }));
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
