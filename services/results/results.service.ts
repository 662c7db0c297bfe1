import type { Logger } from '../core/logger.js';
import type { IngestService } from '../core/services/ingest.service.js';
import type { StorageRepository } from '../core/repositories/storage.repository.js';
import type { ResultDelivery, ResultDestination, ResultVersion } from '../core/db/schema.js';
import { readGreyPng, type DecodedImage } from '../imaging/index.js';
import { studyAttributesFrom, toPart10 } from './dicom-out.js';
import { recordSend } from './metrics.js';
import type { ResultsQueue } from './results-queue.js';
import type { ResultsRepository } from './results.repository.js';
import { buildPresentationState, GRAYSCALE_SOFTCOPY_PRESENTATION_STATE, prIdentity, sourceDisplay } from './presentation-state.js';
import { buildSecondaryCapture, renderMarkedUp, scIdentity, SECONDARY_CAPTURE } from './secondary-capture.js';
import { sendCStore } from './senders/dimse-sender.js';
import { sendStow } from './senders/stow-sender.js';
import type { OutgoingObject } from './senders/types.js';
import { sendWebhook } from './senders/webhook-sender.js';
import { buildStructuredReport, COMPREHENSIVE_SR, DISCLAIMER, srIdentity } from './structured-report.js';
import { contentHash, type StudyReport } from './study-report.js';

/**
 * One object of a version. `instanceId`: stored as our own instance (origin `ai`), served by
 * QIDO-RS / WADO-RS and sent from there. `storageKey`: a version made before that, kept under
 * DATA_DIR/derived/ only (still sent from there on a retry).
 */
export interface StoredOutput {
  /** sr: the study's report; sc: an image's marked-up capture; pr: its presentation state (GSPS). */
  kind: OutputKind;
  sopInstanceUid: string;
  sopClassUid: string;
  seriesUid: string;
  instanceId?: number;
  storageKey?: string;
  sourceSopInstanceUid?: string;
}

export type OutputKind = 'sr' | 'sc' | 'pr';

/** Our objects go into the store through the one ingest door (origin `ai`). */
export type IngestDoor = Pick<IngestService, 'receive'>;

/** The webhook body and the results API's answer for a study (documented in docs/results.md). */
export interface ResultSummary {
  event: 'ai-result';
  schemaVersion: 1;
  site: string;
  studyInstanceUid: string;
  accessionNumber: string | null;
  version: number;
  supersedesVersion: number | null;
  flag: string | null;
  score: number | null;
  model: { name: string; version: string };
  images: { sopInstanceUid: string; status: string; flag: string | null; probability: number | null; reason: string | null; boxes: number }[];
  srSopInstanceUid: string;
  secondaryCaptureSopInstanceUids: string[];
  presentationStateSopInstanceUids: string[];
  viewerUrl: string;
  createdAt: string;
  disclaimer: string;
}

export type PrepareOutcome =
  | { outcome: 'gone' | 'incomplete' }
  | { outcome: 'waiting'; waitMs: number }
  | { outcome: 'unchanged' | 'new-version'; version: ResultVersion; deliveries: number };

export interface ResultsSettings {
  /** A study is sent once no image arrived for this long (STUDY_STABLE_SEC). */
  stableMs: number;
  /** Base of the viewer links in webhooks. */
  publicUrl: string;
}

/**
 * AI results going back to the hospital: builds a study's SR and Secondary Captures once every
 * image has a result and the study has been quiet for `stableMs`, keeps each content as a
 * numbered version (a later image → a new version whose SR names the previous one as
 * predecessor), and sends each version once to every destination of the site.
 * What is sent is the AI's output only; the radiologist's decision never leaves as a diagnosis.
 */
export class ResultsService {
  constructor(
    private readonly repo: ResultsRepository,
    private readonly storage: StorageRepository,
    private readonly ingest: IngestDoor,
    private readonly queue: ResultsQueue,
    private readonly decode: (bytes: Uint8Array) => Promise<DecodedImage>,
    private readonly settings: ResultsSettings,
    private readonly log: Logger,
  ) {}

