import type { IngestOutcome } from '../../core/services/ingest.service.js';
import { lo, sq, ui, ur, us, type DicomJson } from './dicom-json.js';

export function instanceUrl(base: string, o: { studyInstanceUid: string; seriesInstanceUid: string; sopInstanceUid: string }): string {
  return `${base}/dicomweb/studies/${o.studyInstanceUid}/series/${o.seriesInstanceUid}/instances/${o.sopInstanceUid}`;
}

/** Extra failures that are not tied to one part (e.g. the body broke off after some parts). */
export interface RequestFailure {
  failureReason: number;
  reason: string;
}

/**
 * The STOW-RS response (PS3.18 §10.5.3): 200 when every instance is stored (a resend of identical
 * bytes counts as stored), 202 when some failed or carry a warning, 409 when none was stored.
 * Per instance: Referenced SOP Sequence with Retrieve URL (and Warning Reason), or Failed SOP
 * Sequence with Failure Reason; Error Comment (0000,0902) says why in words. When nothing was
 * stored only because of the server (storage full → 507; read-only storage or database away → 503),
 * the same body comes with that status instead of 409.
 */
export function stowResponse(base: string, outcomes: IngestOutcome[], extra: RequestFailure[] = []): { status: number; body: DicomJson } {
  const referenced: DicomJson[] = [];
  const failed: DicomJson[] = [];
  for (const o of outcomes) {
    if (o.status === 'failed') {
      failed.push({
        '00081150': ui(o.sopClassUid),
        '00081155': ui(o.sopInstanceUid),
        '00081197': us(o.failureReason),
        '00000902': lo(o.reason),
      });
    } else {
      const item: DicomJson = {
        '00081150': ui(o.sopClassUid),
        '00081155': ui(o.sopInstanceUid),
        '00081190': ur(instanceUrl(base, o)),
      };
      if (o.status === 'conflict') {
        item['00081196'] = us(o.warningReason);
        item['00000902'] = lo(o.reason);
      }
      referenced.push(item);
    }
  }
  for (const f of extra) failed.push({ '00081197': us(f.failureReason), '00000902': lo(f.reason) });

  const body: DicomJson = {};
  const studies = new Set(outcomes.flatMap((o) => (o.status === 'failed' ? [] : [o.studyInstanceUid])));
  if (studies.size === 1) body['00081190'] = ur(`${base}/dicomweb/studies/${[...studies][0]}`);
  if (failed.length) body['00081198'] = sq(failed);
  if (referenced.length) body['00081199'] = sq(referenced);

  const warnings = outcomes.some((o) => o.status === 'conflict');
  let status = referenced.length === 0 ? 409 : failed.length || warnings ? 202 : 200;
  // Nothing stored, and only because of us (disk full, read-only folder, database away): not a
  // conflict the sender should look into, but "come back later": 507 when out of space, else 503.
  const ours = outcomes.filter((o): o is Extract<IngestOutcome, { status: 'failed' }> => o.status === 'failed' && o.retryable === true);
  if (status === 409 && ours.length === outcomes.length && ours.length > 0 && extra.length === 0) {
    status = ours.every((o) => o.failureReason === 0xa700) ? 507 : 503;
  }
  return { status, body };
}
