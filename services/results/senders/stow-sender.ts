import { randomBytes } from 'node:crypto';
import { SEND_TIMEOUT_MS, SendError, type OutgoingObject } from './types.js';

/**
 * DICOMweb STOW-RS client: one multipart/related request per version to `<base>/studies/<uid>`.
 * Success is 200 (all stored) or 202 without a Failed SOP Sequence entry; anything else fails
 * the attempt with the destination's status and answer, so it is retried and shown.
 */
export async function sendStow(baseUrl: string, headers: Record<string, string>, studyUid: string, objects: OutgoingObject[]): Promise<void> {
  const boundary = `ft-${randomBytes(12).toString('hex')}`;
  const parts: Buffer[] = [];
  for (const object of objects) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`, 'latin1'), object.bytes, Buffer.from('\r\n', 'latin1'));
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`, 'latin1'));
  const url = `${baseUrl.replace(/\/+$/, '')}/studies/${studyUid}`;
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { ...headers, 'content-type': `multipart/related; type="application/dicom"; boundary=${boundary}`, accept: 'application/dicom+json' },
      body: Buffer.concat(parts),
      signal: AbortSignal.timeout(SEND_TIMEOUT_MS),
    });
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    throw new SendError(`STOW-RS to ${new URL(url).host} failed: ${cause?.code ?? cause?.message ?? (error as Error).message}`);
  }
  const text = await response.text().catch(() => '');
  if (response.status !== 200 && response.status !== 202) {
    // 4xx other than 408/429 will not get better by retrying as is, but an operator may fix the
    // destination: it is still retried and stays visible until then.
    throw new SendError(`STOW-RS to ${new URL(url).host} answered ${response.status}: ${text.slice(0, 300)}`);
  }
  const failed = failedSops(text);
  if (failed.length) throw new SendError(`STOW-RS to ${new URL(url).host} refused ${failed.length} of ${objects.length} object(s): ${failed.join(', ').slice(0, 300)}`);
}

/** Failure Reasons in a STOW-RS answer (Failed SOP Sequence 0008,1198). */
function failedSops(body: string): string[] {
  try {
    const json = JSON.parse(body) as Record<string, { Value?: Record<string, { Value?: unknown[] }>[] }>;
    return (json['00081198']?.Value ?? []).map((item) => `0x${Number(item['00081197']?.Value?.[0] ?? 0).toString(16)}`);
  } catch {
    return [];
  }
}