  /** Called whenever an image result is stored: the study is looked at again once it can be stable. */
  studyChanged(siteId: string, studyId: number): Promise<void> {
    return this.queue.schedulePrepare(siteId, studyId, this.settings.stableMs);
  }

  async prepare(studyId: number, now = Date.now()): Promise<PrepareOutcome> {
    const readiness = await this.repo.studyReadiness(studyId);
    if (!readiness) return { outcome: 'gone' };
    // An image still without a result will schedule the study again when its result is stored.
    if (!readiness.complete) return { outcome: 'incomplete' };
    const waitMs = readiness.lastReceivedAt + this.settings.stableMs - now;
    if (waitMs > 0) return { outcome: 'waiting', waitMs };

    const report = (await this.repo.studyReport(studyId, undefined))!;
    // A PACS that forwards the whole study back to us sends our own SR/SC too: never report on them.
    const ours = await this.repo.ownObjectUids(studyId);
    report.images = report.images.filter((i) => !ours.has(i.sopInstanceUid));
    if (!report.images.length) return { outcome: 'gone' };
    const hash = contentHash(report);
    const latest = await this.repo.latestVersion(studyId);
    if (latest?.content_hash === hash) return { outcome: 'unchanged', version: latest, deliveries: await this.queueDeliveries(latest) };

    const createdAt = Date.now();
    const objects = await this.buildObjects(report, hash, latest, createdAt);
    const sr = objects.find((o) => o.kind === 'sr')!;
    const versionNumber = (latest?.version ?? 0) + 1;
    const summary = this.summary(report, versionNumber, latest?.version ?? null, objects, createdAt);
    const version = await this.repo.insertVersion({
      site_id: report.siteId, study_id: studyId, version: versionNumber, content_hash: hash, sr_sop_uid: sr.sopInstanceUid,
      sr_series_uid: sr.seriesUid, objects: JSON.stringify(objects), summary: JSON.stringify(summary), created_at: createdAt,
    });
    // Another run stored the same content meanwhile: the objects written are the same bytes' UIDs.
    if (!version) return { outcome: 'unchanged', version: (await this.repo.latestVersion(studyId))!, deliveries: 0 };
    this.log.info({ studyId, version: versionNumber, objects: objects.length }, 'study AI output version created');
    return { outcome: 'new-version', version, deliveries: await this.queueDeliveries(version) };
  }

  private async queueDeliveries(version: ResultVersion): Promise<number> {
    const created = await this.repo.createDeliveries(version);
    for (const delivery of created) await this.queue.enqueueDelivery(delivery.site_id, delivery.id, delivery.generation);
    return created.length;
  }

  private async buildObjects(report: StudyReport, hash: string, latest: ResultVersion | undefined, createdAt: number): Promise<StoredOutput[]> {
    const outputs: StoredOutput[] = [];
    const sourceBytes = async (storageKey: string) => this.storage.readFile(storageKey);
    const first = report.images[0];
    const studyAttributes = await studyAttributesFrom(await sourceBytes(first.storageKey));

    const identity = srIdentity(report, hash);
    const predecessor = latest ? { sopInstanceUid: latest.sr_sop_uid, seriesUid: latest.sr_series_uid } : undefined;
    outputs.push(await this.store(report, 'sr', identity.sopInstanceUid, COMPREHENSIVE_SR, identity.seriesUid,
      async () => toPart10(buildStructuredReport(report, { ...identity, version: (latest?.version ?? 0) + 1, createdAt, predecessor }, studyAttributes))));

    let instanceNumber = 0;
    for (const image of report.images) {
      instanceNumber++;
      if (image.status !== 'done') continue;
      // Read once, and only if the capture or the presentation state has to be built.
      let source: Promise<Buffer> | undefined;
      const original = () => (source ??= sourceBytes(image.storageKey));
      const id = scIdentity(report, image);
      const sc = await this.store(report, 'sc', id.sopInstanceUid, SECONDARY_CAPTURE, id.seriesUid, async () => {
        const bytes = await original();
        const decoded = await this.decode(bytes);
        const heatmap = image.heatmapKey ? readGreyPng(await this.storage.readDerived(image.heatmapKey)) : null;
        const pixels = renderMarkedUp(decoded.display, image, heatmap);
        return toPart10(buildSecondaryCapture({ report, image, pixels, decoded, ...id, instanceNumber, createdAt, studyAttributes: await studyAttributesFrom(bytes) }));
      });
      outputs.push({ ...sc, sourceSopInstanceUid: image.sopInstanceUid });
      const pr = prIdentity(report, image);
      const gsps = await this.store(report, 'pr', pr.sopInstanceUid, GRAYSCALE_SOFTCOPY_PRESENTATION_STATE, pr.seriesUid, async () => {
        const bytes = await original();
        return toPart10(buildPresentationState({ report, image, display: await sourceDisplay(bytes), ...pr, instanceNumber, createdAt, studyAttributes: await studyAttributesFrom(bytes) }));
      });
      outputs.push({ ...gsps, sourceSopInstanceUid: image.sopInstanceUid });
    }
    return outputs;
  }

