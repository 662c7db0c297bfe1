import { createHmac } from 'node:crypto';
import { SEND_TIMEOUT_MS, SendError } from './types.js';

export const SIGNATURE_HEADER = 'X-FT-Signature';
export const TIMESTAMP_HEADER = 'X-FT-Timestamp';

/** `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">` — the receiver recomputes it with the shared secret. */
export function webhookSignature(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** POSTs the JSON; any 2xx is success, anything else is retried. */
export async function sendWebhook(url: string, secret: string | null, payload: unknown): Promise<void> {
  const body = JSON.stringify(payload);
  const timestamp = String(Math.floor(Date.now() / 1000));
  const headers: Record<string, string> = { 'content-type': 'application/json', [TIMESTAMP_HEADER]: timestamp };
  if (secret) headers[SIGNATURE_HEADER] = webhookSignature(secret, timestamp, body);
  let response: Response;
  try {
    response = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(SEND_TIMEOUT_MS) });
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause;
    throw new SendError(`webhook to ${new URL(url).host} failed: ${cause?.code ?? (error as Error).message}`);
  }
  await response.arrayBuffer().catch(() => undefined);
  if (response.status < 200 || response.status > 299) throw new SendError(`webhook to ${new URL(url).host} answered ${response.status}`);
}
