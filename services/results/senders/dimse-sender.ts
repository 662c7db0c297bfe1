import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import dimse from 'dcmjs-dimse';
import { SEND_TIMEOUT_MS, SendError, type OutgoingObject } from './types.js';

const { Client, requests } = dimse;
const CALLING_AE = 'FRACTRIAGE';

/**
 * DIMSE C-STORE SCU, the one place that uses dcmjs-dimse's Client (the `dimse` helper wraps its
 * Server for our SCP; the two wrappers are to meet in services/dimse/). One association per
 * version; every object must be answered with success (0x0000) or a warning (0xB...).
 */
export async function sendCStore(target: { aeTitle: string; host: string; port: number }, objects: OutgoingObject[]): Promise<void> {
  // dcmjs-dimse reads the objects from files; a private temp folder, removed afterwards.
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'ft-cstore-'));
  try {
    const client = new Client();
    const statuses: { sop: string; status: number }[] = [];
    for (const object of objects) {
      const file = path.join(dir, `${randomUUID()}.dcm`);
      await fs.writeFile(file, object.bytes);
      const request = new requests.CStoreRequest(file);
      request.on('response', (response: { getStatus(): number }) => statuses.push({ sop: object.sopInstanceUid, status: response.getStatus() }));
      client.addRequest(request);
    }
    await new Promise<void>((resolve, reject) => {
      const where = `${target.aeTitle}@${target.host}:${target.port}`;
      client.on('associationRejected', (result: { reason?: number }) => reject(new SendError(`C-STORE to ${where}: association rejected (reason ${result?.reason ?? '?'})`)));
      client.on('networkError', (error: Error) => reject(new SendError(`C-STORE to ${where} failed: ${(error as { code?: string }).code ?? error.message}`)));
      client.on('closed', () => resolve());
      client.send(target.host, target.port, CALLING_AE, target.aeTitle, {
        connectTimeout: 10_000, associationTimeout: SEND_TIMEOUT_MS, pduTimeout: SEND_TIMEOUT_MS,
      });
    });
    const failed = objects.filter((o) => {
      const answer = statuses.find((s) => s.sop === o.sopInstanceUid);
      return !answer || !(answer.status === 0 || (answer.status & 0xf000) === 0xb000);
    });
    if (failed.length) {
      const codes = failed.map((o) => statuses.find((s) => s.sop === o.sopInstanceUid)?.status).map((s) => (s === undefined ? 'no answer' : `0x${s.toString(16)}`));
      throw new SendError(`C-STORE to ${target.aeTitle}@${target.host}:${target.port}: ${failed.length} of ${objects.length} object(s) not stored (${codes.join(', ')})`);
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