  /**
   * Stores one object as our own instance of the study (origin `ai`, the algorithm as actor), so
   * QIDO-RS finds it and WADO-RS returns it. Its UID is derived from its content: when it is
   * already stored (an image whose result is unchanged in a new version, or a run that raced
   * this one) the stored instance is used as it is and nothing is built again.
   */
  private async store(report: StudyReport, kind: OutputKind, sopInstanceUid: string, sopClassUid: string, seriesUid: string, build: () => Promise<Buffer>): Promise<StoredOutput> {
    const existing = await this.repo.instanceBySop(report.siteId, sopInstanceUid);
    let instanceId = existing?.id;
    if (instanceId === undefined) {
      const bytes = await build();
      const outcome = await this.ingest.receive(oneChunk(bytes), {
        origin: 'ai', siteId: report.siteId, actorId: `${report.algorithm.name}/${report.algorithm.version}`, expectedStudyUid: report.studyUid,
      });
      // A failure throws: the prepare job is retried and no version names an object not stored.
      if (outcome.status === 'failed') throw new Error(`could not store our ${kind.toUpperCase()}: ${outcome.reason}`);
      instanceId = outcome.instanceId;
    }
    return { kind, sopInstanceUid, sopClassUid, seriesUid, instanceId };
  }

  private summary(report: StudyReport, version: number, supersedes: number | null, objects: StoredOutput[], createdAt: number): ResultSummary {
    return {
      event: 'ai-result', schemaVersion: 1, site: report.siteId, studyInstanceUid: report.studyUid, accessionNumber: report.accessionNumber,
      version, supersedesVersion: supersedes, flag: report.studyFlag, score: report.studyScore, model: report.algorithm,
      images: report.images.map((i) => ({ sopInstanceUid: i.sopInstanceUid, status: i.status, flag: i.flag, probability: i.probability, reason: i.reason, boxes: i.boxes.length })),
      srSopInstanceUid: objects.find((o) => o.kind === 'sr')!.sopInstanceUid,
      secondaryCaptureSopInstanceUids: objects.filter((o) => o.kind === 'sc').map((o) => o.sopInstanceUid),
      presentationStateSopInstanceUids: objects.filter((o) => o.kind === 'pr').map((o) => o.sopInstanceUid),
      viewerUrl: `${this.settings.publicUrl}/#/study/${report.studyId}`,
      createdAt: new Date(createdAt).toISOString(),
      disclaimer: DISCLAIMER,
    };
  }

  /**
   * Sends one version to one destination. A delivery already sent is not sent again (a job that
   * runs twice); a failed attempt is recorded with its reason and thrown, so the queue retries it.
   */
  async deliver(deliveryId: number, attempt: number, maxAttempts: number): Promise<'sent' | 'already-sent' | 'dropped'> {
    const delivery = await this.repo.delivery(deliveryId);
    if (!delivery || delivery.status === 'sent') return 'already-sent';
    const destination = await this.repo.destination(delivery.destination_id);
    if (!destination) {
      await this.repo.markDelivery(deliveryId, { status: 'failed', lastError: 'the destination was removed' });
      return 'dropped';
    }
    const version = (await this.repo.version(delivery.version_id))!;
    const started = Date.now();
    try {
      await this.send(destination, version);
    } catch (error) {
      const reason = (error as Error).message;
      recordSend(destination.kind, 'failed', (Date.now() - started) / 1000);
      await this.repo.markDelivery(deliveryId, { status: attempt >= maxAttempts ? 'failed' : 'retrying', attempts: attempt, lastError: reason });
      this.log.warn({ deliveryId, destination: destination.name, attempt, err: reason }, 'result delivery failed');
      throw error;
    }
    const latencyMs = Date.now() - started;
    recordSend(destination.kind, 'sent', latencyMs / 1000);
    await this.repo.markDelivery(deliveryId, { status: 'sent', attempts: attempt, lastError: null, sentAt: Date.now(), latencyMs });
    return 'sent';
  }

  private async send(destination: ResultDestination, version: ResultVersion): Promise<void> {
    if (destination.kind === 'webhook') {
      await sendWebhook(destination.url!, destination.secret, JSON.parse(version.summary));
      return;
    }
    const stored = JSON.parse(version.objects) as StoredOutput[];
    // What goes out is the stored instance, byte for byte: the same a WADO-RS retrieve returns.
    const keys = await this.repo.instanceStorageKeys(version.site_id, stored.flatMap((o) => (o.instanceId === undefined ? [] : [o.instanceId])));
    const objects: OutgoingObject[] = await Promise.all(stored.map(async (o) => {
      let bytes: Buffer;
      if (o.instanceId === undefined) bytes = await this.storage.readDerived(o.storageKey!);
      else {
        const key = keys.get(o.instanceId);
        if (!key) throw new Error(`our ${o.kind.toUpperCase()} ${o.sopInstanceUid} is no longer stored`);
        bytes = await this.storage.readFile(key);
      }
      return { sopInstanceUid: o.sopInstanceUid, sopClassUid: o.sopClassUid, bytes };
    }));
    const summary = JSON.parse(version.summary) as ResultSummary;
    if (destination.kind === 'stow') {
      await sendStow(destination.url!, destination.headers ? JSON.parse(destination.headers) : {}, summary.studyInstanceUid, objects);
    } else {
      await sendCStore({ aeTitle: destination.ae_title!, host: destination.host!, port: destination.port! }, objects);
    }
  }

  /**
   * The results API: a site's studies by Study Instance UID or accession number, each with its
   * latest AI output (the webhook body) and the state of its deliveries.
   */
  async studyResults(siteId: string, by: { studyUid?: string; accession?: string }) {
    const studies = await this.repo.studiesFor(siteId, by);
    return Promise.all(studies.map(async (study) => {
      const latest = await this.repo.latestVersion(study.id);
      return {
        studyInstanceUid: study.study_uid, accessionNumber: study.accession_number, aiState: study.ai_state, flag: study.ai_flag, score: study.ai_score,
        result: latest ? (JSON.parse(latest.summary) as ResultSummary) : null,
        deliveries: latest ? (await this.repo.deliveriesOfVersion(latest.id)) : [],
        disclaimer: DISCLAIMER,
      };
    }));
  }

  /** The admin page's view: counts and mean latency by state, and the latest deliveries. */
  async deliveries(filter: { status?: ResultDelivery['status']; limit?: number }) {
    return { stats: await this.repo.deliveryStats(), deliveries: await this.repo.listDeliveries({ status: filter.status, limit: filter.limit ?? 100 }) };
  }

  /** A failed or retrying delivery sent again now (admin page). */
  async retryDelivery(deliveryId: number): Promise<ResultDelivery | undefined> {
    const delivery = await this.repo.requeueDelivery(deliveryId);
    if (delivery && delivery.status === 'queued') await this.queue.enqueueDelivery(delivery.site_id, delivery.id, delivery.generation);
    return delivery;
  }
}

async function* oneChunk(bytes: Buffer): AsyncGenerator<Buffer> {
  yield bytes;
}
